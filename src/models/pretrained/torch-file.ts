// PyTorch's torch.save files (.pth/.pt: a zip archive holding data.pkl and one record per
// storage) read without Python: the pickle through the allow-list unpickler, the storages
// one at a time from the zip (yauzl), so a file is never read into memory whole.
import { open, type Entry, type ZipFile } from 'yauzl';
import { closeSync, openSync, readSync } from 'node:fs';
import * as t from '../../torch';
import { PickleError, unpickle, type PickleDType, type PickleValue, type TensorRef } from './pickle';

const ELEMENT_BYTES: Record<PickleDType, number> = { float32: 4, float64: 8, float16: 2, bfloat16: 2, int64: 8, int32: 4, int16: 2, int8: 1, uint8: 1, bool: 1 };
/** The pickle of a state dict is small (names, shapes); a larger one is refused before it is read. */
const MAX_PICKLE_BYTES = 64 * 2 ** 20;

export class WeightsFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WeightsFileError';
  }
}

function openZip(file: string): Promise<ZipFile> {
  return new Promise((done, fail) => open(file, { lazyEntries: true, autoClose: false, strictFileNames: false }, (e, zip) => (e ? fail(e) : done(zip!))));
}

function listEntries(zip: ZipFile): Promise<Map<string, Entry>> {
  return new Promise((done, fail) => {
    const entries = new Map<string, Entry>();
    zip.on('entry', (e: Entry) => {
      entries.set(e.fileName, e);
      zip.readEntry();
    });
    zip.on('end', () => done(entries));
    zip.on('error', fail);
    zip.readEntry();
  });
}

function readEntry(zip: ZipFile, entry: Entry, limit: number): Promise<Buffer> {
  // torch.save stores its records uncompressed: a compressed one could inflate far past the file.
  if (entry.compressionMethod !== 0 && entry.uncompressedSize > 16 * entry.compressedSize + 2 ** 20) return Promise.reject(new Error(`${entry.fileName} inflates to ${entry.uncompressedSize} bytes from ${entry.compressedSize}`));
  if (entry.uncompressedSize > limit) return Promise.reject(new Error(`${entry.fileName} holds ${entry.uncompressedSize} bytes, more than the ${limit} it should`));
  return new Promise((done, fail) => {
    zip.openReadStream(entry, (e, stream) => {
      if (e) return fail(e);
      const parts: Buffer[] = [];
      stream!.on('data', (c: Buffer) => parts.push(c));
      stream!.on('end', () => done(Buffer.concat(parts)));
      stream!.on('error', fail);
    });
  });
}

/** The first bytes of a file: a zip starts with PK\x03\x04; torch.save's pre-1.6 format with a pickle (0x80). */
function magic(file: string): Buffer {
  const fd = openSync(file, 'r');
  try {
    const head = Buffer.alloc(4);
    readSync(fd, head, 0, 4, 0);
    return head;
  } finally {
    closeSync(fd);
  }
}

export interface TorchFile {
  /** the unpickled object: dicts of tensors (as references, read with tensor()) */
  root: PickleValue;
  /** Reads one tensor's values (float types as float32), checked against its storage record. */
  tensor(ref: TensorRef, name: string): Promise<t.Tensor>;
  close(): void;
}

export async function openTorchFile(file: string): Promise<TorchFile> {
  const head = magic(file);
  if (head[0] === 0x80) throw new WeightsFileError(`${file}: a torch.save file in the format before PyTorch 1.6; load and save it again with a newer PyTorch (torch.save(torch.load(f), f))`);
  if (head.toString('latin1', 0, 4) !== 'PK\x03\x04') throw new WeightsFileError(`${file}: not a torch.save file (a zip archive) nor safetensors`);
  let zip: ZipFile;
  let entries: Map<string, Entry>;
  try {
    zip = await openZip(file);
    entries = await listEntries(zip);
  } catch (e) {
    throw new WeightsFileError(`${file}: not a readable zip archive (${(e as Error).message}); is it truncated?`);
  }
  const pkl = [...entries.keys()].find((n) => n === 'data.pkl' || /^[^/]+\/data\.pkl$/.test(n));
  if (!pkl) {
    zip.close();
    throw new WeightsFileError(`${file}: a zip archive without data.pkl: not a torch.save file`);
  }
  const prefix = pkl.slice(0, -'data.pkl'.length);
  let root: PickleValue;
  try {
    root = unpickle(await readEntry(zip, entries.get(pkl)!, MAX_PICKLE_BYTES), `${file}: ${pkl}`);
  } catch (e) {
    zip.close();
    if (e instanceof PickleError) throw new WeightsFileError(e.message);
    throw new WeightsFileError(`${file}: cannot read ${pkl} (${(e as Error).message})`);
  }
  return {
    root,
    async tensor(ref: TensorRef, name: string): Promise<t.Tensor> {
      const where = `${file}: ${name}`;
      const entry = entries.get(`${prefix}data/${ref.storage.key}`);
      if (!entry) throw new WeightsFileError(`${where}: its storage data/${ref.storage.key} is not in the archive`);
      const size = ELEMENT_BYTES[ref.storage.dtype];
      const numel = ref.size.reduce((a, b) => a * b, 1);
      checkContiguous(ref, where);
      const needed = (ref.offset + numel) * size;
      if (ref.storage.numel * size > entry.uncompressedSize || needed > ref.storage.numel * size) {
        throw new WeightsFileError(`${where}: the tensor [${ref.size.join(', ')}] at offset ${ref.offset} needs ${needed} bytes; its storage holds ${entry.uncompressedSize}`);
      }
      let bytes: Buffer;
      try {
        bytes = await readEntry(zip, entry, ref.storage.numel * size);
      } catch (e) {
        throw new WeightsFileError(`${where}: cannot read its storage (${(e as Error).message}); is the file truncated?`);
      }
      if (bytes.length < needed) throw new WeightsFileError(`${where}: its storage has ${bytes.length} bytes, the tensor needs ${needed}`);
      const view = bytes.subarray(ref.offset * size, needed);
      return t.tidy(() => {
        const x = t.fromBytes(view, ref.size, ref.storage.dtype);
        return ['float64', 'float16', 'bfloat16'].includes(ref.storage.dtype) ? x.to('float32') : x.clone();
      });
    },
    close: () => zip.close(),
  };
}

/** Only contiguous tensors (what state dicts hold); any other layout is refused by name. */
function checkContiguous(ref: TensorRef, where: string): void {
  let expect = 1;
  for (let d = ref.size.length - 1; d >= 0; d--) {
    if (ref.size[d]! > 1 && ref.stride[d] !== expect) throw new WeightsFileError(`${where}: a non-contiguous tensor (shape [${ref.size.join(', ')}], stride [${ref.stride.join(', ')}]): save it with .contiguous()`);
    expect *= ref.size[d]!;
  }
}
