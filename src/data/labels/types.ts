// What a label source gives: labeled image files, where each label was read, and the classes.

export interface LabeledImage {
  /** the image file, absolute */
  file: string;
  /** the class name */
  label: string;
  /** where the label was read, for messages ('labels.csv, line 4' or the class folder) */
  where: string;
}

export interface LabelSet {
  /** the CSV or the folder, absolute */
  source: string;
  kind: 'csv' | 'folder';
  images: LabeledImage[];
  /** class names in index order: sorted for a CSV, the class folders' order for a folder */
  classes: string[];
  /** CSV rows whose label is still empty (not labeled yet) */
  unlabeledRows: number;
}
