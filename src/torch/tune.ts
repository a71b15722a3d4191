// tuneProcess: the process-wide settings that make training fast, taken only when asked
// for. They change the host process (its environment, glibc's allocator, child processes
// for the BLAS probe), so a library import must not take them: the `simclr` command calls
// this at start-up, and so can any program that owns its process.
import { join } from 'node:path';
import { chooseBlasCore, type BlasChoice } from './blas';
import { addonPath, getNative, isNativeLoaded } from './native';

export interface TuneOptions {
  /** Choose OpenBLAS's kernel family (default true). Needs to run before the first tensor op. */
  blas?: boolean;
  /** Keep freed memory in glibc's heap for reuse (default true; SIMCLR_SYSTEM_MALLOC=1 also keeps glibc's defaults). */
  allocator?: boolean;
}

export interface TuneResult {
  /** The allocator state now, as the addon reports it. */
  allocator: string;
  /** The kernel family chosen for OpenBLAS, and why. */
  blas: BlasChoice;
  /** False when libtorch was already loaded, so OpenBLAS kept the kernels it chose at load. */
  blasApplied: boolean;
}

function untuned(): BlasChoice {
  const env = process.env.OPENBLAS_CORETYPE;
  return { coreType: null, reason: env ? `OPENBLAS_CORETYPE=${env} from the environment` : 'not tuned: OpenBLAS chose its own kernels' };
}

/** The kernel family OpenBLAS was given in this process, and why (live: tuneProcess updates it). */
export let blas: BlasChoice = untuned();
let tuned = false;

function chooseKernels(): { choice: BlasChoice; applied: boolean } {
  if (tuned) return { choice: blas, applied: true };
  if (isNativeLoaded()) {
    const env = process.env.OPENBLAS_CORETYPE;
    const kept = env ? `OPENBLAS_CORETYPE=${env}` : 'OpenBLAS chose its own';
    return { choice: { coreType: null, reason: `kernels not changed (${kept}): libtorch was loaded before tuneProcess(); call it before the first tensor op` }, applied: false };
  }
  const choice = chooseBlasCore(addonPath(), join(__dirname, 'blas-probe.js'));
  tuned = true;
  return { choice, applied: true };
}

/**
 * Tunes this process for training: picks OpenBLAS's kernel family (probing child
 * processes once per machine, then remembering the choice in SIMCLR_CACHE) and sets
 * OPENBLAS_CORETYPE, then loads libtorch, checks a float64 product under the chosen
 * kernels, and has glibc keep freed memory for reuse. Call it first thing, before any
 * tensor op; later calls return the first call's choice.
 */
export function tuneProcess(options: TuneOptions = {}): TuneResult {
  let blasApplied = false;
  if (options.blas !== false) {
    const { choice, applied } = chooseKernels();
    blas = choice;
    blasApplied = applied;
  }
  // Loading here runs the product check under the kernels just chosen.
  const n = getNative();
  const allocator = options.allocator === false ? n.allocator : n.tuneAllocator();
  return { allocator, blas, blasApplied };
}
