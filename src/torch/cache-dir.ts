// Where simclr-ts keeps what it derives once per machine (decoded images, the BLAS choice).
import { homedir } from 'node:os';
import { join } from 'node:path';

/** SIMCLR_CACHE, else ~/.cache/simclr-ts. */
export function defaultCacheDir(): string {
  return process.env.SIMCLR_CACHE || join(homedir(), '.cache', 'simclr-ts');
}
