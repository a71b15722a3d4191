// --device cpu|cuda|cuda:N on the training commands. The check reads the addon's build and
// the devices libtorch sees (runtimeInfo: at::hasCUDA and the CUDA hooks' GPU count), so a
// wrong device stops with a usage error before any data is read.
import { UsageError } from './options';
import { envLocalRank } from '../distributed/env';

export interface DeviceFacts {
  libtorchVersion: string;
  builtFrom: string;
  cudaBuild: boolean;
  cudaDeviceCount: number;
}

/** 'cpu', or the CUDA device index ('cuda' alone: undefined, the worker's LOCAL_RANK chooses). */
export function parseDevice(text: string): { kind: 'cpu' } | { kind: 'cuda'; index?: number } {
  const m = /^(cpu|cuda)(?::(\d{1,3}))?$/.exec(text);
  if (!m || (m[1] === 'cpu' && m[2] !== undefined)) throw new UsageError(`--device must be cpu, cuda or cuda:N (N: a GPU's index), got '${text}'`);
  return m[1] === 'cpu' ? { kind: 'cpu' } : { kind: 'cuda', ...(m[2] !== undefined ? { index: Number(m[2]) } : {}) };
}

const TORCH_DIR = `python3 -c 'import torch,os;print(os.path.dirname(torch.__file__))'`;

/**
 * Checks --device against this addon's libtorch and the GPUs it sees; nproc: workers that
 * will each want a GPU (their LOCAL_RANK's). Returns for 'cpu'; a UsageError otherwise.
 */
export function checkDevice(text: string, facts: DeviceFacts, nproc = 1): void {
  const d = parseDevice(text);
  if (d.kind === 'cpu') return;
  if (!facts.cudaBuild) {
    throw new UsageError(
      `--device ${text}: this addon is built against libtorch ${facts.libtorchVersion} from ${facts.builtFrom}, which has no CUDA (Debian's libtorch is CPU-only). ` +
        `Rebuild it against a CUDA libtorch: LIBTORCH=<the torch folder of a CUDA PyTorch install, printed by ${TORCH_DIR}> node scripts/setup.mjs --native ` +
        `(or LIBTORCH=<an unzipped CUDA libtorch from pytorch.org>); scripts/gpu-check.sh does this in a copy and checks the GPUs. Until then, leave out --device (cpu)`,
    );
  }
  const count = facts.cudaDeviceCount;
  if (count === 0) throw new UsageError(`--device ${text}: libtorch ${facts.libtorchVersion} has CUDA but sees no GPU (check nvidia-smi and CUDA_VISIBLE_DEVICES${process.env.CUDA_VISIBLE_DEVICES !== undefined ? `=${process.env.CUDA_VISIBLE_DEVICES}` : ''})`);
  if (d.index !== undefined && d.index >= count) throw new UsageError(`--device ${text}: there ${count === 1 ? 'is 1 GPU (cuda:0)' : `are ${count} GPUs (cuda:0 to cuda:${count - 1})`}`);
  if (nproc > 1 && d.index !== undefined) throw new UsageError(`--device ${text} with --nproc ${nproc}: each worker takes the GPU of its LOCAL_RANK; write --device cuda`);
  if (nproc > count) throw new UsageError(`--device ${text} with --nproc ${nproc}: each worker needs a GPU of its own, and ${count} ${count === 1 ? 'is' : 'are'} seen`);
  const local = envLocalRank();
  if (d.index === undefined && nproc === 1 && local >= count) {
    throw new UsageError(`--device ${text}: this worker's LOCAL_RANK is ${local}, but libtorch sees ${count} GPU${count === 1 ? '' : 's'} (one per local worker is needed)`);
  }
}

/** --device: its form always; a GPU against this addon's libtorch and GPUs (the one case that loads the addon). */
export async function checkDeviceHere(device: string, nproc: number): Promise<void> {
  if (parseDevice(device).kind === 'cpu') return;
  const { runtimeInfo } = await import('../torch');
  checkDevice(device, runtimeInfo(), nproc);
}
