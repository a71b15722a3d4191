// Run as a child process by blas.ts: loads the addon under the OPENBLAS_CORETYPE it was
// given and prints which BLAS answered, its kernel family, correctness and speed.
import { native } from './native';
import { blasSpeed, checkBlasProduct } from './blas-check';

const info = native.blasInfo();
const check = checkBlasProduct(native);
process.stdout.write(`${JSON.stringify({ ...info, correct: check.correct, gflops: blasSpeed(native) })}\n`);
