#!/usr/bin/env bash
# The GPU check: builds the addon against a CUDA libtorch in a copy of this checkout (the
# CPU build here stays as it is), shows what libtorch sees, runs a short pretraining with
# --device cuda on one GPU and on all of them (--nproc = the GPUs), and prints images/s
# beside the same step in PyTorch on one GPU (bench/py/simclr_step.py, tuned, float32).
#
#   LIBTORCH=$(python3 -c 'import torch,os;print(os.path.dirname(torch.__file__))') scripts/gpu-check.sh
#
# Environment (all optional):
#   LIBTORCH  a CUDA libtorch: the torch folder of a CUDA PyTorch install, or an unzipped
#             CUDA libtorch (default: the torch folder of $PYTHON's PyTorch)
#   PYTHON    the Python with that PyTorch, 2.0 or later (default python3)
#   CIFAR     CIFAR-10 as an image folder or cifar10-bin:DIR (default ../shared/datasets/cifar10/train)
#   STEPS     steps per run (default 20), BATCH images per step and GPU (default 256)
# Where it cannot run (no NVIDIA driver, a CPU-only libtorch, PyTorch without CUDA, no
# CIFAR-10) it says every reason at once and exits 1; each later step that fails says which.
# On a machine without Node.js (the device machines lent to some sessions), run it through
# scripts/gpu-remote.sh with the bundle that scripts/gpu-bundle.mjs makes.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-python3}
CIFAR=${CIFAR:-$ROOT/../shared/datasets/cifar10/train}
STEPS=${STEPS:-20}
BATCH=${BATCH:-256}
TORCH_DIR="python3 -c 'import torch,os;print(os.path.dirname(torch.__file__))'"
say() { printf 'gpu-check: %s\n' "$*" >&2; }

# ---------------------------------------------------------------- can it run here?
problems=()
GPUS=0
if ! command -v nvidia-smi >/dev/null 2>&1; then
  problems+=("no NVIDIA driver on this machine (nvidia-smi not found): run this on a machine with NVIDIA GPUs")
else
  GPUS=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU ' || true)
  [ "$GPUS" -gt 0 ] || problems+=("nvidia-smi lists no GPU (nvidia-smi -L; CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES-unset})")
fi
if [ -z "${LIBTORCH:-}" ]; then
  LIBTORCH=$("$PYTHON" -c 'import torch,os;print(os.path.dirname(torch.__file__))' 2>/dev/null || true)
fi
if [ -z "$LIBTORCH" ]; then
  problems+=("LIBTORCH is not set and $PYTHON has no PyTorch: set LIBTORCH to the torch folder of a CUDA PyTorch install ($TORCH_DIR) or to an unzipped CUDA libtorch")
elif [ ! -e "$LIBTORCH/lib/libtorch_cuda.so" ]; then
  problems+=("LIBTORCH=$LIBTORCH has no lib/libtorch_cuda.so, so it is a CPU-only libtorch (Debian's is): point LIBTORCH at the torch folder of a CUDA PyTorch install ($TORCH_DIR) or at an unzipped CUDA libtorch")
fi
if ! "$PYTHON" -c 'import sys, torch; sys.exit(0 if hasattr(torch, "set_default_device") and torch.cuda.is_available() else 1)' >/dev/null 2>&1; then
  problems+=("$PYTHON has no PyTorch 2.0 or later that reaches a GPU (torch.cuda.is_available()): the PyTorch peer needs one (PYTHON=...)")
fi
case "$CIFAR" in
  cifar10-bin:*) [ -d "${CIFAR#cifar10-bin:}" ] || problems+=("CIFAR=$CIFAR: no such folder") ;;
  *) [ -d "$CIFAR" ] || problems+=("CIFAR=$CIFAR: no such folder (CIFAR-10 as an image folder, or cifar10-bin:DIR)") ;;
esac
if [ ${#problems[@]} -gt 0 ]; then
  say "cannot run here:"
  for p in "${problems[@]}"; do say "  - $p"; done
  exit 1
fi
[ -f "$ROOT/dist/src/cli/main.js" ] || { say "no dist/: run npx tsc first"; exit 1; }

# ---------------------------------------------------------------- the addon, built in a copy
WORK=$(mktemp -d "${TMPDIR:-/tmp}/simclr-gpu-check.XXXXXX")
say "building the addon against $LIBTORCH in $WORK"
cp -r "$ROOT/native" "$ROOT/scripts" "$ROOT/dist" "$ROOT/binding.gyp" "$ROOT/package.json" "$WORK/"
ln -s "$ROOT/node_modules" "$WORK/node_modules"
(cd "$WORK" && LIBTORCH="$LIBTORCH" node scripts/setup.mjs --native) || { say "building the addon against $LIBTORCH failed (above)"; exit 1; }
SIMCLR=(node "$WORK/dist/src/cli/main.js")
"${SIMCLR[@]}" info || { say "simclr info failed with the CUDA build"; exit 1; }
SEEN=$("${SIMCLR[@]}" info --json | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const i=JSON.parse(s);console.log(i.cudaBuild&&i.cudaAvailable?i.cudaDeviceCount:0)})')
[ "$SEEN" -gt 0 ] || { say "the CUDA build sees no GPU (simclr info above), though nvidia-smi lists $GPUS"; exit 1; }
say "libtorch sees $SEEN GPU(s); nvidia-smi lists $GPUS"

# ---------------------------------------------------------------- images/s
# Median images/s of a run's steps after the first three (metrics.jsonl, rank 0's: the global batch).
median_rate() {
  node -e '
    const rows = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").map(JSON.parse).filter((m) => m.images_per_s !== undefined);
    const r = rows.slice(Math.min(3, rows.length - 1)).map((m) => m.images_per_s).sort((a, b) => a - b);
    console.log(r.length ? r[r.length >> 1].toFixed(0) : "?");' "$1/metrics.jsonl"
}

failed=0
ours() { # name nproc
  local out="$WORK/runs/$1" n=$2
  if "${SIMCLR[@]}" pretrain --data "$CIFAR" --out "$out" --epochs 1 --batch $((BATCH * n)) --max-images $((BATCH * n * STEPS)) \
    --precision fp32 --device cuda --nproc "$n" >"$WORK/$1.log" 2>&1; then
    echo "$(median_rate "$out")"
  else
    say "pretraining on $n GPU(s) failed: $(grep -m1 'simclr:' "$WORK/$1.log" || tail -n 3 "$WORK/$1.log")"
    echo "failed"
  fi
}
ONE=$(ours one-gpu 1)
ALL=$(ours all-gpus "$SEEN")

# The classifier stages on one GPU, from the one-GPU run: fine-tuning on 10% of the labels,
# then distillation; each evaluates on the test images. Their test top-1 from results.json.
stage_top1() { # stage
  node -e 'const r=JSON.parse(require("fs").readFileSync(process.argv[1],"utf8")).results.find((x)=>x.stage===process.argv[2]);console.log(r?r.top1.toFixed(2):"?")' "$WORK/runs/one-gpu/results.json" "$1"
}
FT=failed
DI=failed
if [ "$ONE" != failed ]; then
  if "${SIMCLR[@]}" finetune --from "$WORK/runs/one-gpu" --labels 10% --epochs 2 --batch 128 --device cuda >"$WORK/finetune.log" 2>&1; then
    FT=$(stage_top1 finetune-10pct)
    if "${SIMCLR[@]}" distill --teacher "$WORK/runs/one-gpu" --labels 10% --epochs 1 --batch 128 --device cuda >"$WORK/distill.log" 2>&1; then
      DI=$(stage_top1 distill-10pct)
    else
      say "distillation on 1 GPU failed: $(grep -m1 'simclr:' "$WORK/distill.log" || tail -n 3 "$WORK/distill.log")"
    fi
  else
    say "fine-tuning on 1 GPU failed: $(grep -m1 'simclr:' "$WORK/finetune.log" || tail -n 3 "$WORK/finetune.log")"
  fi
fi

PEER=$("$PYTHON" - "$ROOT/bench/py" "$BATCH" "$STEPS" <<'PY'
import sys, time, torch
sys.path.insert(0, sys.argv[1])
batch, steps = int(sys.argv[2]), int(sys.argv[3])
torch.set_default_device("cuda:0")  # before the import: its constants land on the GPU too
import simclr_step
images = torch.randint(0, 256, (batch, 3, 32, 32), dtype=torch.uint8)
step = simclr_step.PretrainStep(images, threads=1, tuned=True, precision="fp32", channels_last=True)
step.run(3)
torch.cuda.synchronize()
t0 = time.perf_counter()
step.run(steps)
torch.cuda.synchronize()
print(f"{batch * steps / (time.perf_counter() - t0):.0f}")
PY
) || { say "the PyTorch peer failed (above)"; PEER=failed; }

printf '\n%-44s %s\n' "ResNet-18 pretraining step, batch $BATCH per GPU, fp32" "images/s"
printf '%-44s %s\n' "simclr-ts, 1 GPU (--device cuda)" "$ONE"
printf '%-44s %s\n' "simclr-ts, $SEEN GPU(s) (--nproc $SEEN)" "$ALL"
printf '%-44s %s\n' "PyTorch, 1 GPU (bench/py/simclr_step.py)" "$PEER"
printf '%-44s %s\n' "fine-tuned on 10%, 2 epochs: test top-1" "$FT"
printf '%-44s %s\n' "distilled, 1 epoch: test top-1" "$DI"
printf '(logs and runs in %s)\n' "$WORK"
for r in "$ONE" "$ALL" "$PEER" "$FT" "$DI"; do [ "$r" = failed ] && failed=1; done
exit $failed
