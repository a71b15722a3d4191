// Published weights: torchvision ResNets (torch.save and safetensors files made here by
// Debian's python3-torch) give torchvision's logits and features; a SimCLRv2 conversion's
// layout gives the official forward's (test/py/simclrv2_fixture.py); hostile files fail with
// a message; import + finetune + distill from a ResNet-50 run end to end; and our own
// pretrained run exported and imported back trains to the same bits.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as t from '../src';
import { ResNet } from '../src/models';
import { loadPretrained, readWeights, WeightsFileError } from '../src/models/pretrained';
import { pretrainedSimCLR } from '../src/run/import';
import { DATASETS, PYTHON, relativeError, tempDir } from './helpers';

const root = tempDir('simclr-pretrained-');
const PY = join(__dirname, '..', '..', 'test', 'py');
function python(script: string, ...args: string[]): void {
  const r = spawnSync(PYTHON, [join(PY, script), ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${script} failed: ${r.stderr}`);
}
const env = { ...process.env, SIMCLR_CACHE: join(root, 'cache') };
const simclr = (args: string[]) => spawnSync(process.execPath, [join(__dirname, '..', 'src', 'cli', 'main.js'), ...args, '--threads', '1'], { encoding: 'utf8', env, cwd: root });

for (const arch of ['resnet18', 'resnet50']) {
  test(`torchvision ${arch}, from torch.save and safetensors: torchvision's logits and features`, async () => {
    python('weights_fixture.py', root, arch, '64');
    const expected = t.loadSafetensors(join(root, `${arch}-expected.safetensors`)).tensors;
    for (const ext of ['pth', 'safetensors']) {
      const file = join(root, `${arch}.${ext}`);
      const layout = await loadPretrained(file);
      assert.equal(layout.source, 'torchvision');
      assert.equal(layout.encoder.depth, arch === 'resnet18' ? 18 : 50);
      assert.equal(layout.norm, 'imagenet');
      // the embeddings: our encoder with the file's weights
      const model = pretrainedSimCLR(layout, { layers: 3, outDim: 128 }, 0, file);
      model.eval();
      // the logits: the same network with the file's ImageNet classifier
      const { tensors } = await readWeights(file);
      const withFc = new ResNet({ ...layout.encoder, numClasses: 1000 });
      withFc.loadStateDict(new Map([...tensors].filter(([k]) => withFc.stateDict().has(k))));
      withFc.eval();
      t.noGrad(() => {
        const images = expected.get('images')!;
        assert.ok(relativeError(model.encoder.features(images), expected.get('features')!) < 1e-4, `${ext}: features`);
        assert.ok(relativeError(withFc.forward(images), expected.get('logits')!) < 1e-4, `${ext}: logits`);
      });
      model.dispose();
      withFc.dispose();
      for (const v of [...tensors.values(), ...layout.state.values()]) v.dispose();
    }
  });
}

test("a SimCLRv2 conversion (ResNet-50 2x with selective kernels and its head): the official forward's h and z", async () => {
  python('simclrv2_fixture.py', root, '2', '64');
  const file = join(root, 'r50_2x_sk1.pth');
  const layout = await loadPretrained(file);
  assert.equal(layout.source, 'simclrv2');
  assert.deepEqual([layout.encoder.depth, layout.encoder.width, layout.encoder.skRatio, layout.encoder.skStride1Pool], [50, 2, 0.0625, true]);
  assert.deepEqual(layout.head, { layers: 3, outDim: 128 });
  assert.equal(layout.norm, 'unit', 'SimCLRv2 takes [0,1] pixels with no mean or std');
  const expected = t.loadSafetensors(join(root, 'r50_2x_sk1-expected.safetensors')).tensors;
  const model = pretrainedSimCLR(layout, { layers: 3, outDim: 128 }, 0, file);
  model.eval();
  t.noGrad(() => {
    const h = model.encoder.features(expected.get('images')!);
    assert.ok(relativeError(h, expected.get('h')!) < 1e-4, 'encoder output h');
    // the file's last head batch norm holds a beta of 0.5 that the official head does not have
    assert.ok(relativeError(model.head.forward(h), expected.get('z')!) < 1e-4, 'head output z');
  });
  model.dispose();
  for (const v of layout.state.values()) v.dispose();
});

test('hostile weights files: a pickle naming a class or a function, a truncated archive, a short storage', async () => {
  python('hostile_weights.py', root, join(root, 'resnet18.pth'));
  const cases: [string, RegExp][] = [
    ['names-a-class.pth', /names collections\.Counter, which a weights file has no need of: refused/],
    ['names-a-function.pth', /names (posix|os)\.system, which a weights file has no need of: refused/],
    ['truncated.pth', /not a readable zip archive .*truncated/],
    ['short-storage.pth', /w: the tensor \[100\] at offset 0 needs 400 bytes; its storage holds 40/],
    ['loop.pth', /its dicts nest in a loop/],
  ];
  for (const [name, message] of cases) {
    await assert.rejects(loadPretrained(join(root, name)), (e: Error) => e instanceof WeightsFileError && message.test(e.message), name);
  }
  const r = simclr(['import', join(root, 'names-a-function.pth'), '--unlabeled', root, '--out', join(root, 'never')]);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /^simclr: .*refused/);
});

function smallFolder(name: string, perClass: number): { dir: string; csv: string } {
  const dir = join(root, name);
  const rows: string[] = [];
  for (const c of ['airplane', 'cat', 'ship']) {
    mkdirSync(join(dir, c), { recursive: true });
    readdirSync(join(DATASETS, 'cifar10', 'train', c)).slice(0, perClass).forEach((f, i) => {
      copyFileSync(join(DATASETS, 'cifar10', 'train', c, f), join(dir, c, f));
      if (i % 2 === 0) rows.push(`${name}/${c}/${f},${c}`);
    });
  }
  const csv = join(root, `${name}.csv`);
  writeFileSync(csv, `path,label\n${rows.join('\n')}\n`);
  return { dir, csv };
}

test('import + finetune + distill from a torchvision ResNet-50 file, at 64 px', () => {
  const { dir, csv } = smallFolder('photos', 10);
  const run = join(root, 'r50');
  const i = simclr(['import', join(root, 'resnet50.pth'), '--unlabeled', dir, '--labeled', csv, '--out', run, '--image-size', '64', '--model', 'resnet50']);
  assert.equal(i.status, 0, i.stderr);
  assert.match(i.stdout, /torchvision weights, ResNet-50 \(width 1, ImageNet stem\), a fresh projection head/);
  const config = JSON.parse(readFileSync(join(run, 'config.json'), 'utf8'));
  assert.deepEqual(config.norm.mean, [0.485, 0.456, 0.406]);
  assert.equal(config.pretrain.encoder.cifarStem, false, 'the ImageNet stem is kept at any size');
  const f = simclr(['finetune', '--from', run, '--epochs', '1', '--batch', '8']);
  assert.equal(f.status, 0, f.stderr);
  const d = simclr(['distill', '--teacher', run, '--epochs', '1', '--batch', '8']);
  assert.equal(d.status, 0, d.stderr);
  assert.match(d.stdout, /distill-photos: 30 images \(13 labeled\), 1 epochs, lr 0\.1; 2 held out for validation/);
  // a mismatch names the first parameter that does not fit, with both shapes
  const bad = simclr(['import', join(root, 'resnet50.pth'), '--unlabeled', dir, '--out', join(root, 'bad'), '--depth', '101']);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /does not fit --depth 101 --width 1: encoder\.layer3\.6\.conv1\.weight is missing in the file, \[256, 1024, 1, 1\] in that model/);
});

test('a pretrained run exported (--stage pretrain) and imported back: the same kNN accuracy and bit-identical fine-tuning', () => {
  const { dir, csv } = smallFolder('pool', 20);
  const first = join(root, 'first');
  assert.equal(simclr(['pretrain', '--unlabeled', dir, '--labeled', csv, '--out', first, '--width', '0.125', '--epochs', '1', '--batch', '30']).status, 0);
  const file = join(root, 'first.safetensors');
  const e = simclr(['export', '--model', first, '--stage', 'pretrain', '--format', 'safetensors-torchvision', '--out', file]);
  assert.equal(e.status, 0, e.stderr);
  const second = join(root, 'second');
  const i = simclr(['import', file, '--unlabeled', dir, '--labeled', csv, '--out', second]);
  assert.equal(i.status, 0, i.stderr);
  assert.match(i.stdout, /simclr-ts weights, ResNet-18 \(width 0\.125, CIFAR stem\), its 3-layer projection head/);
  const knn = (run: string) => /kNN \(k=200, T=0\.1\) top-1 (\d+\.\d+)%/.exec(simclr(['eval', '--model', run, '--knn', '--test-data', csv]).stdout)?.[1];
  assert.ok(knn(first));
  assert.equal(knn(second), knn(first));
  for (const run of [first, second]) assert.equal(simclr(['finetune', '--from', run, '--epochs', '2', '--seed', '3']).status, 0);
  const a = t.loadSafetensors(join(first, 'finetune-pool.safetensors')).tensors;
  const b = t.loadSafetensors(join(second, 'finetune-pool.safetensors')).tensors;
  assert.deepEqual([...b.keys()].sort(), [...a.keys()].sort());
  for (const [k, v] of a) assert.ok(v.bytes().equals(b.get(k)!.bytes()), `${k} differs`);
});

test('pretrain --init continues SimCLR pretraining from published weights; an unknown layout is named', async () => {
  const { dir } = smallFolder('init-pool', 12);
  const run = join(root, 'init');
  const r = simclr(['pretrain', '--init', join(root, 'resnet18.safetensors'), '--unlabeled', dir, '--out', run, '--image-size', '32', '--epochs', '1', '--batch', '16']);
  assert.equal(r.status, 0, r.stderr);
  const config = JSON.parse(readFileSync(join(run, 'config.json'), 'utf8'));
  assert.deepEqual(config.init.layout, 'torchvision');
  assert.equal(config.pretrain.encoder.cifarStem, false, "the weights' stem, at any size");
  assert.deepEqual(config.norm.std, [0.229, 0.224, 0.225]);
  // Hugging Face transformers' names are refused by name
  const hf = join(root, 'hf.safetensors');
  t.saveSafetensors(hf, { 'resnet.embedder.embedder.convolution.weight': t.zeros([64, 3, 7, 7]) });
  await assert.rejects(loadPretrained(hf), /Hugging Face transformers' ResNet layout \('resnet\.embedder\.embedder\.convolution\.weight'\)/);
});

// The fixtures weigh about 800 MB: they go when the file's tests are done.
test.after(() => rmSync(root, { recursive: true, force: true }));
