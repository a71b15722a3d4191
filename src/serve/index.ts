// `simclr serve`: a JSON API and a page around a run's classifier (node:http).
export { startServer, type ServeOptions, type RunningServer } from './http';
export { ServedModel, type ClassProbability } from './model';
export { Batcher } from './batcher';
