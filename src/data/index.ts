export * from './idx';
export * from './subset';
export * from './image-folder';
