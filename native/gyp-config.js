// Feeds binding.gyp from native/libtorch.json, which scripts/setup.mjs writes.
const { readFileSync } = require('node:fs');
const { join } = require('node:path');
const config = JSON.parse(readFileSync(join(__dirname, 'libtorch.json'), 'utf8'));
const what = process.argv[2];
const quote = (s) => JSON.stringify(s);
if (what === 'include_dirs') {
  console.log([...config.includeDirs, ...(config.glooInclude ? [config.glooInclude] : [])].map(quote).join(' '));
} else if (what === 'libraries') {
  const rpath = `-Wl,-rpath,${config.libDir}`;
  // --no-as-needed keeps libtorch_cuda linked: nothing references it by symbol, but
  // loading it registers the CUDA backend.
  const libs = config.libs.map((l) => `-l${l}`);
  // Gloo's own all-reduce (native/dist.cc directSum): the libgloo this libtorch links.
  const gloo = config.gloo ? ['-lgloo'] : [];
  console.log([`-L${config.libDir}`, rpath, '-Wl,--no-as-needed', ...libs, '-Wl,--as-needed', ...gloo].map(quote).join(' '));
} else if (what === 'std') {
  // PyTorch's headers need C++20 from 2.13 on (RELEASE.md's compatibility matrix); C++17 before.
  const [major, minor] = config.version.split('.').map(Number);
  console.log(major > 2 || (major === 2 && minor >= 13) ? '-std=c++20' : '-std=c++17');
} else if (what === 'defines') {
  const info = JSON.stringify({ version: config.version, cuda: config.cuda, source: config.source, gloo: Boolean(config.gloo) });
  console.log(
    [
      `_GLIBCXX_USE_CXX11_ABI=${config.cxx11Abi ? 1 : 0}`,
      `SIMCLR_LIBTORCH_INFO=x${Buffer.from(info).toString('hex')}`,
      // c10d's Gloo process group: needs Gloo's own headers (libgloo-dev) beside libtorch's.
      ...(config.gloo ? ['SIMCLR_WITH_GLOO=1'] : []),
    ].map(quote).join(' '),
  );
}
