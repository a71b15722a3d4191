// `simclr label`: serves the labeling page until Ctrl-C; every answer is already in the CSV.
import type { Parsed } from './options';
import type { COMMANDS } from './specs';
import { PlanError } from '../run';
import { LabelFileError, parseClassList } from '../data';
import { startLabelServer, type LabelSheet } from '../label';

/** The classes the page offers: --classes, else the labels the file holds already (it must hold some). */
export function labelClasses(sheet: LabelSheet, classes: string[]): string[] {
  const offered = classes.length ? classes : sheet.labelsInUse();
  if (!offered.length) throw new PlanError('--classes a,b,c (or a labeled folder) is needed: the file has no labels yet to take them from');
  return offered;
}

export async function labelCommand({ values: o }: { values: Parsed<typeof COMMANDS['label']['options']> }): Promise<number> {
  let server;
  try {
    const classes = o.classes ? parseClassList(o.classes) : [];
    server = await startLabelServer({ suggestions: o.suggestions ?? '', classes, port: o.port, host: o.host });
    try {
      labelClasses(server.sheet, classes);
    } catch (e) {
      await server.close();
      throw e;
    }
  } catch (e) {
    if (e instanceof LabelFileError) throw new PlanError(e.message);
    if ((e as NodeJS.ErrnoException).code === 'EADDRINUSE') throw new PlanError(`--port ${o.port} is in use: choose another, or 0 for any free port`);
    throw e;
  }
  const left = server.sheet.rows.filter((r) => !r.label && !r.skipped).length;
  console.log(`labeling ${o.suggestions} (${left} of ${server.sheet.rows.length} to go) at ${server.url}/ ; each answer is saved at once. Ctrl-C to stop.`);
  await new Promise<void>((done) => {
    const stop = () => void server.close().then(done);
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  return 0;
}
