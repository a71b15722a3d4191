// Every documented example, run as a user would type it plus --dry-run: each `simclr` command
// line of README.md, docs/*.md (read as the test runs: the pages are rewritten) and every
// command's --help, against stand-in inputs made here: image folders of small PNGs, label
// CSVs, weights files, and run folders trained for real by tiny commands. Each must exit 0
// and print its plan, and nothing may be written. Also: a missing folder exits 2 naming it,
// and a budgeted pipeline's dry run shows its stages and their minutes.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, extname, join } from 'node:path';
import { COMMANDS } from '../src/cli/specs';
import { renderHelp } from '../src/cli/options';
import { examplesIn, shellWords, type Example } from './doc-examples';
import { PYTHON, tempDir } from './helpers';

const REPO = join(__dirname, '..', '..');
const MAIN = join(__dirname, '..', 'src', 'cli', 'main.js');
const root = tempDir('simclr-examples-');

/**
 * The one place where an example's paths meet the stand-ins: a path they cannot be (a shared
 * folder, another machine's, a run made under another name) names the stand-in that plays it.
 * Besides, every --out and --sheet is rewritten to a new path under out/: what a command
 * writes is its own, and the dry run must not write it.
 */
const PATHS: Readonly<Record<string, string>> = {
  'photos/train': 'photos',
  'photos/test': 'test-photos',
  '/data/images': 'many-photos',
  'runs/c10': 'runs/photos-data',
  'runs/fm': 'runs/photos-data',
  'runs/r50': 'runs/photos',
};
/** What a launcher sets (srun, a PyTorchJob) for the examples it starts, and Slurm's variables their lines name. */
const LAUNCHER_ENV = { MASTER_ADDR: '127.0.0.1', MASTER_PORT: '29500', WORLD_SIZE: '8', RANK: '0', LOCAL_RANK: '0' };
const SHELL_VARS = { SLURM_NTASKS: '8', SLURM_PROCID: '0', SLURM_LOCALID: '0', SLURM_CPUS_PER_TASK: '1' };

const baseEnv: NodeJS.ProcessEnv = { ...process.env, SIMCLR_CACHE: join(root, 'cache') };
for (const name of [...Object.keys(LAUNCHER_ENV), 'LOCAL_WORLD_SIZE']) delete baseEnv[name];
const simclr = (args: string[], env = baseEnv) => spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8', env, cwd: root });

function documented(): Example[] {
  const pages = ['README.md', ...readdirSync(join(REPO, 'docs')).filter((f) => f.endsWith('.md')).sort().map((f) => `docs/${f}`)];
  return pages.flatMap((page) => examplesIn(readFileSync(join(REPO, page), 'utf8'), page, SHELL_VARS));
}

/** The Example: line of each command's --help. */
function fromHelp(): Example[] {
  return Object.values(COMMANDS).flatMap((spec) => {
    const line = renderHelp(spec).split('\n').find((l) => l.startsWith('Example: '));
    return line ? [{ where: `simclr ${spec.name} --help`, argv: shellWords(line.slice('Example: simclr '.length), {}), assigns: {}, launched: false }] : [];
  });
}

const pageExamples = documented();
const helpExamples = fromHelp();

/** Class folders of 16x16 PNGs: a few distinct images per class, repeated to the count. */
async function imageFolder(dir: string, perClass: number, classes = ['cat', 'dog']): Promise<void> {
  const sharp = (await import('sharp')).default;
  for (const [c, name] of classes.entries()) {
    mkdirSync(join(dir, name), { recursive: true });
    const pngs = await Promise.all([0, 1, 2, 3].map((k) => sharp({ create: { width: 16, height: 16, channels: 3, background: { r: 60 + 120 * c, g: 40 * k, b: 200 - 120 * c } } }).png().toBuffer()));
    for (let i = 0; i < perClass; i++) writeFileSync(join(dir, name, `${i}.png`), pngs[i % pngs.length]!);
  }
}

function labelFiles(): void {
  const rows = (from: number, to: number) => ['cat', 'dog'].flatMap((c) => Array.from({ length: to - from }, (_, i) => `photos/${c}/${from + i}.png,${c}`));
  writeFileSync(join(root, 'labels.csv'), `path,label\n${rows(0, 10).join('\n')}\n`);
  // As suggest-labels writes it, then filled in.
  writeFileSync(join(root, 'to-label.csv'), `path,label,cluster,typicality,confidence,why\n${rows(20, 26).map((r) => `${r},0,0.5,,typical`).join('\n')}\n`);
}

/** A stand-in for each weights file an example imports or starts from: a small file of its format. */
function weightsFiles(examples: Example[]): void {
  const named = examples.flatMap((e) => [e.argv[0] === 'import' ? e.argv[1] : undefined, ...e.argv.map((a, i) => (/^--(pretrain-)?init$/.test(e.argv[i - 1] ?? '') ? a : undefined))]);
  const files = [...new Set(named.filter((f): f is string => Boolean(f) && !f!.startsWith('--') && !PATHS[f!]))];
  const header = Buffer.from(JSON.stringify({ 'conv1.weight': { dtype: 'F32', shape: [2, 3, 1, 1], data_offsets: [0, 24] } }));
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(header.length));
  for (const f of files.filter((f) => extname(f) === '.safetensors')) writeFileSync(join(root, f), Buffer.concat([length, header, Buffer.alloc(24)]));
  const saved = files.filter((f) => extname(f) !== '.safetensors').map((f) => join(root, f));
  if (!saved.length) return;
  const py = spawnSync(PYTHON, ['-c', "import sys, torch\nfor f in sys.argv[1:]: torch.save({'resnet': {'conv1.weight': torch.zeros(2, 3, 1, 1)}}, f)", ...saved], { encoding: 'utf8' });
  assert.equal(py.status, 0, `torch.save stand-ins (${PYTHON}): ${py.stderr}`);
}

/** Run folders made for real by tiny commands: one from the user's folders and labels, one from a labeled image folder. */
function runFolders(): void {
  const tiny = ['--width', '0.0625', '--epochs', '1', '--batch', '32', '--max-images', '64', '--threads', '1'];
  const stage = ['--epochs', '1', '--batch', '8', '--threads', '1'];
  for (const args of [
    ['pretrain', '--unlabeled', 'photos', '--labeled', 'labels.csv', '--test-data', 'test-photos', '--out', 'runs/photos', ...tiny],
    ['finetune', '--from', 'runs/photos', ...stage],
    ['finetune', '--from', 'runs/photos', '--labeled', 'to-label.csv', ...stage],
    ['pretrain', '--data', 'photos', '--test-data', 'test-photos', '--out', 'runs/photos-data', ...tiny],
    ['finetune', '--from', 'runs/photos-data', '--labels', '1%', ...stage],
  ]) {
    const r = simclr(args);
    assert.equal(r.status, 0, `simclr ${args.join(' ')}: ${r.stderr}`);
  }
}

/** Every file under the stand-ins with its size and time: what the dry runs must leave as it is. */
function snapshot(dir = root): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' }).sort().map((f) => {
    const s = statSync(join(dir, f));
    return `${f} ${s.isDirectory() ? 'dir' : `${s.size} ${s.mtimeMs}`}`;
  });
}

let untouched: string[] = [];
before(async () => {
  await imageFolder(join(root, 'photos'), 150);
  await imageFolder(join(root, 'test-photos'), 4);
  await imageFolder(join(root, 'many-photos'), 2048);
  await imageFolder(join(root, 'new-photos'), 2, ['.']);
  labelFiles();
  weightsFiles([...pageExamples, ...helpExamples]);
  runFolders();
  untouched = snapshot();
});
after(() => rmSync(root, { recursive: true, force: true }));

/** The example as run here: stand-in paths, its outputs under out/N/, --dry-run; a launcher's variables where one starts it. */
function prepared(e: Example, n: number): { argv: string[]; env: NodeJS.ProcessEnv } {
  const argv: string[] = [];
  for (let i = 0; i < e.argv.length; i++) {
    const [flag, inline] = e.argv[i]!.split(/=(.*)/, 2) as [string, string | undefined];
    if (flag === '--out' || flag === '--sheet') argv.push(flag, join(root, 'out', String(n), basename(inline ?? e.argv[++i] ?? '')));
    else argv.push(PATHS[e.argv[i]!.replace(/\/+$/, '')] ?? e.argv[i]!);
  }
  return { argv: [...argv, '--dry-run'], env: { ...baseEnv, ...(e.launched ? LAUNCHER_ENV : {}), ...e.assigns } };
}

test('the README, the docs and every --help show examples, and every --help lists --dry-run', () => {
  assert.ok(pageExamples.length >= 5, `only ${pageExamples.length} examples found in README.md and docs/*.md`);
  assert.equal(helpExamples.length, Object.keys(COMMANDS).length, 'an example in every --help');
  for (const spec of Object.values(COMMANDS)) assert.match(renderHelp(spec), /--dry-run, --no-dry-run +check the command line/, `simclr ${spec.name} --help lists --dry-run`);
  assert.ok(pageExamples.some((e) => e.launched), 'the launcher examples (Slurm, PyTorchJob) are found');
  assert.ok(pageExamples.some((e) => e.argv.includes('--nnodes')), 'the multi-node examples are found');
});

test('every documented example is accepted by --dry-run, prints its plan and writes nothing', async (t) => {
  const seen = new Set<string>();
  for (const [n, e] of [...pageExamples, ...helpExamples].entries()) {
    const key = JSON.stringify([e.argv, e.assigns, e.launched]);
    if (seen.has(key)) continue;
    seen.add(key);
    await t.test(`${e.where}: simclr ${e.argv.join(' ')}`, () => {
      const { argv, env } = prepared(e, n);
      const r = simclr(argv, env);
      assert.equal(r.status, 0, `exit ${r.status}: ${r.stderr}`);
      if (e.argv.includes('--help')) return assert.match(r.stdout, /^simclr \S+: .*\n\nUsage: /);
      assert.match(r.stdout, /^simclr \S+ --dry-run: [\s\S]*\ndry run: nothing was trained or written\n$/);
      if (e.launched) assert.match(r.stdout, /workers +rank 0 of 8, /, 'the launcher\'s variables are read');
    });
  }
  assert.deepEqual(snapshot(), untouched, 'the stand-ins, the run folders and the cache are as they were');
  assert.ok(!existsSync(join(root, 'out')), 'no output was written');
});

test('--dry-run exits 2 naming a data folder or run folder that is not there, and makes nothing', () => {
  const data = simclr(['pretrain', '--data', 'no-such-photos', '--out', 'runs/never', '--dry-run']);
  assert.equal(data.status, 2, data.stderr);
  assert.match(data.stderr, /^simclr: \S*no-such-photos: cannot read the image folder \(ENOENT\): check the path\n$/);
  const labels = simclr(['pipeline', '--unlabeled', 'photos', '--labeled', 'no-labels.csv', '--out', 'runs/never', '--dry-run']);
  assert.equal(labels.status, 2, labels.stderr);
  assert.match(labels.stderr, /no-labels\.csv: cannot read the labeled images \(ENOENT\)/);
  const run = simclr(['finetune', '--from', 'runs/none', '--labeled', 'labels.csv', '--dry-run']);
  assert.equal(run.status, 2, run.stderr);
  assert.match(run.stderr, /runs\/none: not a simclr run folder \(no config\.json\)/);
  assert.ok(!existsSync(join(root, 'runs', 'never')) && !existsSync(join(root, 'runs', 'none')));
});

test('pipeline --dry-run --budget 30m prints the stages in order with their minutes, and writes no run folder', () => {
  const r = simclr(['pipeline', '--unlabeled', 'photos', '--labeled', 'labels.csv', '--out', 'runs/budgeted', '--budget', '30m', '--finetune-epochs', '5', '--dry-run']);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /budget +30\.0 min: pretrain 60% \(18\.0 min\), supervised 6% \(1\.8 min\), finetune 6% \(1\.8 min\), distill 28% \(8\.4 min\)/);
  const stages = r.stdout.split('\n').filter((l) => /^ {4}\d+\. /.test(l));
  assert.equal(stages.length, 5, r.stdout);
  assert.match(stages[0]!, /^ {4}1\. pretrain: epochs from its 18\.0 min of the budget/);
  assert.match(stages[1]!, /^ {4}2\. supervised-labels: epochs from its 1\.8 min of the budget/);
  assert.match(stages[2]!, /^ {4}3\. finetune-labels: 5 epochs, /, 'an epoch count given as a flag stands');
  assert.match(stages[3]!, /^ {4}4\. distill-labels: epochs from its 8\.4 min of the budget/);
  assert.match(stages[4]!, /^ {4}5\. report\.html/);
  assert.match(r.stdout, /data +--unlabeled photos: 300 images; --labeled labels\.csv: 20 labeled images, 2 classes \(cat, dog\)/);
  assert.ok(!existsSync(join(root, 'runs', 'budgeted')), 'no run folder');
});
