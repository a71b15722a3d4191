// simclr export: flags -> an export plan (src/export) -> the files, and what they are.
import type { Parsed } from './options';
import { UsageError } from './options';
import type { COMMANDS } from './specs';
import { describeInput, exportRun } from '../export';
import { openRun } from '../run/folder';

type ExportValues = Parsed<typeof COMMANDS.export.options>;

/** The options that must go together: the run, where to write, and an input the format takes. */
export function checkExportOptions(o: ExportValues): { model: string; out: string } {
  if (!o.model) throw new UsageError('--model RUN is required: the run folder whose classifier to export');
  if (!o.out) throw new UsageError(`--out is required: the ${o.format === 'web' ? 'folder' : 'file'} to write`);
  if (o.format === 'web' && o.input !== 'uint8') throw new UsageError('--input float applies to --format onnx only (the web page feeds the model uint8 pixels)');
  return { model: o.model, out: o.out };
}

export async function exportCommand({ values: o }: { values: ExportValues }): Promise<number> {
  const { model, out } = checkExportOptions(o);
  const r = await exportRun({ run: model, stage: o.stage, format: o.format, out, input: o.input });
  const { config } = openRun(model);
  const size = (b: number) => (b >= 1e6 ? `${(b / 1e6).toFixed(1)} MB` : `${(b / 1e3).toFixed(1)} kB`);
  for (const f of r.files) console.log(`wrote ${f.path} (${size(f.bytes)})`);
  console.log(`${o.model}:${r.stage} as ${r.format}; ${config.classes.length} classes`);
  if (r.format === 'onnx') console.log(`input ${describeInput({ imageSize: config.imageSize, channels: config.channels, input: o.input })}; outputs 'logits' and 'probabilities'`);
  if (r.format === 'safetensors-torchvision' && r.python) console.log(`load it in Python with:\n${r.python}\nmodel.load_state_dict(state_dict)`);
  if (r.stage === 'pretrain') console.log(`the encoder (torchvision's names) and projection head (head.*): simclr import ${o.out} --unlabeled DIR --out RUN reads it back`);
  if (r.format === 'web') console.log(`serve the folder with any static server (e.g. python3 -m http.server -d ${o.out} 8000) and open index.html`);
  return 0;
}
