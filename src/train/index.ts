export * from './supervised';
export * from './run-folder';
export * from './progress';
