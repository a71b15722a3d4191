// The launcher across nodes, on loopback: two launchers (--nnodes 2, one worker each) pretrain
// one run; a worker killed with SIGKILL stops both; --max-restarts brings a killed run back
// from its checkpoint, and a SIGTERM is never restarted; Ctrl-C with a worker stuck (SIGSTOP)
// ends the run within 2 s; an unreachable master and a wrong
// world size fail within the timeout; launcher flags that do not fit, and --device cuda on
// this CPU-only libtorch, are usage errors; scripts/gpu-check.sh says why it cannot run here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from '../src/distributed';
import { tempDir } from './helpers';
import { checkDevice } from '../src/cli/device';
import { checkpointStamps, parseMaster, pretrainRestart, stageRestart, withoutWorkerOptions, workerPlan } from '../src/cli/workers';
import { workerDevice } from '../src/distributed';
import { isPrivateAddress, publicRendezvousProblem } from '../src/distributed/rendezvous-address';

const MAIN = join(__dirname, '..', 'src', 'cli', 'main.js');
const ROOT = join(__dirname, '..', '..');
// A tiny real run: a few hundred Fashion-MNIST images, steps of 64.
const RUN = ['--data', 'fashion-mnist', '--epochs', '1', '--batch', '64', '--width', '0.25', '--threads', '1', '--seed', '0'];

interface Launched {
  child: ChildProcess;
  stdout: string;
  stderr: string;
  done: Promise<{ code: number | null; seconds: number }>;
}

function launch(args: string[], env: NodeJS.ProcessEnv = process.env): Launched {
  const started = Date.now();
  const child = spawn(process.execPath, [MAIN, 'pretrain', ...args], { env });
  const l: Launched = { child, stdout: '', stderr: '', done: null as never };
  child.stdout!.on('data', (d) => (l.stdout += d));
  child.stderr!.on('data', (d) => (l.stderr += d));
  l.done = new Promise((resolve) => child.on('close', (code) => resolve({ code, seconds: (Date.now() - started) / 1000 })));
  return l;
}

function metrics(dir: string): Record<string, number>[] {
  return readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>).filter((m) => m.loss !== undefined);
}

/** Resolves once `l`'s stderr matches `re` (checked as output arrives), with the match. */
function waitFor(l: Launched, re: RegExp): Promise<RegExpExecArray | null> {
  return new Promise((resolve) => {
    const check = () => {
      const m = re.exec(l.stderr);
      if (m) {
        l.child.stderr!.off('data', check);
        resolve(m);
      }
    };
    l.child.stderr!.on('data', check);
    void l.done.then(() => resolve(re.exec(l.stderr)));
  });
}

const node = (rank: number, port: number, extra: string[] = []) => ['--nnodes', '2', '--node-rank', String(rank), '--master', `127.0.0.1:${port}`, '--nproc', '1', ...extra];

test('two launchers on loopback (--nnodes 2, --node-rank 0|1, --master): one run of 2 workers, written by rank 0', async () => {
  const dir = tempDir();
  try {
    const port = await freePort();
    const out = ['--max-images', '320', '--out', join(dir, 'r')];
    const [n0, n1] = [launch([...RUN, ...out, ...node(0, port)]), launch([...RUN, ...out, ...node(1, port)])];
    const [r0, r1] = await Promise.all([n0.done, n1.done]);
    assert.equal(r0.code, 0, n0.stderr);
    assert.equal(r1.code, 0, n1.stderr);
    assert.match(n0.stderr, new RegExp(`simclr: node 0 of 2: 1 worker on this machine \\(pid \\d+ for rank 0 of 2\\), rendezvous 127\\.0\\.0\\.1:${port}, Gloo on 127\\.0\\.0\\.1, 1 thread each`));
    assert.match(n1.stderr, new RegExp(`simclr: node 1 of 2: 1 worker on this machine \\(pid \\d+ for rank 1 of 2\\), rendezvous 127\\.0\\.0\\.1:${port}`));
    assert.match(n0.stdout, /pretraining ResNet-18 \(width 0\.25\) on 320 images/);
    assert.equal(n1.stdout, '', "node 1's worker leaves the talking to rank 0");
    const m = metrics(join(dir, 'r'));
    assert.deepEqual(m.map((x) => [x.step, x.workers]), [1, 2, 3, 4, 5].map((s) => [s, 2]), 'rank 0 writes one line per step of the global batch');
    assert.ok(existsSync(join(dir, 'r', 'pretrain.safetensors')));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('two launchers, the worker of node 1 killed with SIGKILL mid-run: both launchers end within 60 s, non-zero, naming rank 1', async () => {
  const dir = tempDir();
  try {
    const port = await freePort();
    const out = ['--max-images', '2048', '--epochs', '3', '--out', join(dir, 'r')];
    const started = Date.now();
    const [n0, n1] = [launch([...RUN, ...out, ...node(0, port)]), launch([...RUN, ...out, ...node(1, port)])];
    const pid = await waitFor(n1, /pid (\d+) for rank 1/);
    const step = await waitFor(n0, /pretrain epoch 1\/3 \d+\/32/);
    assert.ok(pid && step, `no step was reported: ${n0.stderr}`);
    process.kill(Number(pid[1]), 'SIGKILL');
    const [r0, r1] = await Promise.all([n0.done, n1.done]);
    const seconds = (Date.now() - started) / 1000;
    assert.notEqual(r0.code, 0);
    assert.notEqual(r1.code, 0);
    assert.ok(seconds < 60, `took ${seconds} s`);
    assert.match(n1.stderr, new RegExp(`simclr: stopped: worker rank 1 \\(pid ${pid[1]}\\) was killed by SIGKILL`));
    assert.match(n0.stderr, /worker rank 0 of 2: .* failed; rank 1 stopped answering/);
    assert.match(n0.stderr, /simclr: stopped: worker rank 0 \(pid \d+\) exited with status 1/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('--max-restarts 1: a worker killed in epoch 2 is restarted with --resume from the checkpoint of epoch 1, and the run completes', async () => {
  const dir = tempDir();
  try {
    const run = join(dir, 'r');
    // 4 steps of 64 per epoch, 2 epochs.
    const l = launch([...RUN, '--max-images', '256', '--epochs', '2', '--nproc', '2', '--max-restarts', '1', '--out', run]);
    const pids = await waitFor(l, /pids (\d+), (\d+) for ranks 0-1/);
    const inEpoch2 = await waitFor(l, /pretrain epoch 2\/2 1\/4/);
    assert.ok(pids && inEpoch2, l.stderr);
    process.kill(Number(pids[2]), 'SIGKILL');
    const { code } = await l.done;
    assert.equal(code, 0, l.stderr);
    assert.match(l.stderr, new RegExp(`simclr: worker rank 1 \\(pid ${pids[2]}\\) was killed by SIGKILL; restart 1 of 1: starting the 2 workers on this machine again with --resume, from the checkpoint after epoch 1 \\(step 4\\)`));
    assert.match(l.stdout, /resuming pretrain after epoch 1 \(step 4\)/);
    assert.equal((l.stderr.match(/simclr: 2 workers on this machine/g) ?? []).length, 2, 'started twice');
    const steps = metrics(run).map((m) => m.step);
    // Steps 1-4, then epoch 2 as far as it got (at least step 5), then epoch 2 again from step 5.
    const again = steps.indexOf(5, steps.indexOf(5) + 1);
    assert.ok(again > 4, `step 5 twice: ${steps.join(', ')}`);
    assert.deepEqual(steps.slice(0, 4), [1, 2, 3, 4]);
    assert.deepEqual(steps.slice(again), [5, 6, 7, 8]);
    const meta = JSON.parse(readFileSync(join(run, 'pretrain.json'), 'utf8')) as { epoch: number; step: number };
    assert.deepEqual([meta.epoch, meta.step], [2, 8]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('two launchers with --max-restarts 1, the worker hosting the rendezvous (rank 0) killed: both restart at port + 1 and finish the run', async () => {
  const dir = tempDir();
  try {
    const run = join(dir, 'r');
    const port = await freePort();
    const args = [...RUN, '--max-images', '256', '--epochs', '2', '--max-restarts', '1', '--out', run];
    const [n0, n1] = [launch([...args, ...node(0, port)]), launch([...args, ...node(1, port)])];
    const pid = await waitFor(n0, /pid (\d+) for rank 0/);
    assert.ok(pid && (await waitFor(n0, /pretrain epoch 2\/2 \d+\/4/)), n0.stderr);
    process.kill(Number(pid[1]), 'SIGKILL');
    const [r0, r1] = await Promise.all([n0.done, n1.done]);
    assert.equal(r0.code, 0, n0.stderr);
    assert.equal(r1.code, 0, n1.stderr);
    const restarted = `restart 1 of 1: starting the worker on this machine again with --resume, from the checkpoint after epoch 1 \\(step 4\\), rendezvous port ${port + 1}`;
    assert.match(n0.stderr, new RegExp(`simclr: worker rank 0 \\(pid ${pid[1]}\\) was killed by SIGKILL; ${restarted}`));
    assert.match(n1.stderr, /\[rank 1\] simclr: worker rank 1 of 2: .* failed; the rendezvous store on rank 0 \(127\.0\.0\.1:\d+\) is unreachable too, so rank 0 has stopped/);
    assert.match(n1.stderr, new RegExp(`simclr: worker rank 1 \\(pid \\d+\\) exited with status 1; ${restarted}`));
    assert.match(n1.stderr, new RegExp(`simclr: node 1 of 2: 1 worker on this machine \\(pid \\d+ for rank 1 of 2\\), rendezvous 127\\.0\\.0\\.1:${port + 1}`));
    const steps = metrics(run).map((m) => m.step);
    assert.deepEqual(steps.slice(0, 4), [1, 2, 3, 4]);
    assert.deepEqual(steps.slice(steps.lastIndexOf(5)), [5, 6, 7, 8], `epoch 2 again after the restart: ${steps.join(', ')}`);
    assert.ok(metrics(run).every((m) => m.workers === 2));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('--max-restarts: a SIGTERM to the launcher stops the workers with a checkpoint and is not restarted (exit 143)', async () => {
  const dir = tempDir();
  try {
    const run = join(dir, 'r');
    const l = launch([...RUN, '--max-images', '2048', '--nproc', '2', '--max-restarts', '2', '--out', run]);
    assert.ok(await waitFor(l, /pretrain epoch 1\/1 \d+\/32/), l.stderr);
    l.child.kill('SIGTERM');
    const { code } = await l.done;
    assert.equal(code, 143, l.stderr);
    assert.doesNotMatch(l.stderr, /restart/);
    assert.equal((l.stderr.match(/workers on this machine/g) ?? []).length, 1);
    const meta = JSON.parse(readFileSync(join(run, 'pretrain.json'), 'utf8')) as { epoch: number; batch: number };
    assert.equal(meta.epoch, 0);
    assert.ok(meta.batch >= 1, 'a mid-epoch checkpoint');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** Ctrl-C to the launcher ends the run within 2 s with exit 130, and the stuck (stopped) worker with it. */
async function ctrlCEndsWithin2s(l: Launched, stuck: number): Promise<void> {
  const sent = Date.now();
  l.child.kill('SIGINT');
  const { code } = await l.done;
  const seconds = (Date.now() - sent) / 1000;
  assert.equal(code, 130, l.stderr);
  assert.ok(seconds < 2, `ended ${seconds.toFixed(2)} s after Ctrl-C`);
  assert.throws(() => process.kill(stuck, 0), /ESRCH/, 'the stuck worker was ended');
}

test('Ctrl-C while a worker is stuck (SIGSTOP): the run ends within 2 s with exit 130, the stuck worker with it', async () => {
  const dir = tempDir();
  let stuck = 0;
  try {
    const run = join(dir, 'r');
    const l = launch([...RUN, '--max-images', '16384', '--nproc', '2', '--out', run]);
    const pids = await waitFor(l, /pids (\d+), (\d+) for ranks 0-1/);
    assert.ok(pids, l.stderr);
    assert.ok(await waitFor(l, /pretrain epoch 1\/1 [1-9]\d*\/256/), l.stderr);
    stuck = Number(pids[2]);
    process.kill(stuck, 'SIGSTOP');
    await new Promise((resolve) => setTimeout(resolve, 500)); // rank 0 now waits for rank 1 in a collective
    await ctrlCEndsWithin2s(l, stuck);
    assert.match(l.stderr, /worker rank 0 of 2: SIGINT while .* waited for a worker that does not answer/);
    stuck = 0;
  } finally {
    if (stuck) spawnSync('kill', ['-KILL', String(stuck)]); // gone already, unless a check failed first
    rmSync(dir, { recursive: true, force: true });
  }
});

test('Ctrl-C while the workers meet and one never joins (stopped before the rendezvous): the run ends within 2 s with exit 130; one process waiting alone for its peer ends at once', async () => {
  const dir = tempDir();
  let stuck = 0;
  try {
    const l = launch([...RUN, '--max-images', '256', '--nproc', '2', '--out', join(dir, 'r')], { ...process.env, SIMCLR_DIST_TIMEOUT: '120' });
    const pids = await waitFor(l, /pids (\d+), (\d+) for ranks 0-1/);
    assert.ok(pids, l.stderr);
    stuck = Number(pids[2]);
    process.kill(stuck, 'SIGSTOP'); // before it joins: rank 0 waits for it at the rendezvous
    await new Promise((resolve) => setTimeout(resolve, 3000));
    assert.ok(!existsSync(join(dir, 'r', 'metrics.jsonl')), 'nothing trained: the workers never met');
    await ctrlCEndsWithin2s(l, stuck);
    stuck = 0;
    // A worker a launcher started alone (WORLD_SIZE 2, its peer never comes): Ctrl-C ends it, not the timeout.
    const env = { ...process.env, WORLD_SIZE: '2', RANK: '0', LOCAL_RANK: '0', MASTER_ADDR: '127.0.0.1', MASTER_PORT: String(await freePort()), SIMCLR_DIST_TIMEOUT: '120' };
    const alone = launch([...RUN, '--max-images', '256', '--out', join(dir, 'alone')], env);
    await new Promise((resolve) => setTimeout(resolve, 4000));
    const at = Date.now();
    alone.child.kill('SIGINT');
    const ended = await alone.done;
    assert.ok((Date.now() - at) / 1000 < 2, `ended ${((Date.now() - at) / 1000).toFixed(2)} s after Ctrl-C`);
    assert.notEqual(ended.code, 0, alone.stderr);
  } finally {
    if (stuck) spawnSync('kill', ['-KILL', String(stuck)]);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('an unreachable master and a wrong world size: clear errors within SIMCLR_DIST_TIMEOUT', async () => {
  const dir = tempDir();
  const env = { ...process.env, SIMCLR_DIST_TIMEOUT: '3' };
  try {
    // Node 1 alone: nothing listens on the master's port (and 192.0.2.1 is a documentation address no one routes).
    const closed = await freePort();
    for (const master of [`127.0.0.1:${closed}`, '192.0.2.1:29500']) {
      const l = launch([...RUN, '--max-images', '128', '--out', join(dir, 'a'), '--nnodes', '2', '--node-rank', '1', '--master', master, '--nproc', '1'], env);
      const r = await l.done;
      assert.equal(r.code, 1, l.stderr);
      assert.ok(r.seconds < 20, `took ${r.seconds} s`);
      assert.match(l.stderr, new RegExp(`\\[rank 1\\] simclr: worker rank 1 of 2: cannot reach the rendezvous at ${master.replace(/\./g, '\\.')} \\(rank 0's machine\\) within 3 s`));
      assert.match(l.stderr, /simclr: stopped: worker rank 1 \(pid \d+\) exited with status 1/);
    }
    // Node 1 told --nnodes 3, node 0 --nnodes 2: their WORLD_SIZEs differ.
    const port = await freePort();
    const out = ['--max-images', '128', '--out', join(dir, 'b')];
    const n0 = launch([...RUN, ...out, '--nnodes', '2', '--node-rank', '0', '--master', `127.0.0.1:${port}`], env);
    const n1 = launch([...RUN, ...out, '--nnodes', '3', '--node-rank', '1', '--master', `127.0.0.1:${port}`], env);
    const [r0, r1] = await Promise.all([n0.done, n1.done]);
    assert.notEqual(r0.code, 0);
    assert.notEqual(r1.code, 0);
    assert.ok(Math.max(r0.seconds, r1.seconds) < 25, `took ${r0.seconds}, ${r1.seconds} s`);
    assert.match(n0.stderr, /worker rank 0: WORLD_SIZE is 2 here but 3 on rank 1; every worker must be given the same/);
    // Node 1's worker reads rank 0's WORLD_SIZE, or finds the rendezvous closed by rank 0's stop, whichever comes first.
    assert.match(n1.stderr, /\[rank 1\] simclr: worker rank 1(?: of 3)?: (?:WORLD_SIZE is 3 here but 2 on rank 0|the rendezvous at 127\.0\.0\.1:\d+ closed before every worker had joined: rank 0 stopped, and its error says why)/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("the workers' command line drops every launcher option with its value, switches alone, and keeps the rest", () => {
  const argv = ['--data', 'x', '--nproc', '2', '--master', '10.0.0.1:29500', '--allow-public-rendezvous', '--iface=eth0', '--max-restarts', '1', '--no-allow-public-rendezvous', '--out', 'r', '--node-rank', '0', '--nnodes', '2', '--master-port=4', '--knn'];
  assert.deepEqual(withoutWorkerOptions(argv), ['--data', 'x', '--out', 'r', '--knn']);
});

test('launcher flags that do not fit, and --device, are usage errors naming them (exit 2), before anything starts', () => {
  const dir = tempDir();
  try {
    const out = join(dir, 'r');
    const cases: [string[], RegExp, NodeJS.ProcessEnv?][] = [
      [['--nnodes', '2'], /--nnodes 2 needs --master HOST:PORT: the address of node 0/],
      [['--nnodes', '2', '--node-rank', '2', '--master', '127.0.0.1:29500'], /--node-rank 2 is out of range: with --nnodes 2 it must be from 0 to 1/],
      [['--node-rank', '1'], /--node-rank 1 is out of range: with --nnodes 1 it must be 0/],
      [['--nnodes', '2', '--master', '127.0.0.1'], /--master must be HOST:PORT, .* got '127\.0\.0\.1'/],
      [['--nnodes', '2', '--master', 'node0:70000'], /--master must be HOST:PORT, .* got 'node0:70000'/],
      [['--master', '127.0.0.1:29500', '--master-port', '29501'], /--master 127\.0\.0\.1:29500 holds the port already; leave out --master-port 29501/],
      [['--nnodes', '2', '--node-rank', '1', '--master', 'no-such-host.invalid:29500'], /the master address 'no-such-host\.invalid' does not resolve on this machine/],
      [['--master', '10.0.0.1:29500'], /--master 10\.0\.0\.1:29500 sets the rendezvous, but so does the environment \(MASTER_ADDR=10\.0\.0\.2, MASTER_PORT=29500\)/, { MASTER_ADDR: '10.0.0.2', MASTER_PORT: '29500' }],
      [['--nproc', '2', '--max-restarts', '1'], /--nproc 2, --max-restarts 1 start workers, but WORLD_SIZE=2 says a launcher already started this one/, { WORLD_SIZE: '2' }],
      [['--max-restarts', '3', '--master-port', '65534'], /restart k meets at port 65534\+k, past 65535/],
      [['--device', 'gpu'], /--device must be cpu, cuda or cuda:N/],
      [['--allow-public-rendezvous'], /--allow-public-rendezvous accepts a public --master address: it goes with --master/],
    ];
    for (const [args, message, env] of cases) {
      const r = spawnSync(process.execPath, [MAIN, 'pretrain', ...RUN, '--out', out, ...args], { encoding: 'utf8', env: { ...process.env, ...env } });
      assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, message, args.join(' '));
    }
    assert.equal(existsSync(out), false, 'nothing was started');
    // --device cuda on Debian's CPU-only libtorch: which libtorch to point LIBTORCH at, no stack trace.
    for (const command of [['pretrain', ...RUN, '--out', out], ['finetune', '--from', out]]) {
      const r = spawnSync(process.execPath, [MAIN, ...command, '--device', 'cuda'], { encoding: 'utf8' });
      assert.equal(r.status, 2, r.stderr);
      assert.match(r.stderr, /^simclr: --device cuda: this addon is built against libtorch [\d.]+ from \w+, which has no CUDA/);
      assert.ok(r.stderr.includes("LIBTORCH=<the torch folder of a CUDA PyTorch install, printed by python3 -c 'import torch,os;print(os.path.dirname(torch.__file__))'> node scripts/setup.mjs --native"), r.stderr);
      assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a rendezvous routable on the internet is refused unless allowed; private, loopback, shared and documentation addresses pass', () => {
  for (const ip of ['127.0.0.1', '10.1.2.3', '172.31.255.1', '192.168.0.9', '169.254.1.1', '100.64.0.1', '100.127.255.255', '192.0.2.1', '198.51.100.7', '203.0.113.200', '::1', 'fd12:3456::1', 'fe80::1%eth0', '2001:db8::5', '::ffff:10.0.0.1']) {
    assert.equal(isPrivateAddress(ip), true, ip);
  }
  for (const ip of ['8.8.8.8', '172.32.0.1', '100.128.0.1', '192.0.3.1', '11.0.0.1', '2a00:1450::1', '::ffff:8.8.4.4']) assert.equal(isPrivateAddress(ip), false, ip);
  const problem = publicRendezvousProblem('node0.example', '8.8.8.8', false);
  assert.match(problem!, /the rendezvous address node0\.example \(8\.8\.8\.8\) is routable on the internet: .* pass --allow-public-rendezvous/);
  assert.equal(publicRendezvousProblem('node0.example', '8.8.8.8', true), null);
  assert.equal(publicRendezvousProblem('10.0.0.1', '10.0.0.1', false), null);
});

test('scripts/gpu-check.sh on a machine without CUDA: exit 1 with every reason, before building anything', () => {
  const r = spawnSync('bash', [join(ROOT, 'scripts', 'gpu-check.sh')], { encoding: 'utf8', env: { ...process.env, PATH: `/usr/bin:/bin`, LIBTORCH: '/usr', PYTHON: '/usr/bin/python3' } });
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /gpu-check: cannot run here:/);
  assert.match(r.stderr, /no NVIDIA driver on this machine \(nvidia-smi not found\)/);
  assert.match(r.stderr, /LIBTORCH=\/usr has no lib\/libtorch_cuda\.so, so it is a CPU-only libtorch/);
  assert.match(r.stderr, /\/usr\/bin\/python3 has no PyTorch 2\.0 or later that reaches a GPU/);
  assert.doesNotMatch(r.stderr, /building the addon/);
});

test('the checks a CUDA build meets: no GPU seen, cuda:N past the last GPU, more workers than GPUs, cuda:N with workers, a LOCAL_RANK past the GPUs', () => {
  const cuda = { libtorchVersion: '2.4.0', builtFrom: 'LIBTORCH=/opt/torch', cudaBuild: true, cudaDeviceCount: 2 };
  assert.doesNotThrow(() => checkDevice('cpu', { ...cuda, cudaBuild: false, cudaDeviceCount: 0 }));
  assert.throws(() => checkDevice('cuda', { ...cuda, cudaDeviceCount: 0 }), { name: 'UsageError', message: /--device cuda: libtorch 2\.4\.0 has CUDA but sees no GPU \(check nvidia-smi and CUDA_VISIBLE_DEVICES/ });
  assert.throws(() => checkDevice('cuda:2', cuda), { message: /--device cuda:2: there are 2 GPUs \(cuda:0 to cuda:1\)/ });
  assert.throws(() => checkDevice('cuda', cuda, 4), { message: /--device cuda with --nproc 4: each worker needs a GPU of its own, and 2 are seen/ });
  assert.throws(() => checkDevice('cuda:1', cuda, 2), { message: /--device cuda:1 with --nproc 2: each worker takes the GPU of its LOCAL_RANK; write --device cuda/ });
  assert.doesNotThrow(() => checkDevice('cuda:1', cuda));
  assert.doesNotThrow(() => checkDevice('cuda', cuda, 2));
  const saved = process.env.LOCAL_RANK;
  try {
    process.env.LOCAL_RANK = '2';
    assert.throws(() => checkDevice('cuda', cuda), { message: /--device cuda: this worker's LOCAL_RANK is 2, but libtorch sees 2 GPUs/ });
    process.env.LOCAL_RANK = '1';
    assert.doesNotThrow(() => checkDevice('cuda', cuda));
  } finally {
    if (saved === undefined) delete process.env.LOCAL_RANK;
    else process.env.LOCAL_RANK = saved;
  }
  assert.throws(() => checkDevice('cpu:0', cuda), { message: /--device must be cpu, cuda or cuda:N/ });
});

test("--device cuda is the GPU of the worker's LOCAL_RANK; cpu and cuda:N stay as given", () => {
  assert.equal(workerDevice(undefined, {}), 'cpu');
  assert.equal(workerDevice('cpu', { LOCAL_RANK: '3' }), 'cpu');
  assert.equal(workerDevice('cuda', {}), 'cuda:0');
  assert.equal(workerDevice('cuda', { LOCAL_RANK: '3' }), 'cuda:3');
  assert.equal(workerDevice('cuda:1', { LOCAL_RANK: '3' }), 'cuda:1');
  assert.equal(workerDevice('cuda', { RANK: '5' }), 'cuda:0', 'the global rank never names the GPU');
  assert.equal(workerDevice('cuda', { RANK: '5', SLURM_LOCALID: '1' }), 'cuda:1', "Slurm's local rank");
});

test('--master parsing, the launcher plan, and where a restart starts from', () => {
  assert.deepEqual(parseMaster('node0.cluster:29500'), { host: 'node0.cluster', port: 29500 });
  assert.deepEqual(parseMaster('[fd00::1]:29500'), { host: 'fd00::1', port: 29500 });
  for (const bad of ['fd00::1:29500', 'host:0', ':29500', 'host:', 'a b:1']) assert.throws(() => parseMaster(bad), { name: 'UsageError' }, bad);
  assert.equal(workerPlan({ nproc: 1 }, {}), null, 'no launcher flag: this process is the worker');
  assert.deepEqual(workerPlan({ nproc: 2, nnodes: 3, nodeRank: 2, master: '10.0.0.1:29500', maxRestarts: 1 }, {}), { nproc: 2, nnodes: 3, nodeRank: 2, maxRestarts: 1, masterAddr: '10.0.0.1', masterPort: 29500 });
  const dir = tempDir();
  try {
    const args = ['pretrain', '--out', join(dir, 'r')];
    assert.deepEqual(pretrainRestart(args, join(dir, 'r')), { args, from: 'from the start (the run folder was not made yet)' });
    mkdirSync(join(dir, 'r'));
    writeFileSync(join(dir, 'r', 'config.json'), '{}');
    assert.deepEqual(pretrainRestart(args, join(dir, 'r')).from, 'with --resume, from step 0 (no checkpoint was written yet)');
    writeFileSync(join(dir, 'r', 'pretrain.json'), JSON.stringify({ epoch: 2, batch: 3, step: 11 }));
    assert.deepEqual(pretrainRestart([...args, '--no-resume'], join(dir, 'r')), { args: [...args, '--resume'], from: 'with --resume, from the checkpoint after epoch 2, batch 3 (step 11)' });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a classifier stage restarts with --resume only from a checkpoint its failed attempt wrote, not from an older run of the stage', () => {
  const dir = tempDir();
  try {
    const run = join(dir, 'r');
    mkdirSync(run);
    const args = ['finetune', '--from', run, '--labels', '1%'];
    // An earlier command trained the stage; this one trains it afresh.
    for (const f of ['finetune-1pct.json', 'finetune-1pct.safetensors', 'pretrain.json', 'pretrain.safetensors']) writeFileSync(join(run, f), '{}');
    writeFileSync(join(run, 'labels-1pct.json'), '{}'); // no .safetensors beside it: not a checkpoint
    utimesSync(join(run, 'finetune-1pct.json'), new Date(2020, 0, 1), new Date(2020, 0, 1));
    const atLaunch = checkpointStamps(run);
    assert.deepEqual([...atLaunch.keys()].sort(), ['finetune-1pct', 'pretrain']);
    assert.deepEqual(stageRestart(args, run, atLaunch), { args, from: 'from the start (no checkpoint was written yet)' });
    // The failed attempt saved its first epoch: the restart continues it.
    writeFileSync(join(run, 'finetune-1pct.json'), '{"epoch":1}');
    assert.deepEqual(stageRestart([...args, '--no-resume'], run, atLaunch), { args: [...args, '--resume'], from: "with --resume, from the stage's last checkpoint" });
    // A stage checkpoint that was not there at the launch counts too; --resume as given stays.
    assert.deepEqual(stageRestart(args, run, new Map()).args, [...args, '--resume']);
    assert.deepEqual(stageRestart([...args, '--resume'], run, atLaunch).args, [...args, '--resume']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("pretraining's batch against the workers and the images: a usage error before the run folder is written, never restarted (exit 2)", () => {
  const dir = tempDir();
  try {
    const out = join(dir, 'r');
    const r = spawnSync(process.execPath, [MAIN, 'pretrain', '--data', 'fashion-mnist', '--max-images', '128', '--epochs', '1', '--batch', '2', '--width', '0.25', '--threads', '1', '--nproc', '3', '--max-restarts', '1', '--out', out], { encoding: 'utf8' });
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /simclr: pretraining's --batch 2 must hold at least one image per worker \(3 workers\): give --batch 3 or more, or fewer workers/);
    assert.match(r.stderr, /a usage error that a restart would repeat \(not restarted\)/);
    assert.equal((r.stderr.match(/workers on this machine/g) ?? []).length, 1, 'started once');
    assert.equal(existsSync(join(out, 'config.json')), false, 'nothing written');
    const few = spawnSync(process.execPath, [MAIN, 'pretrain', '--data', 'fashion-mnist', '--max-images', '100', '--epochs', '1', '--batch', '128', '--width', '0.25', '--threads', '1', '--out', out], { encoding: 'utf8' });
    assert.equal(few.status, 2, few.stderr);
    assert.match(few.stderr, /^simclr: pretraining's --batch 128 is more than the 100 images to pretrain on \(--max-images\)/);
    assert.equal(existsSync(join(out, 'config.json')), false, 'nothing written');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the demo under the launcher (--nproc, --max-restarts) is refused before anything starts: its budget is planned for one process', () => {
  // An option's value that happens to name a worker option is not one (--out master).
  const named = spawnSync(process.execPath, [MAIN, 'demo', '--out', 'master', '--dry-run'], { encoding: 'utf8', timeout: 60_000 });
  assert.doesNotMatch(named.stderr, /the demo runs in one process/, named.stderr);
  for (const flags of [['--max-restarts', '1'], ['--nproc', '2', '--out', 'x']]) {
    const r = spawnSync(process.execPath, [MAIN, 'demo', '--quick', ...flags], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /^simclr: the demo runs in one process \(its time budget is planned for one\): leave out --nproc, --nnodes and --max-restarts/);
    assert.doesNotMatch(r.stderr, /workers? on this machine/, 'nothing started');
  }
});
