// `simclr demo`: the engine end to end on Fashion-MNIST: a CIFAR-stem ResNet-18 trained
// on a stratified 10% of the labels, evaluated on the official test split.
import * as t from '../torch';
import { resnet, type ResNetDepth } from '../models';
import { FASHION_MNIST_DIR, loadIdxSplit, stratifiedSubset, type LabeledImages } from '../data';
import { RunFolder, evaluate, formatSeconds, trainSupervised, type ImageSet } from '../train';
import { saveSafetensors } from '../torch';
import type { Flags } from './args';
import { UsageError } from './args';

const FASHION_NORM = { mean: [0.286], std: [0.353] };

function dataDir(spec: string): string {
  if (spec === 'fashion-mnist') return FASHION_MNIST_DIR;
  if (spec.startsWith('fashion-mnist:')) return spec.slice('fashion-mnist:'.length);
  throw new UsageError(`--data must be 'fashion-mnist' or 'fashion-mnist:DIR', got '${spec}'`);
}

function toSet(split: LabeledImages, indices?: number[]): ImageSet {
  return t.tidy(() => {
    const all = t.fromBytes(split.images, [split.count, 1, split.height, split.width], 'uint8');
    const labels = t.tensor(Float64Array.from(split.labels), undefined, { dtype: 'int64' });
    if (!indices) return { images: all, labels };
    const idx = t.tensor(Float64Array.from(indices), undefined, { dtype: 'int64' });
    return { images: all.indexSelect(0, idx), labels: labels.indexSelect(0, idx) };
  });
}

export function demoCommand(flags: Flags): number {
  const dir = dataDir(flags.string('data', 'fashion-mnist'));
  const fraction = flags.number('labels', 0.1, { min: 1e-4, max: 1 });
  const epochs = flags.number('epochs', 3, { min: 1, integer: true });
  const batch = flags.number('batch', 128, { min: 1, integer: true });
  const seed = flags.number('seed', 0, { min: 0, integer: true });
  const depth = flags.number('depth', 18, { integer: true }) as ResNetDepth;
  const width = flags.number('width', 0.5, { min: 0.0625, max: 4 });
  const out = flags.string('out', 'runs');
  flags.rejectUnknown();

  const started = performance.now();
  t.manualSeed(seed);
  const train = loadIdxSplit(dir, 'train');
  const test = loadIdxSplit(dir, 'test');
  const subset = stratifiedSubset(train.labels, fraction, seed);
  const run = RunFolder.timestamped(out, 'demo');
  const config = { command: 'demo', data: dir, labelFraction: fraction, labeled: subset.length, epochs, batch, seed, model: { depth, width, cifarStem: true, inChannels: 1 }, threads: t.getNumThreads() };
  run.writeJson('config.json', config);
  run.writeJson('labeled-subset.json', { seed, fraction, indices: subset });
  console.log(`simclr demo: supervised ResNet-${depth} (width ${width}) on Fashion-MNIST, ${subset.length} labeled images (${fraction * 100}%), ${epochs} epochs`);
  console.log(`run folder: ${run.dir}`);

  const labeled = toSet(train, subset);
  const testSet = toSet(test);
  const model = resnet({ depth, width, inChannels: 1, numClasses: 10, imageSize: train.height });

  let stop = false;
  const onSignal = (): void => {
    if (stop) process.exit(130);
    stop = true;
    console.error('\nstopping after this step (Ctrl-C again to quit at once); the model so far is saved');
  };
  process.on('SIGINT', onSignal);
  const done = trainSupervised(model, labeled, {
    epochs,
    batchSize: batch,
    norm: FASHION_NORM,
    shouldStop: () => stop,
    onEpoch: (epoch, loss) => {
      run.metric({ epoch, loss });
      console.log(`epoch ${epoch}: mean loss ${loss.toFixed(4)}`);
    },
  });
  process.off('SIGINT', onSignal);
  saveSafetensors(run.path('model.safetensors'), model.stateDict(), { config: JSON.stringify(config.model) });
  const acc = evaluate(model, testSet, FASHION_NORM);
  const seconds = (performance.now() - started) / 1000;
  const result = { top1: acc.top1, top5: acc.top5, epochsCompleted: done, seconds, testImages: test.count, ...config };
  run.writeJson('result.json', result);
  run.metric({ test_top1: acc.top1, test_top5: acc.top5 });
  console.log(`test top-1 ${acc.top1.toFixed(2)}%, top-5 ${acc.top5.toFixed(2)}% on ${test.count} images`);
  console.log(`budget: ResNet-${depth} width ${width}, ${done} epochs on ${subset.length} labels, seed ${seed}, ${t.getNumThreads()} threads, ${formatSeconds(seconds)}`);
  return stop ? 130 : 0;
}
