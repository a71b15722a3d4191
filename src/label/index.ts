// simclr-ts/label: a local page to label the images suggest-labels chose.
export { startLabelServer, type LabelServer, type LabelServerOptions } from './server';
export { LabelSheet, type SheetRow } from './sheet';
