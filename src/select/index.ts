// simclr-ts/select: which images to label, from the pretrained encoder's embeddings.
export * from './strategies';
export { kmeans, type Clustering } from './kmeans';
export { typicality, TYPICALITY_NEIGHBOURS } from './typicality';
