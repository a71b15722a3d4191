// What the commands that read images share: the --channels value as the data layer takes it.
export { skippedLine } from '../data/dataset';

/** 'auto' and '1'/'3' from the command line as the data layer takes them. */
export function channelsOption(v: 'auto' | '1' | '3'): 1 | 3 | 'auto' {
  return v === 'auto' ? 'auto' : (Number(v) as 1 | 3);
}
