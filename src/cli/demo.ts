// `simclr demo`: the engine end to end on Fashion-MNIST: a CIFAR-stem ResNet-18 trained
// on a stratified 10% of the labels, evaluated on the official test split.
import * as t from '../torch';
import { resnet, type ResNetDepth } from '../models';
import { BatchLoader, openDataset, parseLabelSpec, readSubsetFile, stratifiedSubset, writeSubsetFile, type ImageDataset } from '../data';
import { RunFolder, evaluate, formatSeconds, trainSupervised, type ImageSet } from '../train';
import { saveSafetensors } from '../torch';
import type { Flags } from './args';
import { UsageError } from './args';

const FASHION_NORM = { mean: [0.286], std: [0.353] };

function toSet(ds: ImageDataset): ImageSet {
  return t.tidy(() => ({
    images: t.fromBytes(ds.pixels, [ds.count, ds.channels, ds.size, ds.size], 'uint8'),
    labels: t.tensor(Float64Array.from(ds.labels!), undefined, { dtype: 'int64' }),
  }));
}

export async function demoCommand(flags: Flags): Promise<number> {
  const spec = flags.string('data', 'fashion-mnist');
  if (!spec.startsWith('fashion-mnist')) throw new UsageError(`--data must be 'fashion-mnist' or 'fashion-mnist:DIR', got '${spec}'`);
  const labelsText = flags.string('labels', '10%');
  const labelsFile = flags.string('labels-file', '');
  const epochs = flags.number('epochs', 3, { min: 1, integer: true });
  const batch = flags.number('batch', 128, { min: 1, integer: true });
  const seed = flags.number('seed', 0, { min: 0, integer: true });
  const depth = flags.number('depth', 18, { integer: true }) as ResNetDepth;
  const width = flags.number('width', 0.5, { min: 0.0625, max: 4 });
  const out = flags.string('out', 'runs');
  flags.rejectUnknown();
  let labelSpec;
  try {
    labelSpec = parseLabelSpec(labelsText);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }

  const started = performance.now();
  t.manualSeed(seed);
  const train = await openDataset(spec, { split: 'train' });
  const test = await openDataset(spec, { split: 'test' });
  const subset = labelsFile ? readSubsetFile(labelsFile, train) : stratifiedSubset(train.labels!, labelSpec, seed);
  const run = RunFolder.timestamped(out, 'demo');
  const config = { command: 'demo', data: train.source, labels: labelsFile || labelsText, labeled: subset.length, classes: train.classes, epochs, batch, seed, model: { depth, width, cifarStem: true, inChannels: 1 }, threads: t.getNumThreads() };
  run.writeJson('config.json', config);
  writeSubsetFile(run.path('labeled.txt'), train, subset);
  console.log(`simclr demo: supervised ResNet-${depth} (width ${width}) on Fashion-MNIST, ${subset.length} labeled images (${labelsFile || labelsText}), ${epochs} epochs`);
  console.log(`run folder: ${run.dir}`);

  const loader = new BatchLoader(train, { batchSize: batch, seed, indices: subset });
  const testSet = toSet(test);
  const model = resnet({ depth, width, inChannels: 1, numClasses: 10, imageSize: train.size });

  let stop = false;
  const onSignal = (): void => {
    if (stop) process.exit(130);
    stop = true;
    console.error('\nstopping after this step (Ctrl-C again to quit at once); the model so far is saved');
  };
  process.on('SIGINT', onSignal);
  const done = trainSupervised(model, loader, {
    epochs,
    norm: FASHION_NORM,
    shouldStop: () => stop,
    onEpoch: (epoch, loss) => {
      run.metric({ epoch, loss });
      console.log(`epoch ${epoch}: mean loss ${loss.toFixed(4)}`);
    },
  });
  process.off('SIGINT', onSignal);
  loader.dispose();
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
