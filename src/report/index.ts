// simclr-ts/report: report.html, a self-contained page about a run (results, curves, and
// what the trained models do on the test set).
export * from './analysis';
export * from './charts';
export * from './curves';
export * from './libs';
export * from './map';
export * from './page';
export * from './write';
