// Progress lines live in src/util (the data layer shows them too).
export * from '../util/progress';
