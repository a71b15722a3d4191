// `simclr export --format web`: a static folder that classifies images in the browser,
// offline, with no server code: index.html, the ONNX model, and onnxruntime-web's
// WebAssembly runtime copied from its npm package. Any static file server will do (browsers
// do not run WebAssembly modules from file:// pages). index.html?src=URL classifies that
// image on load and writes its top-1 class into #prediction.
import { copyFileSync, mkdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { RunConfig } from '../run/folder';
import { renderPage, scriptJson } from './page-kit';
import { writeAtomic } from './write';

/** onnxruntime-web's files the page needs: the script (wasm backend only) and its WebAssembly runtime. */
export const ORT_WEB_FILES = ['ort.wasm.min.js', 'ort-wasm-simd-threaded.wasm', 'ort-wasm-simd-threaded.mjs'] as const;

function ortWebDist(): string {
  let entry: string;
  try {
    entry = require.resolve('onnxruntime-web');
  } catch {
    throw new Error("--format web copies onnxruntime-web's files, and the onnxruntime-web package is not installed (npm install onnxruntime-web)");
  }
  return dirname(entry);
}

export interface WebPageInfo {
  run: string;
  stage: string;
  classes: string[];
  imageSize: number;
  channels: number;
}

/** The page: preprocessing in a canvas (centre square, resized to the model's size), the model in onnxruntime-web. */
export function webPage(info: WebPageInfo): string {
  return renderPage({
    title: 'simclr-ts classifier (in your browser)',
    subtitle: `${info.run}:${info.stage}, run by onnxruntime-web on this page; no image leaves the browser`,
    classes: info.classes,
    head: '<script src="ort.wasm.min.js"></script>',
    script: `
var META = ${scriptJson({ classes: info.classes, imageSize: info.imageSize, channels: info.channels })};
ort.env.wasm.wasmPaths = new URL('./', location.href).href;
ort.env.wasm.numThreads = 1;
var sessionPromise = ort.InferenceSession.create('model.onnx', { executionProviders: ['wasm'] });

/** uint8 NCHW pixels as simclr decodes images: the centre square resized to imageSize; gray as luma. */
function pixelsOf(bitmap) {
  var S = META.imageSize, C = META.channels;
  var canvas = document.createElement('canvas');
  canvas.width = S; canvas.height = S;
  var ctx = canvas.getContext('2d', { willReadFrequently: true });
  var side = Math.min(bitmap.width, bitmap.height);
  ctx.imageSmoothingEnabled = true;
  ctx.imageSmoothingQuality = 'high';
  ctx.drawImage(bitmap, (bitmap.width - side) / 2, (bitmap.height - side) / 2, side, side, 0, 0, S, S);
  var rgba = ctx.getImageData(0, 0, S, S).data;
  var plane = S * S, out = new Uint8Array(C * plane);
  for (var p = 0; p < plane; p++) {
    var r = rgba[4 * p], g = rgba[4 * p + 1], b = rgba[4 * p + 2];
    if (C === 3) { out[p] = r; out[plane + p] = g; out[2 * plane + p] = b; }
    else out[p] = Math.round(0.2126 * r + 0.7152 * g + 0.0722 * b);
  }
  return out;
}

async function classifyBlob(blob) {
  var bitmap = await createImageBitmap(blob, { colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
  var S = META.imageSize;
  var input = new ort.Tensor('uint8', pixelsOf(bitmap), [1, META.channels, S, S]);
  var session = await sessionPromise;
  var out = await session.run({ pixels: input });
  var probs = out.probabilities.data;
  var ranked = Array.prototype.map.call(probs, function (p, i) { return { 'class': META.classes[i], probability: p }; });
  ranked.sort(function (a, b) { return b.probability - a.probability; });
  return ranked.slice(0, Math.min(5, ranked.length));
}
function classify(file) { return classifyBlob(file); }

wireDropZone();
setStatus('Loading the model...');
sessionPromise.then(async function () {
  setStatus('Ready: choose or drop images.');
  var src = new URLSearchParams(location.search).get('src');
  if (!src) return;
  var url = new URL(src, location.href).href;
  try {
    var blob = await (await fetch(url)).blob();
    var preds = await classifyBlob(blob);
    drawResult(src.split('/').pop(), URL.createObjectURL(blob), preds, null);
    setTopOne(preds[0]['class']);
  } catch (err) {
    drawResult(src, '', null, 'cannot classify ' + src + ': ' + (err && err.message || err));
    document.getElementById('prediction').setAttribute('data-error', String(err && err.message || err));
  }
}, function (err) {
  setStatus('The model did not load: ' + (err && err.message || err));
  document.getElementById('prediction').setAttribute('data-error', String(err && err.message || err));
});
`,
  });
}

export async function writeWebFolder(dir: string, onnx: Uint8Array, config: RunConfig, stage: string, run = ''): Promise<{ path: string; bytes: number }[]> {
  const dist = ortWebDist();
  mkdirSync(dir, { recursive: true });
  const written: string[] = [];
  writeAtomic(join(dir, 'model.onnx'), onnx);
  written.push(join(dir, 'model.onnx'));
  for (const f of ORT_WEB_FILES) {
    copyFileSync(join(dist, f), join(dir, f));
    written.push(join(dir, f));
  }
  writeAtomic(join(dir, 'index.html'), webPage({ run, stage, classes: config.classes, imageSize: config.imageSize, channels: config.channels }));
  written.push(join(dir, 'index.html'));
  return written.map((path) => ({ path, bytes: statSync(path).size }));
}
