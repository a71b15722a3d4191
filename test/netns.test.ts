// Two real nodes: two network namespaces joined by a veth pair, each with a host name of its
// own (a UTS namespace) that its /etc/hosts maps to 127.0.1.1, as Debian's does. The
// addresses come from 192.0.2.0/24 (reserved for documentation, so they never name a real
// host) and live only inside the namespaces this file makes and deletes. `pretrain --nnodes
// 2` with one worker in each must pass with no environment tweak: the workers' Gloo devices
// listen on the address that routes to the master, not on the host name's loopback one.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { launcherGlooAddress, workerGlooAddress } from '../src/distributed/gloo-address';
import { tempDir } from './helpers';

const MAIN = join(__dirname, '..', 'src', 'cli', 'main.js');
const tag = String(process.pid % 100000);
const NODES = [
  { ns: `simclr-a${tag}`, dev: `sva${tag}`, addr: '192.0.2.1', host: 'node-a' },
  { ns: `simclr-b${tag}`, dev: `svb${tag}`, addr: '192.0.2.2', host: 'node-b' },
];
const RUN = ['--data', 'fashion-mnist', '--max-images', '320', '--epochs', '1', '--batch', '64', '--width', '0.25', '--threads', '1', '--seed', '0'];

function ip(...args: string[]): void {
  const r = spawnSync('ip', args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr || r.error}`);
}

function makeNamespaces(): void {
  for (const n of NODES) {
    ip('netns', 'add', n.ns);
    // ip netns exec reads /etc/netns/NAME/hosts in place of /etc/hosts: the host name on 127.0.1.1, as Debian writes it.
    mkdirSync(`/etc/netns/${n.ns}`, { recursive: true });
    writeFileSync(`/etc/netns/${n.ns}/hosts`, `127.0.0.1 localhost\n127.0.1.1 ${n.host}\n`);
  }
  ip('link', 'add', NODES[0]!.dev, 'type', 'veth', 'peer', 'name', NODES[1]!.dev);
  for (const n of NODES) {
    ip('link', 'set', n.dev, 'netns', n.ns);
    ip('-n', n.ns, 'addr', 'add', `${n.addr}/24`, 'dev', n.dev);
    ip('-n', n.ns, 'link', 'set', n.dev, 'up');
    ip('-n', n.ns, 'link', 'set', 'lo', 'up');
  }
}

function deleteNamespaces(): void {
  for (const n of NODES) {
    spawnSync('ip', ['netns', 'del', n.ns]); // takes its end of the veth pair, and so the pair, with it
    rmSync(`/etc/netns/${n.ns}`, { recursive: true, force: true });
  }
}

interface OnNode {
  /** the output so far */
  readonly stderr: string;
  /** resolves once stderr matches (null if the command ended first) */
  waitFor(re: RegExp): Promise<RegExpExecArray | null>;
  done: Promise<{ code: number | null; stdout: string; stderr: string }>;
}

/** `simclr pretrain ARGS` started in node n's namespace, under its own host name. */
function startOnNode(n: (typeof NODES)[number], args: string[], env: NodeJS.ProcessEnv): OnNode {
  const child = spawn('ip', ['netns', 'exec', n.ns, 'unshare', '--uts', 'sh', '-c', `hostname ${n.host} && exec "$0" "$@"`, process.execPath, MAIN, 'pretrain', ...args], { env });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), 180_000);
  const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => child.on('close', (code) => (clearTimeout(timer), resolve({ code, stdout, stderr }))));
  const waitFor = (re: RegExp) =>
    new Promise<RegExpExecArray | null>((resolve) => {
      const check = (): void => {
        const m = re.exec(stderr);
        if (m) (child.stderr.off('data', check), resolve(m));
      };
      child.stderr.on('data', check);
      check();
      void done.then(() => resolve(re.exec(stderr)));
    });
  return {
    get stderr() {
      return stderr;
    },
    waitFor,
    done,
  };
}

function onNode(n: (typeof NODES)[number], args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return startOnNode(n, args, env).done;
}

before(makeNamespaces);
after(deleteNamespaces);

test('the Gloo address: loopback for a loopback master, a named interface, and an interface that is not there named with those that are', async () => {
  assert.equal(await launcherGlooAddress('127.0.0.1', 2), '127.0.0.1');
  assert.equal(await launcherGlooAddress('127.0.0.1', 2, 'lo'), '127.0.0.1');
  assert.equal(workerGlooAddress({ GLOO_SOCKET_IFNAME: 'lo' }, '192.0.2.1', 2), '127.0.0.1');
  assert.equal(workerGlooAddress({ SIMCLR_GLOO_ADDR: '192.0.2.7' }, '192.0.2.1', 2), '192.0.2.7');
  await assert.rejects(launcherGlooAddress('192.0.2.1', 2, 'nosuch0'), /--iface nosuch0: this machine has no such interface with an address; its interfaces: /);
  assert.throws(() => workerGlooAddress({ GLOO_SOCKET_IFNAME: 'nosuch0' }, '192.0.2.1', 2), /GLOO_SOCKET_IFNAME nosuch0: this machine has no such interface/);
});

test('two nodes in network namespaces, host names on 127.0.1.1: pretrain --nnodes 2 runs with no environment tweak; a master that resolves to loopback is refused', async () => {
  const dir = tempDir('simclr-netns-');
  const env: NodeJS.ProcessEnv = { ...process.env, SIMCLR_CACHE: join(dir, 'cache'), SIMCLR_DIST_TIMEOUT: '60' };
  delete env.GLOO_SOCKET_IFNAME;
  const port = '29581';
  const out = ['--out', join(dir, 'r')];
  const node = (k: number) => ['--nnodes', '2', '--node-rank', String(k), '--nproc', '1', '--master', `192.0.2.1:${port}`];
  const [a, b] = await Promise.all([onNode(NODES[0]!, [...RUN, ...out, ...node(0)], env), onNode(NODES[1]!, [...RUN, ...out, ...node(1)], env)]);
  assert.equal(a.code, 0, a.stderr);
  assert.equal(b.code, 0, b.stderr);
  assert.match(a.stderr, new RegExp(`node 0 of 2: .*rendezvous 192\\.0\\.2\\.1:${port}, Gloo on 192\\.0\\.2\\.1`));
  assert.match(b.stderr, /node 1 of 2: .*, Gloo on 192\.0\.2\.2/);
  const steps = readFileSync(join(dir, 'r', 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { step?: number; workers?: number }).filter((m) => m.step !== undefined);
  assert.deepEqual(steps.map((m) => m.workers), [2, 2, 2, 2, 2], 'five steps of the global batch, on two workers');
  // node-a names 127.0.1.1 in its own /etc/hosts: Gloo there would listen where node b cannot reach.
  const refused = await onNode(NODES[0]!, [...RUN, '--out', join(dir, 'x'), '--nnodes', '2', '--node-rank', '0', '--nproc', '1', '--master', `node-a:${port}`], env);
  assert.equal(refused.code, 2);
  assert.match(refused.stderr, new RegExp(`the master 'node-a' resolves to a loopback address on this machine \\(127\\.0\\.1\\.1\\).*--iface NAME \\(this machine's interfaces: ${NODES[0]!.dev} \\(192\\.0\\.2\\.1[,)]`));
  rmSync(dir, { recursive: true, force: true });
});

/** The step numbers rank 0 wrote to metrics.jsonl, in order. */
function stepsOf(run: string): number[] {
  return readFileSync(join(run, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { step?: number }).filter((m) => m.step !== undefined).map((m) => m.step!);
}

test('a node whose worker is killed mid-epoch: the other node names it within 60 s, and --max-restarts resumes both from the checkpoint', async () => {
  const dir = tempDir('simclr-netns-kill-');
  const env: NodeJS.ProcessEnv = { ...process.env, SIMCLR_CACHE: join(dir, 'cache'), SIMCLR_DIST_TIMEOUT: '30' };
  delete env.GLOO_SOCKET_IFNAME;
  const run = join(dir, 'r');
  const args = (k: number) => [...RUN, '--max-images', '256', '--epochs', '2', '--max-restarts', '1', '--out', run, '--nnodes', '2', '--node-rank', String(k), '--nproc', '1', '--master', '192.0.2.1:29583'];
  const [a, b] = [startOnNode(NODES[0]!, args(0), env), startOnNode(NODES[1]!, args(1), env)];
  const pid = await b.waitFor(/pid (\d+) for rank 1/);
  assert.ok(pid && (await a.waitFor(/pretrain epoch 2\/2 \d+\/4/)), a.stderr);
  const killed = Date.now();
  process.kill(Number(pid[1]), 'SIGKILL');
  assert.ok(await a.waitFor(/worker rank 0 of 2: .* failed/), a.stderr);
  const seconds = (Date.now() - killed) / 1000;
  assert.ok(seconds < 60, `node a saw the failure after ${seconds.toFixed(1)} s`);
  const [ra, rb] = await Promise.all([a.done, b.done]);
  assert.equal(ra.code, 0, ra.stderr);
  assert.equal(rb.code, 0, rb.stderr);
  assert.match(rb.stderr, new RegExp(`worker rank 1 \\(pid ${pid[1]}\\) was killed by SIGKILL; restart 1 of 1: .* with --resume, from the checkpoint after epoch 1 \\(step 4\\), rendezvous port 29584`));
  assert.match(ra.stderr, /worker rank 0 \(pid \d+\) exited with status 1; restart 1 of 1/);
  const steps = stepsOf(run);
  assert.deepEqual(steps.slice(steps.lastIndexOf(5)), [5, 6, 7, 8], `epoch 2 again after the restart: ${steps.join(', ')}`);
  rmSync(dir, { recursive: true, force: true });
});

test('a node whose worker is killed while the group is being made: the other node names it within the timeout, not the default 600 s', async () => {
  const dir = tempDir('simclr-netns-join-');
  const env: NodeJS.ProcessEnv = { ...process.env, SIMCLR_CACHE: join(dir, 'cache'), SIMCLR_DIST_TIMEOUT: '15' };
  delete env.GLOO_SOCKET_IFNAME;
  const args = (k: number) => [...RUN, '--out', join(dir, 'r'), '--nnodes', '2', '--node-rank', String(k), '--nproc', '1', '--master', '192.0.2.1:29585'];
  // Node a's worker waits in the rendezvous; node b's is killed as soon as it starts, before it joins.
  const started = Date.now();
  const a = startOnNode(NODES[0]!, args(0), env);
  assert.ok(await a.waitFor(/pid \d+ for rank 0/), a.stderr);
  const b = startOnNode(NODES[1]!, args(1), env);
  const pid = await b.waitFor(/pid (\d+) for rank 1/);
  assert.ok(pid, b.stderr);
  process.kill(Number(pid[1]), 'SIGKILL');
  const [ra, rb] = await Promise.all([a.done, b.done]);
  const seconds = (Date.now() - started) / 1000;
  assert.notEqual(ra.code, 0);
  assert.match(ra.stderr, /worker rank 0 of 2: rank 1 did not join the rendezvous at 192\.0\.2\.1:29585 within 15 s/);
  assert.ok(seconds < 40, `node a ended ${seconds.toFixed(1)} s after it started`);
  assert.match(rb.stderr, new RegExp(`worker rank 1 \\(pid ${pid[1]}\\) was killed by SIGKILL`));
  rmSync(dir, { recursive: true, force: true });
});
