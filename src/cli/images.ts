// What the commands that read images share: the --channels value as the data layer takes
// it, and a line listing what --skip-bad-images passed over.
import type { ImageDataset } from '../data';

/** 'auto' and '1'/'3' from the command line as the data layer takes them. */
export function channelsOption(v: 'auto' | '1' | '3'): 1 | 3 | 'auto' {
  return v === 'auto' ? 'auto' : (Number(v) as 1 | 3);
}

/** Names what reading passed over, so that a skipped file is never silent. */
export function skippedLine(paths: readonly string[]): string {
  return `skipped ${paths.length} unreadable image${paths.length > 1 ? 's' : ''}: ${paths.slice(0, 5).join(', ')}${paths.length > 5 ? ', ...' : ''}`;
}

export function reportSkipped(ds: ImageDataset): void {
  if (ds.skipped.bad.length) console.log(skippedLine(ds.skipped.bad));
}
