#!/usr/bin/env bash
# Runs trine's CUDA backend on a CPU emulation of CUDA, for machines without a GPU: the .cu
# files are rewritten into C++ (transform.py), compiled against fake cuda_runtime.h/cublas_v2.h
# (include/), and the CPU-vs-CUDA parity tests run against them. Each block's threads run as
# fibers, with __syncthreads and warp shuffles/ballots as barriers (a barrier some threads never
# reach aborts with "deadlock"); cuBLAS is plain loops.
#
# What this checks: index arithmetic, bounds, reductions, tie-breaking, warp/block collectives,
# every output written, host-side launch logic. What it cannot: real GPU memory (device memory
# is host memory here), memory-model races, performance, nvcc-specific code generation.
#
#   scripts/cuda_emu/run.sh [gtest args...]      e.g. --gtest_filter=CudaParity.Mine*
#   scripts/cuda_emu/run.sh --programs           the trine program's --device cuda paths instead
#
# Device memory is guarded: host code may touch it only inside a kernel, a copy, a memset or a
# cuBLAS call, as on a GPU; a host read of a CUDA tensor's data stops the program with the address
# and the call stack (emu.cpp). `--programs` runs what the GPU check runs and more, small enough
# for the emulation (about 7 min): bench mining; mnist (train, checkpoint, evaluate, report),
# --resume of that run, and bench w1 (FP32, then TF32 convolutions), on 256 MNIST images; pairs,
# faces and embed --images (TF32 convolutions) on 12 LFW identities at 16x16. MNIST and LFW come
# from ../shared/data (a part without them is skipped).
#
# TRINE_EMU_PROFILE=N (with any emulated program) prints at exit how many kernel launches, cuBLAS
# calls, copies, memsets, stream syncs and cudaMallocs it made, by the N innermost trine functions
# that made them (3 is a good start); two runs that differ only in --steps give the counts per
# training step (docs/cuda.md).
#
# Without arguments it runs every test but CudaParity.MiningOnALargeBatch (B = 4096 and 4500: it
# ran over 25 minutes here without finishing); give it as the filter to run it alone.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${TRINE_EMU_BUILD:-$here/../../build-emu}
cmake -S "$here" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j"$(nproc)"
if [[ ${1:-} == --programs ]]; then
  trine=$build/trine
  data=$here/../../../shared/data
  work=$(mktemp -d "${TMPDIR:-/tmp}/trine-emu-programs.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  status=0
  run() {  # run NAME ARGS...: `trine ARGS` on emulated CUDA; its output in $work/NAME.log
    local name=$1 t0=$SECONDS rc=0
    shift
    echo "cuda_emu: $name: trine $*" >&2
    "$trine" "$@" >"$work/$name.log" 2>&1 || rc=$?
    if ((rc == 0)); then
      echo "cuda_emu: $name passed ($((SECONDS - t0)) s)" >&2
    else
      echo "cuda_emu: $name FAILED (exit $rc):" >&2
      tail -n 25 "$work/$name.log" >&2
      status=1
    fi
  }
  run mining bench mining --device cuda --batch 96 --dim 16 --per-class 8 --repeats 1
  if [[ -e $data/mnist/train-images-idx3-ubyte.gz ]]; then
    small=(--data "$data/mnist" --limit 256 --test-limit 100 --eval-batch 100 --no-train-gallery
      --threads 2)
    run mnist mnist --device cuda "${small[@]}" --epochs 1 --out "$work/mnist"
    run mnist-resume mnist --device cuda "${small[@]}" --epochs 2 --resume "$work/mnist"
    run bench-w1 bench w1 --device cuda "${small[@]}" --steps 2
    if ! grep -qE "^train_device_wait_share [01]\.[0-9]{3}$" "$work/bench-w1.log"; then
      echo "cuda_emu: bench-w1 does not report train_device_wait_share (a fraction)" >&2
      status=1
    fi
    # A step waits for the device twice: the checks before the update, and its end.
    if ! grep -qx "train_device_waits_per_step 2.00" "$work/bench-w1.log"; then
      echo "cuda_emu: bench-w1: not 2 device waits per step:" \
        "$(grep train_device_waits_per_step "$work/bench-w1.log" || echo "none reported")" >&2
      status=1
    fi
    # TF32 convolutions (the emulated cuBLAS rounds their inputs to TF32)
    run bench-w1-tf32 bench w1 --device cuda "${small[@]}" --steps 2 --conv-math tf32
    if ! grep -qx "conv_math tf32" "$work/bench-w1-tf32.log"; then
      echo "cuda_emu: bench-w1-tf32 does not report conv_math tf32" >&2
      status=1
    fi
  else
    echo "cuda_emu: no MNIST at $data/mnist: skipping mnist and bench w1" >&2
  fi
  if [[ -d $data/faces/lfw ]]; then
    mkdir -p "$work/lfw"
    n=0
    for id in "$data"/faces/lfw/*/; do
      files=("$id"*.jpg)
      if ((${#files[@]} >= 5 && n < 12)); then
        ln -s "${id%/}" "$work/lfw/$(basename "$id")"
        n=$((n + 1))
      fi
    done
    run pairs pairs --images "$work/lfw" --folds 2 --pairs-per-fold 10 --out "$work/pairs.txt"
    run faces faces --device cuda --images "$work/lfw" --pairs "$work/pairs.txt" --size 16 \
      --p 4 --k 4 --steps 2 --eval-batch 64 --threads 2 --out "$work/faces"
    run embed embed --device cuda --model "$work/faces" --images "$work/lfw" --batch 64 \
      --conv-math tf32 --out "$work/faces.npy"
  else
    echo "cuda_emu: no LFW at $data/faces/lfw: skipping pairs, faces and embed" >&2
  fi
  exit $status
fi
if [ $# -eq 0 ]; then
  echo "cuda_emu: skipping CudaParity.MiningOnALargeBatch (over 25 min emulated; run it with" \
    "--gtest_filter=CudaParity.MiningOnALargeBatch)" >&2
  set -- --gtest_filter=-CudaParity.MiningOnALargeBatch
fi
status=0
for t in test_cuda_parity test_cuda_ops test_cuda_training; do
  "$build/$t" "$@" || status=1
done
exit $status
