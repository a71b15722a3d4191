// Data set specs as users write them: an image folder path, fashion-mnist[:DIR],
// mnist:DIR, cifar10-bin:DIR or cifar100-bin:DIR.
import { conform, inMemory, type ImageDataset } from './dataset';
import { FASHION_MNIST_DIR, idxSplitFiles, loadIdxSplit } from './idx';
import { cifarBinaryFiles, readCifarBinary } from './cifar-binary';
import { listImages, loadImageFolder, type ImageFolderOptions, type ImageList } from './image-folder';

export interface OpenOptions extends Omit<ImageFolderOptions, 'imageSize' | 'channels'> {
  /**
   * Side of the (square) images kept. Default ('auto'): the source's own (32 for CIFAR, 28
   * for MNIST); for an image folder the images' own when they all share one of at most 64px, else 32.
   */
  imageSize?: number | 'auto';
  /** 1 (gray) or 3 (RGB). Default ('auto'): the source's own; for an image folder 1 when every image is single-channel. */
  channels?: 1 | 3 | 'auto';
  /** Which split of a source that has them (idx, CIFAR binary). Default 'train'. */
  split?: 'train' | 'test';
}

export function describeSpecs(): string {
  return "an image folder (DIR/<class>/*.jpg|png|webp or DIR/*.jpg|...), 'fashion-mnist', 'fashion-mnist:DIR', 'mnist:DIR', 'cifar10-bin:DIR' or 'cifar100-bin:DIR'";
}

/** A data set as opened, with where it came from and why its size and channels are what they are. */
export type OpenedDataset = ImageDataset & { fromCache?: boolean; shards?: number; decodedShards?: number; decodedImages?: number; auto: { imageSize: string; channels: string } };

/** A spec's kind and folder: a data set of files (idx, CIFAR binaries) and where they are, or an image folder. */
function parseSpec(spec: string): { kind: 'fashion-mnist' | 'mnist' | 'cifar10-bin' | 'cifar100-bin'; dir: string } | { kind: 'folder'; dir: string } {
  const colon = spec.indexOf(':');
  const kind = colon > 0 ? spec.slice(0, colon) : spec;
  const arg = colon > 0 ? spec.slice(colon + 1) : '';
  if (kind === 'fashion-mnist') return { kind, dir: arg || FASHION_MNIST_DIR };
  if (kind === 'mnist') {
    if (!arg) throw new Error("mnist needs its folder: 'mnist:DIR' (the four idx files of the MNIST release)");
    return { kind, dir: arg };
  }
  if (kind === 'cifar10-bin' || kind === 'cifar100-bin') {
    if (!arg) throw new Error(`${kind} needs its folder: '${kind}:DIR'`);
    return { kind, dir: arg };
  }
  return { kind: 'folder', dir: spec };
}

/** What a spec names, found without reading the images: the files of a data set, or an image folder's listing. */
export function findSpec(spec: string, split: 'train' | 'test' = 'train'): { kind: string; files: string[]; count?: number; list?: ImageList } {
  const s = parseSpec(spec);
  if (s.kind === 'fashion-mnist' || s.kind === 'mnist') return { kind: s.kind, files: Object.values(idxSplitFiles(s.dir, split)) };
  if (s.kind === 'cifar10-bin' || s.kind === 'cifar100-bin') return { kind: s.kind, ...cifarBinaryFiles(s.dir, s.kind === 'cifar10-bin' ? 'cifar10' : 'cifar100', split) };
  const list = listImages(s.dir);
  return { kind: 'folder', files: list.files, count: list.files.length, list };
}

export async function openDataset(spec: string, o: OpenOptions = {}): Promise<OpenedDataset> {
  const split = o.split ?? 'train';
  const { kind, dir } = parseSpec(spec);
  let ds: ImageDataset;
  if (kind === 'fashion-mnist' || kind === 'mnist') {
    const raw = loadIdxSplit(dir, split);
    const labels = Int32Array.from(raw.labels);
    const bad = labels.findIndex((l) => l > 9);
    if (bad >= 0) throw new Error(`${dir}: ${split} label ${bad} is ${labels[bad]}, outside 0..9 (not an MNIST-style label file?)`);
    const classes = kind === 'fashion-mnist' ? FASHION_CLASSES : Array.from({ length: 10 }, (_, i) => String(i));
    ds = {
      pixels: raw.images,
      count: raw.count,
      channels: 1,
      size: raw.height,
      labels,
      classes,
      ids: Array.from({ length: raw.count }, (_, i) => `${split}:${i}`),
      source: `${kind}:${dir}`,
      skipped: { nonImages: 0, bad: [] },
    };
    if (raw.height !== raw.width) ds.size = Math.min(raw.height, raw.width);
    return reshape(ds, raw.height, raw.width, o);
  }
  if (kind === 'cifar10-bin' || kind === 'cifar100-bin') {
    ds = readCifarBinary(dir, kind === 'cifar10-bin' ? 'cifar10' : 'cifar100', split);
    return reshape(ds, 32, 32, o);
  }
  return loadImageFolder(spec, { ...o, imageSize: o.imageSize ?? 'auto', channels: o.channels ?? 'auto' });
}

function reshape(ds: ImageDataset, height: number, width: number, o: OpenOptions): OpenedDataset {
  const ownSize = o.imageSize === undefined || o.imageSize === 'auto';
  const ownChannels = o.channels === undefined || o.channels === 'auto';
  const size = ownSize ? ds.size : (o.imageSize as number);
  const channels = ownChannels ? ds.channels : (o.channels as 1 | 3);
  const pixels = conform(inMemory(ds), ds.count, ds.channels, height, width, size, channels);
  const auto = { imageSize: ownSize ? "the data set's own" : 'set by --image-size', channels: ownChannels ? "the data set's own" : 'set by --channels' };
  return { ...ds, pixels, size, channels, auto };
}

export const FASHION_CLASSES = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'];
