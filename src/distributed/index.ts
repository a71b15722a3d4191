// simclr-ts/distributed: data-parallel workers over c10d (Gloo on CPU).
export { ProcessGroup, StoppedWhileWaiting, WorkerError, type GradientReducer, type GroupOptions, type Pending } from './group';
export { gatherWithGrad, syncBatchNorm, useSyncBatchNorm, type BatchNormScope } from './autograd';
export { averageGradients, broadcastBuffers, broadcastWeights, planBuckets, weightsChecksum, BackwardAverager, overlapFromEnv, DEFAULT_BUCKET_BYTES, DEFAULT_FIRST_BUCKET_BYTES, type BucketPlan } from './gradients';
export { workerEnv, envForWorker, workerDevice, envLocalRank, WorkerEnvError, type WorkerEnv } from './env';
export { launchLocal, joinWorkers, leaveWorkers, freePort, threadsPerWorker, type LaunchOptions } from './launch';
export { CollectiveProbe, profileFromEnv } from './profile';
