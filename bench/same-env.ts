// Import this first in every bench that races PyTorch: it makes this process run with the
// allocator settings given through glibc's environment, so that the peer, spawned with the
// same environment, gets exactly what we get. glibc reads them once, at the first malloc,
// so where they are missing the bench re-runs itself with them set (before the addon loads).
//
// BENCH_ALLOCATOR=tuned (default): freed memory stays in the heap (no mmap for big blocks,
//   no trimming), the setting the addon also applies with mallopt; both sides get it.
// BENCH_ALLOCATOR=glibc: glibc's defaults on both sides (SIMCLR_SYSTEM_MALLOC=1 stops the
//   addon's mallopt, and the variables are removed).
import { spawnSync } from 'node:child_process';

/** glibc 2.36's environment names for glibc.malloc.mmap_max and glibc.malloc.trim_threshold. */
export const TUNED_MALLOC_ENV: Readonly<Record<string, string>> = { MALLOC_MMAP_MAX_: '0', MALLOC_TRIM_THRESHOLD_: '2147483647' };

export type AllocatorSetting = 'tuned' | 'glibc';

export const ALLOCATOR: AllocatorSetting = process.env.BENCH_ALLOCATOR === 'glibc' ? 'glibc' : 'tuned';

/** The environment for a process at `setting`, starting from `base`. */
export function allocatorEnv(setting: AllocatorSetting, base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...base };
  for (const k of Object.keys(TUNED_MALLOC_ENV)) delete env[k];
  delete env.SIMCLR_SYSTEM_MALLOC;
  if (setting === 'tuned') Object.assign(env, TUNED_MALLOC_ENV);
  else env.SIMCLR_SYSTEM_MALLOC = '1';
  return env;
}

function inPlace(setting: AllocatorSetting): boolean {
  const want = allocatorEnv(setting);
  return [...Object.keys(TUNED_MALLOC_ENV), 'SIMCLR_SYSTEM_MALLOC'].every((k) => process.env[k] === want[k]);
}

/** One line for the output: what both sides ran with. */
export function allocatorLine(): string {
  return ALLOCATOR === 'tuned'
    ? `allocator (both sides): ${Object.entries(TUNED_MALLOC_ENV).map(([k, v]) => `${k}=${v}`).join(' ')} in the environment`
    : 'allocator (both sides): glibc defaults (SIMCLR_SYSTEM_MALLOC=1, no MALLOC_* variables)';
}

if (!inPlace(ALLOCATOR)) {
  const r = spawnSync(process.execPath, [...process.execArgv, ...process.argv.slice(1)], { stdio: 'inherit', env: allocatorEnv(ALLOCATOR) });
  process.exit(r.status ?? 1);
}
