// Every command's options, in one place: the parser, `simclr <command> --help` and the
// README's option lists are made from these tables (test/cli-options.test.ts checks the README).
import type { CommandSpec, OptionSpec, OptionTable } from './options';
import { CLASSIFIER_DEFAULTS, PRETRAIN_DEFAULTS } from '../run/defaults';
import type { ClassifierSettings } from '../run/plans';

const skipBadImages = { type: 'boolean', default: false, help: 'skip images that cannot be decoded (and list them) instead of stopping' } as const satisfies OptionSpec;
const imageSize = {
  type: 'integer', min: 8, max: 4096, auto: true, placeholder: 'N|auto', default: 'auto',
  defaultText: "auto: an image folder's own size when every image shares one of at most 64px, else 96 (photos: STL-10's size, ImageNet stem); a data set's own",
  help: 'side of the square images trained on',
} as const satisfies OptionSpec;
const channels = {
  type: 'string', choices: ['auto', '1', '3'], default: 'auto',
  help: 'image channels: 1 (gray), 3 (RGB), or auto (1 when every image is single-channel)',
} as const satisfies OptionSpec;
const seed = { type: 'integer', min: 0, default: 0, help: 'seed of the label subset, initialisation and views' } as const satisfies OptionSpec;
const resume = { type: 'boolean', default: false, help: 'continue the stage from its last checkpoint (the command that started it, plus --resume)' } as const satisfies OptionSpec;
const forceSettings = { type: 'boolean', default: false, help: 'resume under other compute settings (precision, layout, threads) than the run recorded' } as const satisfies OptionSpec;
const interpolation = { type: 'string', choices: ['bicubic', 'bilinear'], default: 'bicubic', help: 'resampling of the random crops' } as const satisfies OptionSpec;
const batchNorm = {
  type: 'string', choices: ['global', 'local'], default: 'global',
  help: "with workers (--nproc, a launcher): batch norm statistics over the global batch (the paper's; one collective per layer, forward and backward) or over each worker's own share (local: faster on slow networks; measured in docs/distributed.md)",
} as const satisfies OptionSpec;

/** The data and model options shared by pretrain and pipeline. */
const labeled = { type: 'string', placeholder: 'DIR|FILE.csv', help: 'your labeled images: a folder of class subfolders, or a CSV of path,label rows (paths relative to it; a header may name the columns; rows with an empty label are skipped). Labeled images may also sit in --unlabeled: they are recognised' } as const satisfies OptionSpec;
const dataOptions = {
  unlabeled: { type: 'string', placeholder: 'DIR', multiple: true, help: 'a folder of your unlabeled images (at any depth; class folders in it are not read as labels); may be given more than once' },
  labeled,
  data: { type: 'string', placeholder: 'SPEC', help: 'instead of --unlabeled/--labeled, a fully labeled set whose labels are hidden by --labels: an image folder (DIR/<class>/*.jpg|png|webp or DIR/*.jpg), fashion-mnist[:DIR], mnist:DIR, cifar10-bin:DIR or cifar100-bin:DIR' },
  'test-data': { type: 'string', placeholder: 'SPEC', defaultText: "the source's test split; none for --unlabeled/--labeled (results are then validation figures)", help: 'the test set (a labeled folder or CSV), read once per stage for its results' },
  'image-size': imageSize,
  channels,
  'skip-bad-images': skipBadImages,
} as const satisfies OptionTable;

const modelOptions = {
  model: { type: 'string', choices: ['resnet18', 'resnet34', 'resnet50', 'resnet101', 'resnet152', 'resnet200'], default: 'resnet18', help: 'the encoder (ResNet v1)' },
  depth: { type: 'integer', placeholder: 'N', defaultText: "--model's", help: 'ResNet depth (18, 34, 50, 101, 152 or 200), instead of --model' },
  width: { type: 'number', min: 0.0625, max: 8, default: 1, help: 'width multiplier of the encoder' },
  sk: { type: 'boolean', default: false, help: 'selective kernels (ratio 0.0625) with the ResNet-D stem' },
  'zero-init-residual': { type: 'boolean', default: false, help: "start the last batch norm of each residual block at zero scale (the official code's init_zero; off by default: on, fine-tuning scored lower on validation in both seeds tried, bench/demo-settings.md)" },
} as const satisfies OptionTable;

/** --budget on one training command: its epochs from the minutes given. */
const stageBudget = { type: 'string', placeholder: 'TIME', help: "the time this stage may take (20m, 2h, 90s): a few steps timed on this machine set its epochs (or, where less than an epoch fits, its images); the plan is printed first. Not with --epochs" } as const satisfies OptionSpec;

export const pretrainOptions = {
  ...dataOptions,
  out: { type: 'string', placeholder: 'RUN', required: true, help: 'the run folder to create (or to continue with --resume)' },
  ...modelOptions,
  init: { type: 'string', placeholder: 'FILE', help: "continue pretraining from published weights (as simclr import reads them): they decide the architecture (the model options only confirm it), the input size (224 unless --image-size) and normalisation; a projection head they lack starts fresh" },
  epochs: { type: 'integer', min: 1, default: PRETRAIN_DEFAULTS.epochs, help: 'pretraining epochs' },
  budget: stageBudget,
  batch: { type: 'integer', min: 2, rangeWhy: "for NT-Xent each image's negatives are the others", default: PRETRAIN_DEFAULTS.batch, help: 'images per step (two views each)' },
  lr: { type: 'number', min: 0, defaultText: '1.0 at 32px or less, else 0.3 (linear) or 0.075 (sqrt), as the paper', help: 'LARS base learning rate, scaled by --lr-scaling' },
  'lr-scaling': { type: 'string', choices: ['linear', 'sqrt'], default: PRETRAIN_DEFAULTS.lrScaling, help: 'learning rate x batch/256 (linear) or x sqrt(batch) (sqrt)' },
  temperature: { type: 'number', min: 1e-3, defaultText: '0.5 at 32px or less, else 0.1', help: 'NT-Xent temperature' },
  'warmup-epochs': { type: 'integer', min: 0, defaultText: 'a tenth of --epochs, 0 under 10', help: 'linear warm-up before the cosine decay' },
  'crop-min': { type: 'number', min: 0.01, max: 1, default: PRETRAIN_DEFAULTS.cropMin, help: 'smallest crop area, as a fraction of the image' },
  'max-images': { type: 'integer', min: 0, default: PRETRAIN_DEFAULTS.maxImages, help: 'pretrain on a seeded random subset of this many images (0: all)' },
  interpolation,
  'pixel-crops': { type: 'boolean', default: PRETRAIN_DEFAULTS.pixelCrops, help: 'crop boxes in whole pixels, as torchvision draws them' },
  seed,
  knn: { type: 'boolean', default: false, help: 'kNN accuracy on the test set after each epoch' },
  'batch-norm': batchNorm,
  resume: { ...resume, help: "continue the run from its last checkpoint (the command that started it, plus --resume); given the images and a folder that holds no run yet, start it, so that a launcher can restart the same command (a PyTorchJob's pods, a requeued Slurm job)" },
  'force-settings': forceSettings,
} as const satisfies OptionTable;

/** Data-parallel workers on this machine (src/distributed); torchrun-style launchers set the environment instead. */
export const workerOptions = {
  nproc: { type: 'integer', min: 1, max: 256, default: 1, help: "worker processes on this machine (data-parallel over c10d/Gloo): a training stage's --batch is the global batch, split between them, and evaluation splits the images; --threads is per worker (default: the threads divided between them). Under a launcher that sets WORLD_SIZE, RANK, MASTER_ADDR and MASTER_PORT (torchrun, srun, a PyTorchJob), leave it out" },
  'master-port': { type: 'integer', min: 1, max: 65535, defaultText: 'MASTER_PORT, else a free port', help: "the rendezvous port of --nproc's workers (one node)" },
  nnodes: { type: 'integer', min: 1, max: 4096, default: 1, help: 'machines (nodes) taking part, each running this command with its own --node-rank and --nproc workers (the same on every node): WORLD_SIZE is nnodes x nproc' },
  'node-rank': { type: 'integer', min: 0, placeholder: 'K', default: 0, help: "this node's place, 0 to nnodes-1: its workers are ranks K x nproc to K x nproc + nproc-1; node 0's first worker hosts the rendezvous" },
  master: { type: 'string', placeholder: 'HOST:PORT', defaultText: '127.0.0.1 and --master-port', help: 'the rendezvous: the address of node 0 and a free port there, the same on every node (needed with --nnodes)' },
  'allow-public-rendezvous': { type: 'boolean', default: false, help: "accept a --master address routable on the internet: the rendezvous has no authentication (as torchrun's), so only do this where a firewall lets just the nodes reach the port" },
  iface: { type: 'string', placeholder: 'NAME', defaultText: 'the one that routes to --master', help: "with --nnodes: the network interface this node's workers exchange tensors on (as PyTorch's GLOO_SOCKET_IFNAME, which is read too)" },
  'max-restarts': { type: 'integer', min: 0, max: 100, default: 0, help: "when a worker fails, stop this node's others and start them all again, up to this many times (a training command with --resume from its last checkpoint; eval as given) (every node's launcher restarts; restart k meets at the rendezvous port + k). Ctrl-C and SIGTERM are never restarted" },
} as const satisfies OptionTable;

/** The device the training commands compute on (checked in src/cli/device.ts). */
export const deviceOptions = {
  device: { type: 'string', placeholder: 'cpu|cuda|cuda:N', default: 'cpu', help: "where to train: cuda needs the addon built against a CUDA libtorch (LIBTORCH=...); with --nproc or a launcher each worker takes its LOCAL_RANK's GPU. Models, batches, views and optimiser state live there, under bfloat16 autocast by default; the workers' collectives stay Gloo's, through host memory" },
} as const satisfies OptionTable;

/** Options of the three classifier stages; each stage has its own defaults (below). */
export type ClassifierTable = ReturnType<typeof classifierOptions>;
function classifierOptions(d: ClassifierSettings) {
  return {
    labeled: { ...labeled, defaultText: "the run's --labeled" },
    classes: { type: 'string', placeholder: 'a,b,c|DIR', defaultText: "the run's, else the labeled set's", help: 'with --labeled: the classes, comma-separated or a folder of class subfolders, when some may have no labeled image yet (without it a class with no label is an error)' },
    labels: { type: 'string', placeholder: 'SPEC', default: d.labels, help: 'with --data: the labeled subset drawn from it: 1%, 10%, a fraction such as 0.1, or 25/class (stratified, drawn by --seed)' },
    'labels-file': { type: 'string', placeholder: 'FILE', help: 'reuse a list of labeled image ids (one per line) instead of drawing one' },
    val: { type: 'string', placeholder: 'SPEC', default: d.val, help: "validation split held out of the training images' labels (10%, 0.1, 500 images, or 0 for none; at most 5,000), reported after each epoch; made once per run (val.txt)" },
    'val-file': { type: 'string', placeholder: 'FILE', help: 'reuse a list of validation image ids instead of drawing one' },
    epochs: { type: 'integer', min: 1, default: d.epochs, help: 'training epochs' },
    budget: stageBudget,
    batch: { type: 'integer', min: 2, rangeWhy: 'batch norm cannot train on one image', default: d.batch, help: 'images per step' },
    lr: { type: 'number', min: 0, default: d.lr, help: 'SGD (Nesterov, cosine) learning rate' },
    'weight-decay': { type: 'number', min: 0, default: d.weightDecay, help: 'weight decay' },
    'crop-min': { type: 'number', min: 0.01, max: 1, default: d.cropMin, help: 'smallest crop area of the crop + flip views' },
    'drop-last': { type: 'boolean', default: d.dropLast, help: "drop each epoch's last partial batch" },
    interpolation,
    'pixel-crops': { type: 'boolean', default: d.pixelCrops, help: 'crop boxes in whole pixels, as torchvision draws them' },
    seed,
    'batch-norm': batchNorm,
    'skip-bad-images': { ...skipBadImages, defaultText: 'as the run was made', default: false },
    resume,
    'force-settings': forceSettings,
  } as const satisfies OptionTable;
}

const fromRun = { type: 'string', placeholder: 'RUN', required: true, help: 'the run folder (made by simclr pretrain)' } as const satisfies OptionSpec;

export const finetuneOptions = {
  from: fromRun,
  ...classifierOptions(CLASSIFIER_DEFAULTS.finetune),
  'from-head-layer': { type: 'integer', min: 0, max: 3, default: 1, help: "fine-tune from this layer of the projection head (0: the encoder alone; SimCLRv2's choice: 1)" },
} as const satisfies OptionTable;
const freshZeroInit = { type: 'boolean', default: true, defaultText: "as the run's encoder", help: "start the fresh network's last batch norm of each residual block at zero scale" } as const satisfies OptionSpec;
export const supervisedOptions = {
  from: fromRun,
  ...classifierOptions(CLASSIFIER_DEFAULTS.supervised),
  'zero-init-residual': { ...freshZeroInit, default: false, defaultText: undefined, help: "start the network's last batch norm of each residual block at zero scale (off by default, as the encoder's)" },
} as const satisfies OptionTable;
export const distillOptions = {
  teacher: { ...fromRun, help: 'the run folder holding the fine-tuned teacher (finetune-<labels>)' },
  ...classifierOptions(CLASSIFIER_DEFAULTS.distill),
  temperature: { type: 'number', min: 0.05, max: 100, default: 1, help: 'softmax temperature of teacher and student' },
  'zero-init-residual': freshZeroInit,
  'student-width': { type: 'number', min: 0.0625, max: 8, defaultText: "the teacher's", help: 'width multiplier of the student' },
  'student-depth': { type: 'integer', placeholder: 'N', defaultText: "the teacher's", help: 'ResNet depth of the student' },
  'max-images': { type: 'integer', min: 0, default: 0, help: 'distill on a seeded random subset of this many images (0: all)' },
} as const satisfies OptionTable;

/** Stage options that the pipeline sets itself, so they take no stage prefix there. */
export const PIPELINE_FIXED = new Set(['budget', 'unlabeled', 'labeled', 'classes', 'data', 'test-data', 'image-size', 'channels', 'skip-bad-images', 'out', 'model', 'depth', 'width', 'sk', 'zero-init-residual', 'resume', 'force-settings', 'from', 'teacher', 'labels', 'labels-file', 'val', 'val-file']);
export const PIPELINE_STAGES = { pretrain: pretrainOptions, supervised: supervisedOptions, finetune: finetuneOptions, distill: distillOptions } as const;
export type PipelineStage = keyof typeof PIPELINE_STAGES;

/** --pretrain-epochs, --finetune-lr, ...: every stage option with its stage's prefix. */
function prefixedStageOptions(): OptionTable {
  const out: Record<string, OptionSpec> = {};
  for (const [stage, table] of Object.entries(PIPELINE_STAGES) as [string, OptionTable][]) {
    for (const [name, o] of Object.entries(table)) {
      // The encoder's init is the pipeline's; a fresh baseline or student may differ (--supervised-zero-init-residual).
      if (PIPELINE_FIXED.has(name) && !(name === 'zero-init-residual' && stage !== 'pretrain')) continue;
      out[`${stage}-${name}`] = { ...o, help: `${stage}: ${o.help}`, ...(name === 'seed' ? { default: undefined, defaultText: '--seed' } : {}) };
    }
  }
  return out;
}

/** The pipeline's own options; the stage options follow them with their prefix. */
export const pipelineOwnOptions = {
  ...dataOptions,
  budget: { type: 'string', placeholder: 'TIME', help: "the time the whole pipeline may take (20m, 2h, 90s): a short calibration of each stage's step on this machine sets each stage's epochs (or, where less than an epoch fits, images), by --budget-split; the plan is printed first and recorded; stage options given still win" },
  'budget-split': { type: 'string', placeholder: 'P,S,F,D', default: '60,6,6,28', help: "the budget's shares for pretraining, the baseline, fine-tuning and distillation" },
  recipe: { type: 'string', choices: ['paper', 'laptop'], default: 'paper', help: "a named set of settings: paper (the paper's, the stages' defaults) or laptop (the demo's, chosen on validation for a 2-core machine: ResNet-18 at width 0.25, short schedules); options given win, and the run records where each setting came from" },
  labels: { type: 'string', placeholder: 'LIST', default: '1%,10%', help: 'label fractions, comma-separated (each as in finetune --labels)' },
  out: { type: 'string', placeholder: 'RUN', required: true, help: 'the run folder (an unfinished one is continued)' },
  ...modelOptions,
  seed: { ...seed, help: 'seed of every stage (a stage prefix overrides it: --finetune-seed)' },
  val: { type: 'string', placeholder: 'SPEC', default: CLASSIFIER_DEFAULTS.finetune.val, help: "validation split held out of the training images' labels (10%, 0.1, 500 images, or 0 for none; at most 5,000)" },
  'val-file': { type: 'string', placeholder: 'FILE', help: 'reuse a list of validation image ids' },
  resume,
  'force-settings': forceSettings,
} as const satisfies OptionTable;

// Typed as the pipeline's own options: the prefixed ones are read by name (pipeline.ts).
export const pipelineOptions = { ...pipelineOwnOptions, ...prefixedStageOptions() } as typeof pipelineOwnOptions;

export const COMMANDS = {
  info: {
    name: 'info',
    summary: 'libtorch version and build (CPU/CUDA), threads, devices, and the precision, layout, BLAS kernels and allocator chosen for this machine',
    usage: 'simclr info [--json]',
    example: 'simclr info --json',
    options: { json: { type: 'boolean', default: false, help: 'print JSON' } },
  },
  demo: {
    name: 'demo',
    summary: "Fashion-MNIST as a pile of unlabeled images: pretrain, choose 130 to label (13 a class, the paper's 1% regime), then the baseline, fine-tuning and distillation under a 15-minute budget (--quick: about 3 min)",
    usage: 'simclr demo [--quick] [--out RUN]',
    example: 'simclr demo --quick',
    options: {
      quick: { type: 'boolean', default: false, help: 'a short version: 10,000 training images, 2,000 test images, a 90 s budget' },
      out: { type: 'string', placeholder: 'RUN', defaultText: 'runs/demo-<date>-<time>', help: 'the run folder (the demo continues a stopped one)' },
      count: { type: 'integer', min: 10, max: 5000, default: 130, help: 'images suggest-labels chooses to label' },
      budget: { type: 'string', placeholder: 'TIME', defaultText: '15m (--quick 90s)', help: 'the pipeline\'s time budget (pretraining, choosing labels, baseline, fine-tuning, distillation)' },
      seed,
    },
  },
  data: {
    name: 'data',
    summary: 'read (and cache) a data set, show what is in it, write a label subset',
    usage: 'simclr data --data SPEC [--labels SPEC --out FILE]',
    example: 'simclr data --data photos --labels 10% --seed 0 --out labeled.txt',
    options: {
      data: dataOptions.data,
      'image-size': imageSize,
      channels,
      split: { type: 'string', choices: ['train', 'test'], default: 'train', help: 'which split of a data set that has them (idx files, CIFAR binaries)' },
      'skip-bad-images': skipBadImages,
      labels: { type: 'string', placeholder: 'SPEC', help: 'write a stratified label subset (1%, 10%, 0.1 or 25/class), drawn as finetune draws it' },
      val: { type: 'string', placeholder: 'SPEC', default: CLASSIFIER_DEFAULTS.finetune.val, help: "the validation split --labels leaves out, as the classifier stages' --val" },
      seed,
      out: { type: 'string', placeholder: 'FILE', default: 'labeled.txt', help: 'where --labels writes the image ids' },
    },
  },
  views: {
    name: 'views',
    summary: 'a PNG grid: each row an image, then two SimCLR views of it',
    usage: 'simclr views --data DIR [--out FILE]',
    example: 'simclr views --data photos --out views.png --count 8',
    options: {
      data: { type: 'string', placeholder: 'DIR', required: true, help: 'an image folder (DIR/<class>/*.jpg|png|webp or DIR/*.jpg)' },
      out: { type: 'string', placeholder: 'FILE', default: 'views.png', help: 'the PNG to write' },
      count: { type: 'integer', min: 1, max: 64, default: 8, help: 'images (rows)' },
      'image-size': { ...imageSize, max: 512 },
      channels,
      zoom: { type: 'integer', min: 1, max: 16, defaultText: '4 up to 64px, else 1', help: 'pixel zoom, for a person to see' },
      'skip-bad-images': skipBadImages,
      seed,
    },
  },
  pretrain: {
    name: 'pretrain',
    summary: 'SimCLRv2 contrastive pretraining on all images (labels unused); makes the run folder',
    usage: 'simclr pretrain --data SPEC --out RUN [options] | simclr pretrain --out RUN --resume',
    example: 'simclr pretrain --data photos --test-data test-photos --out runs/photos --epochs 100 --knn',
    options: { ...pretrainOptions, ...workerOptions, ...deviceOptions },
  },
  finetune: {
    name: 'finetune',
    summary: 'fine-tune from the first head layer on a stratified labeled subset (written to the run folder)',
    usage: 'simclr finetune --from RUN [--labels SPEC] [options]',
    example: 'simclr finetune --from runs/photos --labeled labels.csv',
    options: { ...finetuneOptions, ...workerOptions, ...deviceOptions },
  },
  distill: {
    name: 'distill',
    summary: "distill the fine-tuned teacher into a fresh student (same size, or --student-width/--student-depth) on all training images",
    usage: 'simclr distill --teacher RUN [--labels SPEC] [options]',
    example: 'simclr distill --teacher runs/photos --labeled labels.csv',
    options: { ...distillOptions, ...workerOptions, ...deviceOptions },
  },
  supervised: {
    name: 'supervised',
    summary: 'the baseline: the same network from scratch on the labeled subset only',
    usage: 'simclr supervised --from RUN [--labels SPEC] [options]',
    example: 'simclr supervised --from runs/photos --labeled labels.csv',
    options: { ...supervisedOptions, ...workerOptions, ...deviceOptions },
  },
  eval: {
    name: 'eval',
    summary: "top-1/top-5 of the run's classifiers on the test set; --knn and --linear for the frozen pretrained encoder",
    usage: 'simclr eval --model RUN [options]',
    example: 'simclr eval --model runs/photos --test-data test-photos --knn --linear',
    options: {
      model: { type: 'string', placeholder: 'RUN', required: true, help: 'the run folder' },
      stage: { type: 'string', placeholder: 'STAGE', defaultText: 'every trained classifier', help: 'one stage (finetune-1pct, distill-1pct, supervised-1pct, ...)' },
      'test-data': { type: 'string', placeholder: 'SPEC', defaultText: "the run's test set", help: 'the test set' },
      knn: { type: 'boolean', default: false, help: 'kNN accuracy (k=200, T=0.1) of the frozen pretrained encoder' },
      linear: { type: 'boolean', default: false, help: 'linear evaluation of the frozen pretrained encoder on all training labels' },
      'linear-epochs': { type: 'integer', min: 1, default: 30, help: "linear evaluation's epochs" },
      'skip-bad-images': { ...skipBadImages, defaultText: 'as the run was made', default: false },
      ...workerOptions,
    },
  },
  pipeline: {
    name: 'pipeline',
    summary: 'pretrain, then for each label fraction: baseline, fine-tune, distill; a results table and report.html',
    usage: 'simclr pipeline --data SPEC --out RUN [--labels 1%,10%] [--<stage>-<option> VALUE ...]',
    example: 'simclr pipeline --data fashion-mnist --labels 1%,10% --out runs/fm --pretrain-epochs 8',
    options: { ...pipelineOptions, ...workerOptions, ...deviceOptions },
  },
  import: {
    name: 'import',
    summary: 'published weights (torchvision or timm ResNets, SimCLRv2 conversions, our own exports; safetensors or torch.save files) as a run folder to fine-tune, distill, evaluate and suggest labels from',
    usage: 'simclr import FILE (--unlabeled DIR [--labeled DIR|FILE.csv] | --data SPEC) --out RUN',
    example: 'simclr import resnet50.safetensors --unlabeled photos --labeled labels.csv --out runs/r50',
    positionals: 'the weights file (.safetensors, .pth, .pt)',
    options: {
      unlabeled: dataOptions.unlabeled,
      labeled,
      data: dataOptions.data,
      'test-data': dataOptions['test-data'],
      out: { type: 'string', placeholder: 'RUN', required: true, help: 'the run folder to make' },
      'image-size': { ...imageSize, defaultText: "the weights' (224; an export of ours: its own)" },
      model: { type: 'string', choices: modelOptions.model.choices, help: 'confirms the architecture the file holds (read from its names and shapes)' },
      depth: { ...modelOptions.depth, defaultText: "the file's", help: 'confirms the ResNet depth' },
      width: { type: 'number', min: 0.0625, max: 8, defaultText: "the file's", help: 'confirms the width multiplier' },
      sk: { type: 'boolean', default: false, defaultText: "the file's", help: 'confirms selective kernels' },
      seed: { ...seed, help: "seed of a projection head the file has none of" },
      'skip-bad-images': skipBadImages,
    },
  },
  'suggest-labels': {
    name: 'suggest-labels',
    summary: "which images to label: embeds your unlabeled images with the run's pretrained encoder and writes the N to label first (a CSV to fill in, and a contact sheet)",
    usage: 'simclr suggest-labels --model RUN --count N [--strategy typical|kmeans|random|uncertain] --out to-label.csv',
    example: 'simclr suggest-labels --model runs/photos --count 100 --out to-label.csv',
    options: {
      model: { type: 'string', placeholder: 'RUN', required: true, help: 'the run folder (made by simclr pretrain)' },
      count: { type: 'integer', min: 1, max: 100000, required: true, placeholder: 'N', help: 'images to suggest' },
      strategy: { type: 'string', choices: ['typical', 'kmeans', 'random', 'uncertain'], default: 'typical', help: "typical: the most typical image of each of the N largest clusters without a label (TypiClust); kmeans: the image nearest each such cluster's centre; random; uncertain: the run's classifier's least confident images (a later round)" },
      out: { type: 'string', placeholder: 'FILE.csv', default: 'to-label.csv', help: 'the CSV to write: path, an empty label column, and why each image was chosen' },
      sheet: { type: 'string', placeholder: 'FILE.png', defaultText: "--out's name with .png", help: 'a contact sheet of the suggested images, in the CSV\'s order' },
      unlabeled: { type: 'string', placeholder: 'DIR', multiple: true, defaultText: "the run's images", help: 'the images to choose among; may be given more than once' },
      labeled: { ...labeled, defaultText: "the run's --labeled", help: 'images labeled already (a folder or CSV): they count as covered, so a second round suggests others' },
      stage: { type: 'string', placeholder: 'STAGE', defaultText: 'distill-*, else finetune-*', help: 'uncertain: the classifier to ask' },
      seed,
      'skip-bad-images': { ...skipBadImages, defaultText: 'as the run was made', default: false },
    },
  },
  label: {
    name: 'label',
    summary: 'a local page to label the suggested images: keys 1-9 give the class, s skips, u undoes; the CSV is written as you go',
    usage: 'simclr label --suggestions to-label.csv --classes a,b,c [--port 8090]',
    example: 'simclr label --suggestions to-label.csv --classes cat,dog,bird',
    options: {
      suggestions: { type: 'string', placeholder: 'FILE.csv', required: true, help: 'the CSV to fill in (as suggest-labels writes it); reopening it continues where you stopped' },
      classes: { type: 'string', placeholder: 'a,b,c|DIR', defaultText: 'the labels the file already holds', help: 'the classes, comma-separated, or a labeled folder whose class subfolders name them' },
      port: { type: 'integer', min: 0, max: 65535, default: 8090, help: 'TCP port (0: any free port)' },
      host: { type: 'string', placeholder: 'ADDRESS', default: '127.0.0.1', help: 'address to listen on' },
    },
  },
  predict: {
    name: 'predict',
    summary: 'class and probability per image, from the distilled (else fine-tuned) model: image files, or whole folders streamed, to the screen or a CSV',
    usage: 'simclr predict --model RUN (IMAGE... | --unlabeled DIR) [--out predictions.csv] [--top K] [--json]',
    example: 'simclr predict --model runs/photos --unlabeled new-photos --out predictions.csv --top 3',
    positionals: 'image files',
    options: {
      model: { type: 'string', placeholder: 'RUN', required: true, help: 'the run folder' },
      unlabeled: { ...dataOptions.unlabeled, help: 'a folder of images to classify (at any depth, streamed: any size); may be given more than once' },
      stage: { type: 'string', placeholder: 'STAGE', defaultText: 'distill-*, else finetune-*', help: 'the classifier to use' },
      out: { type: 'string', placeholder: 'FILE.csv', help: 'write path, class, probability and the top classes per image as a CSV (paths relative to it)' },
      top: { type: 'integer', min: 1, max: 1000, default: 1, help: 'classes per image, most probable first' },
      json: { type: 'boolean', default: false, help: 'print JSON' },
      'skip-bad-images': { ...skipBadImages, help: 'skip image files that cannot be decoded (and list them) instead of stopping' },
    },
  },
  embed: {
    name: 'embed',
    summary: "the encoder's embeddings of image files or whole folders (streamed), with each image's path: safetensors, or CSV for small sets",
    usage: 'simclr embed --model RUN (IMAGE... | --unlabeled DIR) --out FILE.safetensors|FILE.csv',
    example: 'simclr embed --model runs/photos --unlabeled photos --out embeddings.safetensors',
    positionals: 'image files',
    options: {
      model: { type: 'string', placeholder: 'RUN', required: true, help: 'the run folder' },
      unlabeled: { ...dataOptions.unlabeled, help: 'a folder of images to embed (at any depth); may be given more than once' },
      out: { type: 'string', placeholder: 'FILE', required: true, help: "FILE.safetensors: 'embeddings' [N, D] float32 and the paths in its metadata; FILE.csv: path and D columns" },
      stage: { type: 'string', placeholder: 'STAGE', default: 'pretrain', help: "pretrain (the pretrained encoder) or a classifier stage (its tuned encoder)" },
      'skip-bad-images': { ...skipBadImages, help: 'skip image files that cannot be decoded (and list them) instead of stopping' },
    },
  },
  export: {
    name: 'export',
    summary: "a run's classifier for use elsewhere: ONNX (batch norm folded, preprocessing inside), torchvision safetensors, or a static web page",
    usage: 'simclr export --model RUN --format onnx|safetensors-torchvision|web --out FILE|DIR [--stage STAGE]',
    example: 'simclr export --model runs/photos --format onnx --out model.onnx',
    options: {
      model: { type: 'string', placeholder: 'RUN', required: true, help: 'the run folder' },
      stage: { type: 'string', placeholder: 'STAGE', defaultText: 'distill-*, else finetune-*', help: 'the classifier to export; pretrain: the pretrained encoder and projection head (safetensors-torchvision), which simclr import reads back' },
      format: { type: 'string', choices: ['onnx', 'safetensors-torchvision', 'web'], default: 'onnx', help: 'ONNX (opset 17, dynamic batch), safetensors under torchvision ResNet names (width 1, no SK), or a folder with a page that runs the model in the browser' },
      out: { type: 'string', placeholder: 'FILE|DIR', required: true, help: 'the file to write (the folder, for --format web)' },
      input: { type: 'string', choices: ['uint8', 'float'], default: 'uint8', help: "ONNX input 'pixels' [batch, C, H, W]: uint8 0..255, or float32 in [0, 1]" },
    },
  },
  serve: {
    name: 'serve',
    summary: "an HTTP server around a run's classifier: POST /predict (an image, or multipart files) -> JSON top-k; GET / a page to drop images on; GET /healthz",
    usage: 'simclr serve --model RUN [--port 8080] [--host 127.0.0.1]',
    example: 'simclr serve --model runs/photos --port 8080',
    options: {
      model: { type: 'string', placeholder: 'RUN', required: true, help: 'the run folder' },
      stage: { type: 'string', placeholder: 'STAGE', defaultText: 'distill-*, else finetune-*', help: 'the classifier to serve' },
      port: { type: 'integer', min: 0, max: 65535, default: 8080, help: 'TCP port (0: any free port)' },
      host: { type: 'string', placeholder: 'ADDRESS', default: '127.0.0.1', help: 'address to listen on (0.0.0.0: every interface)' },
      top: { type: 'integer', min: 1, max: 1000, default: 5, help: 'classes per image in the answer (a request can ask ?top=N)' },
      'max-bytes': { type: 'integer', min: 1, default: 10485760, help: 'largest image accepted, in bytes (larger: 413)' },
      'max-batch': { type: 'integer', min: 1, max: 1024, default: 32, help: 'most images per forward pass (concurrent requests are batched)' },
    },
  },
  report: {
    name: 'report',
    summary: "rewrite a run's report.html in full: results, label efficiency, curves, and the classifier on the test set (confusion matrix, per-class accuracy, most confident mistakes), SimCLR views, a UMAP map of the encoder's embeddings",
    usage: 'simclr report --model RUN [--out FILE] [--stage STAGE]',
    example: 'simclr report --model runs/photos',
    options: {
      model: { type: 'string', placeholder: 'RUN', required: true, help: 'the run folder' },
      out: { type: 'string', placeholder: 'FILE', defaultText: 'RUN/report.html, with the analysis saved beside it as report-analysis.json', help: 'the page to write (elsewhere, the run folder is only read)' },
      stage: { type: 'string', placeholder: 'STAGE', defaultText: 'distill-*, else finetune-*', help: 'the classifier whose test-set results are shown' },
      'map-images': { type: 'integer', min: 3, max: 100000, default: 2000, help: 'test images on the embedding map (a seeded sample)' },
      mistakes: { type: 'integer', min: 0, max: 500, default: 24, help: 'most confident mistakes shown' },
      seed: { ...seed, help: 'seed of the map (sample and UMAP) and of the views' },
      'skip-bad-images': { ...skipBadImages, defaultText: 'as the run was made', default: false },
    },
  },
} as const satisfies Record<string, CommandSpec>;

export type CommandName = keyof typeof COMMANDS;
