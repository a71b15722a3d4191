#!/usr/bin/env bash
# The GPU check on a machine with CUDA PyTorch but no Node.js (the device machines lent to
# some sessions): unpacks .gpu-bundle (made here by `node scripts/gpu-bundle.mjs`), puts its
# Node.js and npm first on PATH, and runs scripts/gpu-check.sh on its CIFAR-10 images. The
# log goes to $OUT/gpu-check.log (or /tmp). With the device tool:
#   run(command="bash scripts/gpu-remote.sh", carry=[".gpu-bundle", "dist"], timeout_s=540)
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
B=$ROOT/.gpu-bundle
LOG=${OUT:-/tmp}/gpu-check.log
[ -f "$B/node.xz" ] || { echo "gpu-remote: no $B/node.xz: run node scripts/gpu-bundle.mjs first, and carry .gpu-bundle" >&2; exit 1; }
[ -f "$ROOT/dist/src/cli/main.js" ] || { echo "gpu-remote: no dist/: carry it (npx tsc here first)" >&2; exit 1; }
PREFIX=/tmp/simclr-node
mkdir -p "$PREFIX/bin" "$PREFIX/lib/node_modules"
# python3 unpacks: the machine need not have xz.
python3 - "$B" "$PREFIX" <<'PY' || exit 1
import lzma, os, shutil, sys, tarfile
b, prefix = sys.argv[1], sys.argv[2]
with lzma.open(os.path.join(b, 'node.xz')) as src, open(os.path.join(prefix, 'bin', 'node'), 'wb') as dst:
    shutil.copyfileobj(src, dst)
os.chmod(os.path.join(prefix, 'bin', 'node'), 0o755)
with tarfile.open(os.path.join(b, 'npm.tar.xz')) as t:
    t.extractall(os.path.join(prefix, 'lib', 'node_modules'))
PY
export PATH="$PREFIX/bin:$PATH" npm_config_nodedir="$B/nodedir"
[ -e "$ROOT/node_modules" ] || ln -s "$B/node_modules" "$ROOT/node_modules"
{
  echo "== $(date -u +%FT%TZ) node $(node --version), $(nvidia-smi -L 2>&1 | head -4)"
  python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "gpus", torch.cuda.device_count(), "cxx11abi", torch._C._GLIBCXX_USE_CXX11_ABI)' 2>&1
  CIFAR="cifar10-bin:$B/cifar10-bin" STEPS=${STEPS:-20} BATCH=${BATCH:-256} bash "$ROOT/scripts/gpu-check.sh"
  echo "gpu-check exit $?"
} 2>&1 | tee "$LOG"
grep -q '^gpu-check exit 0$' "$LOG"
