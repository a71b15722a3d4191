export { writeAtomic } from '../util/fs';
