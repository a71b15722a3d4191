export * from './idx';
export * from './subset';
