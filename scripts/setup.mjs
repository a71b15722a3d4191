#!/usr/bin/env node
// Idempotent set-up: finds (or installs) libtorch, builds the native addon, compiles the
// TypeScript, and installs what the tests or the demo read. Each step is skipped when its
// output is already up to date, so `npm test` and `npm run demo` can call it every time.
//
//   node scripts/setup.mjs --native      libtorch + addon only (the npm `install` hook)
//   node scripts/setup.mjs --for=test    + Python PyTorch reference, Fashion-MNIST, TypeScript build
//   node scripts/setup.mjs --for=demo    + Fashion-MNIST, TypeScript build
// What the tests or the demo read and this script cannot install stops it with a message
// saying what to install: no test is skipped for want of it.
import { execFileSync } from 'node:child_process';
import { existsSync, realpathSync, readFileSync, writeFileSync, statSync, readdirSync, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const purpose = (args.find((a) => a.startsWith('--for=')) ?? '--for=native').slice(6);
const nativeOnly = args.includes('--native');

function log(msg) {
  process.stderr.write(`[simclr setup] ${msg}\n`);
}

function fail(msg) {
  process.stderr.write(`\n[simclr setup] ERROR: ${msg}\n\n`);
  process.exit(1);
}

function run(cmd, argv, opts = {}) {
  execFileSync(cmd, argv, { stdio: 'inherit', cwd: root, ...opts });
}

const isDebian = existsSync('/etc/debian_version');
const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
let aptUpdated = false;

function dpkgInstalled(pkg) {
  try {
    const out = execFileSync('dpkg-query', ['-W', '-f=${Status}', pkg], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    return out.includes('install ok installed');
  } catch {
    return false;
  }
}

function aptInstall(pkgs, why) {
  const missing = pkgs.filter((p) => !dpkgInstalled(p));
  if (missing.length === 0) return true;
  if (!isDebian || !isRoot) return false;
  log(`installing ${missing.join(' ')} with apt (${why})`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  if (!aptUpdated) {
    run('apt-get', ['update', '-qq'], { env });
    aptUpdated = true;
  }
  run('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...missing], { env });
  return true;
}

// ---------------------------------------------------------------- libtorch
function readVersion(includeDir) {
  const header = join(includeDir, 'torch/csrc/api/include/torch/version.h');
  if (!existsSync(header)) return null;
  const text = readFileSync(header, 'utf8');
  const part = (name) => text.match(new RegExp(`#define TORCH_VERSION_${name} (\\d+)`))?.[1] ?? '?';
  return `${part('MAJOR')}.${part('MINOR')}.${part('PATCH')}`;
}

// libstdc++'s dual ABI: a libtorch built with the old ABI has no `__cxx11` symbols.
function usesCxx11Abi(libDir) {
  // A PyTorch install or libtorch zip states it (pip wheels: old ABI up to 2.6, new from 2.7).
  const cmake = join(libDir, '../share/cmake/Torch/TorchConfig.cmake');
  const stated = existsSync(cmake) ? readFileSync(cmake, 'utf8').match(/_GLIBCXX_USE_CXX11_ABI=([01])/) : null;
  if (stated) return stated[1] === '1';
  const c10 = join(libDir, 'libc10.so');
  if (!existsSync(c10)) return true;
  return readFileSync(c10).includes('St7__cxx11');
}

function describe(source, includeDir, libDir) {
  const version = readVersion(includeDir);
  if (!version) return null;
  const hasLib = (name) => existsSync(join(libDir, `lib${name}.so`));
  if (!hasLib('torch_cpu') && !hasLib('torch')) return null;
  const cuda = hasLib('torch_cuda');
  const libs = ['torch', 'torch_cpu', 'c10', ...(cuda ? ['torch_cuda', 'c10_cuda'] : [])].filter(hasLib);
  return {
    source,
    version,
    cuda,
    cxx11Abi: usesCxx11Abi(libDir),
    includeDirs: [includeDir, join(includeDir, 'torch/csrc/api/include')],
    libDir,
    libs,
  };
}

function findLibtorch() {
  const fromEnv = process.env.LIBTORCH;
  if (fromEnv) {
    const dir = resolve(fromEnv);
    const found = describe(`LIBTORCH=${dir}`, join(dir, 'include'), join(dir, 'lib'));
    if (!found) {
      fail(
        `LIBTORCH=${dir} is not a libtorch directory: expected ${join(dir, 'include/torch/csrc/api/include/torch/version.h')} ` +
          `and ${join(dir, 'lib/libtorch_cpu.so')}. Point LIBTORCH at the unzipped official libtorch, or at the ` +
          `'torch' folder of a PyTorch Python install (python3 -c "import torch,os;print(os.path.dirname(torch.__file__))").`,
      );
    }
    return found;
  }
  const multiarch = ['/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/usr/lib64', '/usr/lib', '/usr/local/lib'];
  for (const prefix of ['/usr/include', '/usr/local/include']) {
    if (!readVersion(prefix)) continue;
    for (const libDir of multiarch) {
      const found = describe('system', prefix, libDir);
      if (found) return found;
    }
  }
  return null;
}

function ensureLibtorch() {
  let found = findLibtorch();
  if (!found && !process.env.LIBTORCH) {
    if (aptInstall(['libtorch-dev'], 'no libtorch found')) found = findLibtorch();
  }
  if (!found) {
    fail(
      'no libtorch found. Either install it from your distribution (Debian/Ubuntu: `sudo apt-get install libtorch-dev`), ' +
        'or unzip the official libtorch (C++) package, or install PyTorch for Python, and set ' +
        'LIBTORCH to that directory (for Python: the folder printed by ' +
        '`python3 -c "import torch,os;print(os.path.dirname(torch.__file__))"`), then run `npm install` again.',
    );
  }
  return found;
}

// ---------------------------------------------------------------- native addon
function newestMtime(paths) {
  let newest = 0;
  for (const p of paths) {
    if (!existsSync(p)) continue;
    const st = statSync(p);
    if (st.isDirectory()) {
      newest = Math.max(newest, newestMtime(readdirSync(p).map((f) => join(p, f))));
    } else {
      newest = Math.max(newest, st.mtimeMs);
    }
  }
  return newest;
}

function nodeGypCommand() {
  if (process.env.npm_config_node_gyp) return [process.execPath, process.env.npm_config_node_gyp];
  const npmCli = join(dirname(process.execPath), '../lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js');
  if (existsSync(npmCli)) return [process.execPath, npmCli];
  for (const base of ['/usr/lib/node_modules', '/usr/local/lib/node_modules']) {
    const p = join(base, 'npm/node_modules/node-gyp/bin/node-gyp.js');
    if (existsSync(p)) return [process.execPath, p];
  }
  return ['node-gyp'];
}

// c10d's Gloo process group (workers, src/distributed) compiles against libtorch's c10d
// headers plus Gloo's own, which libtorch packages may leave out (Debian: libgloo-dev).
function findGloo(config) {
  const c10d = config.includeDirs.some((d) => existsSync(join(d, 'torch/csrc/distributed/c10d/ProcessGroupGloo.hpp')));
  if (!c10d) return null;
  // Gloo's headers must be those of the Gloo built into this libtorch: the system's only go
  // with the system's libtorch. PyTorch's wheels leave them out, so those build without workers.
  const system = config.source === 'system' ? ['/usr/include', '/usr/local/include'] : [];
  for (const dir of [...config.includeDirs, ...system]) {
    if (existsSync(join(dir, 'gloo/algorithm.h'))) return dir;
  }
  return null;
}

function ensureGloo(config) {
  let dir = findGloo(config);
  const hasC10d = config.includeDirs.some((d) => existsSync(join(d, 'torch/csrc/distributed/c10d/ProcessGroupGloo.hpp')));
  if (!dir && hasC10d && config.source === 'system' && aptInstall(['libgloo-dev'], "Gloo's headers, for c10d's process group (workers)")) dir = findGloo(config);
  if (!dir) {
    log(hasC10d && config.source !== 'system'
      ? `warning: ${config.source} ships no Gloo headers (include/gloo); the addon is built without workers (--nproc)`
      : hasC10d
      ? "warning: Gloo's headers were not found (Debian/Ubuntu: `sudo apt-get install libgloo-dev`); the addon is built without workers (--nproc)"
      : 'warning: this libtorch has no c10d headers; the addon is built without workers (--nproc)');
    return { ...config, gloo: false };
  }
  return { ...config, gloo: true, glooInclude: dir };
}

function ensureNative() {
  const config = ensureGloo(ensureLibtorch());
  const configPath = join(root, 'native/libtorch.json');
  const configText = JSON.stringify(config, null, 2) + '\n';
  const previous = existsSync(configPath) ? readFileSync(configPath, 'utf8') : '';
  if (previous !== configText) writeFileSync(configPath, configText);
  const addon = join(root, 'build/Release/simclr_native.node');
  const sources = [join(root, 'native'), join(root, 'binding.gyp')];
  if (existsSync(addon) && statSync(addon).mtimeMs >= newestMtime(sources)) return config;
  log(`building the native addon against libtorch ${config.version} (${config.cuda ? 'CUDA' : 'CPU'}, ${config.source}); this takes a few minutes`);
  const [cmd, ...pre] = nodeGypCommand();
  const gypArgs = [...pre, 'rebuild', '--release', `--jobs=${Math.max(1, cpuCount())}`];
  // Build against this Node's own headers when the system has them, so nothing is downloaded.
  if (!process.env.npm_config_nodedir && existsSync('/usr/include/node/node_api.h')) gypArgs.push('--nodedir=/usr');
  try {
    run(cmd, gypArgs);
  } catch {
    fail('building the native addon failed (see the compiler output above).');
  }
  return config;
}

function cpuCount() {
  try {
    return Number(execFileSync('nproc', { encoding: 'utf8' }).trim()) || 1;
  } catch {
    return 1;
  }
}

// ---------------------------------------------------------------- BLAS
// Debian's libtorch calls the system BLAS; the reference one runs a 2048^2 float32 product
// at ~4 GFLOP/s. OpenBLAS (OpenMP build, so it shares libtorch's threads) registers itself
// as the system BLAS with a higher priority; the addon then picks its kernel family.
function ensureFastBlas() {
  const system = '/usr/lib/x86_64-linux-gnu/libblas.so.3';
  if (!existsSync(system)) return;
  let real = system;
  try {
    real = realpathSync(system);
  } catch {
    return;
  }
  if (real.includes('openblas') || real.includes('mkl') || real.includes('blis')) return;
  if (!aptInstall(['libopenblas0-openmp'], `the system BLAS is the reference one (${real})`)) {
    log(`warning: the system BLAS (${real}) is the slow reference implementation; install libopenblas0-openmp for fast matrix products`);
  }
}

// ---------------------------------------------------------------- TypeScript and data
function ensureNodeModules() {
  const tsc = join(root, 'node_modules/typescript/bin/tsc');
  const addonApi = join(root, 'node_modules/node-addon-api');
  const sharp = join(root, 'node_modules/sharp');
  // export/serve and their tests: ONNX protobuf, onnxruntime (Node for the tests, web for the page), multipart, the browser driver;
  // the report: the chart libraries it inlines (Vega, Vega-Lite, vega-embed) and UMAP for its embedding map.
  const more = ['csv-parse', 'csv-stringify', 'yauzl', 'onnx-proto', 'onnxruntime-web', 'busboy', 'onnxruntime-node', 'puppeteer-core', 'vega', 'vega-lite', 'vega-embed', 'umap-js'].map((p) => join(root, 'node_modules', p));
  if (existsSync(tsc) && existsSync(addonApi) && existsSync(sharp) && more.every((p) => existsSync(p))) return;
  log('installing npm dependencies');
  // onnxruntime-node ships its CPU binaries in the npm package; its install script would only
  // fetch optional CUDA files from outside the registry, so scripts stay off (and it is told to skip).
  run(process.platform === 'win32' ? 'npm.cmd' : 'npm', ['install', '--ignore-scripts', '--no-audit', '--no-fund'], { env: { ...process.env, ONNXRUNTIME_NODE_INSTALL: 'skip' } });
}

function ensureTypeScriptBuild() {
  const out = join(root, 'dist/.build-stamp');
  const inputs = ['src', 'test', 'bench', 'tsconfig.json'].map((p) => join(root, p));
  if (existsSync(out) && statSync(out).mtimeMs >= newestMtime(inputs)) return;
  log('compiling TypeScript');
  try {
    run(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', join(root, 'tsconfig.json')]);
  } catch {
    fail('TypeScript compilation failed (see above).');
  }
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, new Date().toISOString() + '\n');
}

// The interpreter the tests run the reference with (test/helpers.ts): Debian's, where apt installs.
const PYTHON = process.env.SIMCLR_PYTHON ?? '/usr/bin/python3';

function pythonHasTorch() {
  try {
    execFileSync(PYTHON, ['-c', 'import torch, torchvision'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

function ensurePythonReference() {
  if (pythonHasTorch()) return;
  const ok = aptInstall(['python3-torch', 'python3-torchvision'], 'the PyTorch reference the tests compare against');
  if (!ok || !pythonHasTorch()) {
    fail(`the tests compare against PyTorch, and \`${PYTHON} -c "import torch, torchvision"\` fails. Install them ` +
      '(Debian/Ubuntu: `sudo apt-get install python3-torch python3-torchvision`; elsewhere: `pip install torch torchvision` and set SIMCLR_PYTHON to that python), then run `npm test` again.');
  }
}

// The web page's and the report's tests open them in headless Chromium (driven by puppeteer-core).
const CHROMIUM = process.env.SIMCLR_CHROMIUM ?? '/usr/bin/chromium';

function ensureChromium() {
  if (existsSync(CHROMIUM)) return;
  const ok = aptInstall(['chromium'], 'the tests open the exported web page in headless Chromium');
  if (!ok || !existsSync(CHROMIUM)) {
    fail(`the tests open pages in headless Chromium, and ${CHROMIUM} is missing. Install it (Debian/Ubuntu: \`sudo apt-get install chromium\`), ` +
      'or set SIMCLR_CHROMIUM to a Chromium or Chrome executable, then run `npm test` again.');
  }
}

// The two-node tests (test/netns.test.ts) make network namespaces and a veth pair with `ip`.
function hasIp() {
  try {
    execFileSync('ip', ['-V'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

function ensureIproute() {
  if (hasIp()) return;
  const ok = aptInstall(['iproute2'], 'the two-node tests make network namespaces with ip');
  if (!ok || !hasIp()) {
    fail('the tests run two nodes in network namespaces, and `ip` (iproute2) is missing. Install it (Debian/Ubuntu: `sudo apt-get install iproute2`), then run `npm test` again.');
  }
}

const FASHION_MNIST = '/usr/share/datasets/fashion-mnist';

function ensureFashionMnist(why) {
  const present = () => ['train-images-idx3-ubyte', 't10k-images-idx3-ubyte'].every((f) => existsSync(join(FASHION_MNIST, f)) || existsSync(join(FASHION_MNIST, `${f}.gz`)));
  if (present()) return;
  const ok = aptInstall(['dataset-fashion-mnist'], why);
  if (!ok || !present()) {
    fail(`${why} read Fashion-MNIST from ${FASHION_MNIST}, which is missing. Install it (Debian/Ubuntu: \`sudo apt-get install dataset-fashion-mnist\`), ` +
      'or run the demo on your own copy with `simclr pipeline --data fashion-mnist:DIR`.');
  }
}

// Only Debian's libtorch calls the system BLAS; PyTorch's own builds bring theirs (and a
// GPU machine may have no package registry to ask).
if (nativeOnly) {
  if (ensureNative().source === 'system') ensureFastBlas();
} else {
  ensureNodeModules();
  const native = ensureNative();
  if (native.source === 'system') ensureFastBlas();
  if (purpose === 'test') {
    // The suite runs workers (test/workers.test.ts and others): no test is skipped for want of Gloo.
    if (!native.gloo) {
      fail('the tests run data-parallel workers, and this addon was built without Gloo (see the warning above). ' +
        'Install Gloo\'s headers (Debian/Ubuntu: `sudo apt-get install libgloo-dev`) or point LIBTORCH at a libtorch that ships them, then run `npm test` again.');
    }
    ensurePythonReference();
    ensureChromium();
    ensureIproute();
    ensureFashionMnist('the tests');
  }
  if (purpose === 'demo') ensureFashionMnist('the demo');
  ensureTypeScriptBuild();
}
