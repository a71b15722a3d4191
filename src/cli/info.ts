// `simclr info`: which libtorch the addon was built against, threads and devices.
import { blas, computeSettings, getNumThreads, native, runtimeInfo } from '../torch';

export function infoCommand({ json }: { json: boolean }): void {
  const info = runtimeInfo();
  const compute = computeSettings();
  const blasLib = native.blasInfo();
  if (json) {
    console.log(JSON.stringify({ ...info, compute, blas: { ...blasLib, ...blas } }, null, 2));
    return;
  }
  console.log(`simclr-ts ${require('../../../package.json').version}`);
  console.log(`libtorch:  ${info.libtorchVersion} (${info.cudaBuild ? 'CUDA' : 'CPU'} build, from ${info.builtFrom})`);
  console.log(`threads:   ${getNumThreads()} (set with --threads or OMP_NUM_THREADS)`);
  console.log(`devices:   ${info.devices.join(', ')}${info.cudaAvailable ? '' : ' (no CUDA device seen)'}`);
  console.log(`oneDNN:    ${info.mkldnn ? 'yes' : 'no'}, OpenMP: ${info.openmp ? 'yes' : 'no'}`);
  console.log(`allocator: ${info.allocator}`);
  console.log(`precision: ${compute.precision} (${compute.why.precision})`);
  console.log(`layout:    ${compute.channelsLast ? 'channels-last' : 'NCHW'} (${compute.why.channelsLast})`);
  console.log(`BLAS:      ${blasLib.library || 'linked into libtorch'}${blasLib.openblasCore ? `, OpenBLAS kernels ${blasLib.openblasCore}` : ''} (${blas.reason})`);
  console.log(`node:      ${process.version}`);
}
