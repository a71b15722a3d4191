// OpenBLAS's kernel family for this processor. OpenBLAS reads OPENBLAS_CORETYPE once,
// when libtorch loads it, and older releases (Debian 12's 0.3.21) fall back to their
// oldest kernels ("Prescott", ~4x slower) on processors they do not know. So, when asked
// (tuneProcess, before the addon loads), we pick a family: OpenBLAS's own when it is a
// real one, else the newest one this processor runs that gives a correct float64
// product, found once by probing child processes and remembered per processor, library
// and addon build. After loading, a float64 product under a chosen family is checked
// in-process before anything trains on it.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, realpathSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { defaultCacheDir } from './cache-dir';

export interface BlasChoice {
  /** The OPENBLAS_CORETYPE this process set, or null where it left OpenBLAS to choose. */
  coreType: string | null;
  reason: string;
}

export interface BlasProbe {
  library: string;
  openblasCore: string;
  correct: boolean;
  gflops: number;
}

/** Kernel families OpenBLAS falls back to when it does not recognise a processor. */
const GENERIC_CORES = new Set(['prescott', 'core2', 'penryn', 'dunnington', 'nehalem', 'katmai', 'coppermine', 'northwood', 'banias', 'atom', 'unknown', '']);

const PROBE_FLAG = 'SIMCLR_BLAS_PROBE';
const INHERITED = 'SIMCLR_BLAS_CHOICE';

export function cpuFlags(): Set<string> {
  try {
    const text = readFileSync('/proc/cpuinfo', 'utf8');
    const line = text.split('\n').find((l) => l.startsWith('flags'));
    return new Set((line?.split(':')[1] ?? '').trim().split(/\s+/));
  } catch {
    return new Set();
  }
}

/** Families to try, newest first, for a processor with these flags. */
export function candidateCores(flags: Set<string>): string[] {
  const out: string[] = [];
  if (flags.has('avx512f')) {
    if (flags.has('avx512_bf16')) out.push('Cooperlake');
    out.push('SkylakeX');
  }
  if (flags.has('avx2')) out.push('Haswell');
  return out;
}

export function isGenericCore(core: string): boolean {
  return GENERIC_CORES.has(core.toLowerCase());
}

function cacheFile(addonPath: string): string {
  const dir = defaultCacheDir();
  const key = createHash('sha256');
  key.update(readFileSync('/proc/cpuinfo', 'utf8').replace(/^(cpu MHz|bogomips|core id|processor|apicid|initial apicid).*$/gm, ''));
  for (const f of [addonPath, '/usr/lib/x86_64-linux-gnu/libblas.so.3', '/usr/lib/x86_64-linux-gnu/libopenblas.so.0']) {
    if (!existsSync(f)) continue;
    const real = realpathSync(f);
    const st = statSync(real);
    key.update(`${real}:${st.size}:${st.mtimeMs}`);
  }
  return join(dir, `blas-${key.digest('hex').slice(0, 16)}.json`);
}

function probe(probeScript: string, coreType: string | null): BlasProbe | null {
  const env: NodeJS.ProcessEnv = { ...process.env, [PROBE_FLAG]: '1' };
  if (coreType) env.OPENBLAS_CORETYPE = coreType;
  else delete env.OPENBLAS_CORETYPE;
  const res = spawnSync(process.execPath, [probeScript], { env, encoding: 'utf8', timeout: 60_000 });
  if (res.status !== 0) return null;
  try {
    return JSON.parse(res.stdout.trim().split('\n').at(-1) ?? '') as BlasProbe;
  } catch {
    return null;
  }
}

function decide(probeScript: string): BlasChoice {
  const own = probe(probeScript, null);
  if (!own) return { coreType: null, reason: 'the BLAS probe did not run; OpenBLAS (if any) chooses its own kernels' };
  if (!own.openblasCore) return { coreType: null, reason: `matrix products go to ${own.library || 'a BLAS linked into libtorch'}, not OpenBLAS` };
  if (!isGenericCore(own.openblasCore) && own.correct) return { coreType: null, reason: `OpenBLAS recognised this processor (${own.openblasCore})` };
  let best: { core: string; gflops: number } | null = null;
  for (const core of candidateCores(cpuFlags())) {
    const p = probe(probeScript, core);
    const usable = p && p.correct && p.openblasCore.toLowerCase() === core.toLowerCase() && p.gflops > own.gflops;
    if (usable && (!best || p.gflops > best.gflops)) best = { core, gflops: p.gflops };
  }
  if (best) {
    return { coreType: best.core, reason: `OpenBLAS fell back to ${own.openblasCore} (${own.gflops.toFixed(0)} GFLOP/s); ${best.core} gives a correct float64 product at ${best.gflops.toFixed(0)} GFLOP/s` };
  }
  return { coreType: null, reason: `OpenBLAS chose ${own.openblasCore}; no other kernel family was both correct and faster` };
}

/** Whether this process is a probe child (it reports the product check itself). */
export function isBlasProbe(): boolean {
  return Boolean(process.env[PROBE_FLAG]);
}

/** The choice a tuned process (this one or a parent) recorded in the environment. */
export function rememberedChoice(): BlasChoice | null {
  return parseInherited(process.env[INHERITED]);
}

/**
 * Sets OPENBLAS_CORETYPE for this process before the addon loads (unless the user set it).
 * Only tuneProcess calls this: it may spawn probe children and changes the environment.
 * Probes once per processor/library/addon; later starts read the remembered choice.
 */
export function chooseBlasCore(addonPath: string, probeScript: string): BlasChoice {
  if (process.env[PROBE_FLAG]) return { coreType: process.env.OPENBLAS_CORETYPE ?? null, reason: 'probe' };
  // A child of a process that already chose inherits its choice (and OPENBLAS_CORETYPE).
  const inherited = parseInherited(process.env[INHERITED]);
  if (inherited && inherited.coreType === (process.env.OPENBLAS_CORETYPE ?? null)) return inherited;
  if (process.env.OPENBLAS_CORETYPE) return { coreType: process.env.OPENBLAS_CORETYPE, reason: 'set by OPENBLAS_CORETYPE in the environment' };
  if (process.platform !== 'linux' || !existsSync(probeScript)) return { coreType: null, reason: 'OpenBLAS chooses its own kernels' };
  const file = cacheFile(addonPath);
  let choice: BlasChoice | null = null;
  try {
    choice = JSON.parse(readFileSync(file, 'utf8')) as BlasChoice;
  } catch {
    choice = decide(probeScript);
    try {
      mkdirSync(join(file, '..'), { recursive: true });
      writeFileSync(file, JSON.stringify(choice));
    } catch {
      // A read-only home only costs the probe again next time.
    }
  }
  if (choice.coreType) process.env.OPENBLAS_CORETYPE = choice.coreType;
  process.env[INHERITED] = JSON.stringify(choice);
  return choice;
}

function parseInherited(text: string | undefined): BlasChoice | null {
  if (!text) return null;
  try {
    const c = JSON.parse(text) as BlasChoice;
    return typeof c.reason === 'string' && (c.coreType === null || typeof c.coreType === 'string') ? c : null;
  } catch {
    return null;
  }
}
