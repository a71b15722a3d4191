// Command options: one table per command drives the parser, --help and the README.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { COMMANDS, PIPELINE_FIXED, pretrainOptions } from '../src/cli/specs';
import { UsageError, nearest, parseCommand } from '../src/cli/options';
import { cliReference } from '../src/cli/docs';
import { pipelinePlan } from '../src/cli/pipeline';
import { CLASSIFIER_DEFAULTS, defaultPretrainLr } from '../src/run';

const MAIN = join(__dirname, '..', 'src', 'cli', 'main.js');
const simclr = (...args: string[]) => spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8' });

test('docs/cli.md is what the option tables render, and each command\'s list there is what --help prints', () => {
  const doc = readFileSync(join(__dirname, '..', '..', 'docs', 'cli.md'), 'utf8');
  assert.equal(doc, cliReference(), 'docs/cli.md is out of date: run npm run docs:cli');
  for (const name of Object.keys(COMMANDS)) assert.match(doc, new RegExp(`^## ${name}$`, 'm'), `docs/cli.md has a section for ${name}`);
  const help = simclr('finetune', '--help');
  assert.equal(help.status, 0, help.stderr);
  const section = doc.slice(doc.indexOf('## finetune'));
  const block = /```text\n([\s\S]*?)\n```/.exec(section)![1]!;
  for (const line of block.split('\n')) assert.ok(help.stdout.includes(line), `simclr finetune --help prints ${line.trim()}`);
  assert.match(doc, /## Worker options[\s\S]*--nproc/, 'the worker options listed once');
  assert.equal((doc.match(/--master-port N/g) ?? []).length, 1, 'the worker options are not repeated under each command');
});

test('simclr pretrain --help lists every option with its default', () => {
  const r = simclr('pretrain', '--help');
  assert.equal(r.status, 0);
  for (const [name, o] of Object.entries(pretrainOptions)) {
    assert.match(r.stdout, new RegExp(`--${name}\\b`), `--${name} listed`);
    if ('default' in o && o.type !== 'boolean') assert.match(r.stdout, new RegExp(`--${name} [^\\n]*(\\n +)?[^\\n]*\\(default: ${String(o.default).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`), `--${name} shows its default`);
  }
  assert.match(r.stdout, /--skip-bad-images, --no-skip-bad-images[\s\S]*?\(default: off\)/);
  assert.match(r.stdout, /--epochs N +pretraining epochs \(default: 100\)/);
  assert.match(r.stdout, /--interpolation bicubic\|bilinear/);
  // every command has its own help
  for (const name of Object.keys(COMMANDS)) {
    const h = simclr(name, '--help');
    assert.equal(h.status, 0, `${name} --help`);
    assert.match(h.stdout, new RegExp(`^simclr ${name}: `));
  }
});

test('an unknown option exits 2 and names the nearest known one', () => {
  const r = simclr('pretrain', '--epoch', '3', '--data', 'fashion-mnist', '--out', '/nonexistent-simclr/x');
  assert.equal(r.status, 2);
  assert.match(r.stderr, /unknown option --epoch for 'pretrain'; did you mean --epochs\?/);
  assert.equal(nearest('lables', ['labels', 'lr', 'seed']), 'labels');
  assert.equal(nearest('zzzzzz', ['labels', 'lr', 'seed']), null);
});

test('booleans are --name / --no-name everywhere, and take no value', () => {
  const spec = COMMANDS.pretrain;
  assert.equal(parseCommand(spec, ['--knn']).values.knn, true);
  assert.equal(parseCommand(spec, ['--knn', '--no-knn']).values.knn, false);
  assert.equal(parseCommand(spec, ['--pixel-crops']).values.pixelCrops, true);
  assert.equal(parseCommand(COMMANDS.supervised, []).values.pixelCrops, true, "the baseline's default");
  assert.equal(parseCommand(COMMANDS.supervised, ['--no-pixel-crops']).values.pixelCrops, false);
  assert.throws(() => parseCommand(spec, ['--knn=yes']), (e: Error) => e instanceof UsageError && /--knn takes no value, got 'yes': write --knn or --no-knn/.test(e.message));
  assert.throws(() => parseCommand(spec, ['--pixel-crops', 'yes']), /--pixel-crops takes no value, got 'yes'/);
  assert.throws(() => parseCommand(spec, ['--epochs']), /--epochs needs a value/);
  assert.throws(() => parseCommand(spec, ['--out', '--epochs', '3']), /--out needs a value \(RUN\)/);
  assert.throws(() => parseCommand(spec, ['--epochs', '2.5']), /--epochs must be an integer >= 1, got '2.5'/);
  assert.throws(() => parseCommand(spec, ['--image-size', 'big']), /--image-size must be an integer >= 8 and <= 4096 or 'auto', got 'big'/);
  assert.equal(parseCommand(spec, ['--image-size', '28']).values.imageSize, 28);
  assert.equal(parseCommand(spec, []).values.imageSize, 'auto');
  assert.throws(() => parseCommand(spec, ['stray']), /'pretrain' takes no positional arguments/);
  assert.deepEqual(parseCommand(COMMANDS.predict, ['--model', 'r', 'a.jpg', 'b.png']).positionals, ['a.jpg', 'b.png']);
});

test('pipeline passes every stage option, booleans included, to its stage as typed settings', () => {
  const argv = ['--data', 'x', '--out', 'y', '--seed', '4', '--pretrain-epochs', '3', '--finetune-seed', '9', '--no-supervised-pixel-crops', '--pretrain-knn'];
  const plan = pipelinePlan(parseCommand(COMMANDS.pipeline, argv));
  assert.deepEqual(plan.pretrain, { epochs: 3, knn: true }, 'a boolean stage option given last');
  assert.equal(plan.seed, 4, "the pipeline's seed, for every stage");
  assert.deepEqual(plan.finetune, { seed: 9 });
  assert.deepEqual(plan.supervised, { pixelCrops: false });
  assert.deepEqual(plan.distill, {});
  assert.deepEqual(plan.labels, ['1%', '10%']);
  assert.equal(CLASSIFIER_DEFAULTS.supervised.pixelCrops, true, 'so the flag overrides a default');
  for (const fixed of PIPELINE_FIXED) assert.ok(!Object.hasOwn(COMMANDS.pipeline.options, `finetune-${fixed}`), `--finetune-${fixed} is set by the pipeline itself`);
  assert.throws(() => parseCommand(COMMANDS.pipeline, ['--epochs', '3']), /unknown option --epochs for 'pipeline'; stage options take the stage's prefix: --pretrain-epochs/);
  assert.throws(() => parseCommand(COMMANDS.pipeline, ['--finetune-lr', 'fast']), /--finetune-lr must be a number >= 0, got 'fast'/);
});

test("pretraining's learning rate follows the paper by image size, with --lr-scaling linear|sqrt", () => {
  assert.equal(defaultPretrainLr(32, 'linear'), 1.0, 'the official CIFAR-10 recipe');
  assert.equal(defaultPretrainLr(224, 'linear'), 0.3);
  assert.equal(defaultPretrainLr(224, 'sqrt'), 0.075);
  assert.equal(parseCommand(COMMANDS.pretrain, ['--lr-scaling', 'sqrt']).values.lrScaling, 'sqrt');
  assert.throws(() => parseCommand(COMMANDS.pretrain, ['--lr-scaling', 'log']), /--lr-scaling must be linear or sqrt, got 'log'/);
});
