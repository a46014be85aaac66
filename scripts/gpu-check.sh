#!/usr/bin/env bash
# gpu-check.sh: prepares one self-contained GPU check of trine's CUDA backend, for a bare GPU
# machine (NVIDIA driver, CUDA 13, CMake and PyTorch 2.x; possibly no OpenBLAS, zlib headers or
# GoogleTest). Run here, on the build machine:
#
#   scripts/gpu-check.sh            # builds build-gpu/ (Release, TRINE_CUDA=ON), packs build-gpu/pack
#
# build-gpu/pack/ then holds everything the check needs (~55 MB): the CUDA test binaries, the
# `trine` program, libtrine.so and its CUDA module libtrine_cuda.so, the shared libraries that
# may be missing there (OpenBLAS, gzipped, with libgfortran/libquadmath; libcudart; zlib;
# libstdc++ as a fallback), MNIST's four .gz files, LFW resized to 64x64 (data/faces64.tar.gz,
# ~20 MB, by scripts/gpu/faces_pack.py: the 112x112 crops are 112 MB, too big to carry), the
# PyTorch peers torch_mnist.py and torch_lfw.py with scripts/gpu/torch_lfw_device.py (the W2 peer
# on a GPU), and run.sh, which runs the whole check in under 8 minutes and prints `name value`
# lines (to run.log in $OUT when set, else in pack/out/, beside logs.tar.gz: each step's log):
#   nvidia-smi; test_cuda_parity; test_cuda_ops; test_cuda_training; then, each with --device
#   cuda: trine bench mining (B=1800, D=128); trine bench w1 (MNIST, 1 epoch; then again with
#   --conv-math tf32, the peers' precision) and the peer torch_mnist.py; trine bench w2 (the
#   64x64 LFW, 3 epochs; again with --conv-math tf32) and the peer torch_lfw_device.py; last,
#   with the time left, compute-sanitizer's memcheck and racecheck on the parity tests, then
#   short W1 and W2 runs under Nsight Systems (nsys), where it is installed.
#
# With the device tool (the pack is an ignored path, so carry it; it travels with the tree):
#   run(command="bash build-gpu/pack/run.sh", carry=["build-gpu/pack"], timeout_s=540)
# The files run.sh leaves under $OUT come back: run.log and logs.tar.gz (the gtest XML and logs,
# each command's output; packed, since the tool brings back at most 8 files).
# cuBLAS is not packed (libcublasLt alone is ~540 MB): run.sh looks for libcublas.so.13 in the
# machine's CUDA 13 install (/usr/local/cuda*, ldconfig, pip nvidia-* wheels).
#
# Environment: TRINE_GPU_ARCHS overrides CMAKE_CUDA_ARCHITECTURES (default: trine's
# "90-real;90-virtual"); JOBS the build parallelism.
set -euo pipefail

# shellcheck source=scripts/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
# What the build needs, and Pillow for W2's 64x64 images (scripts/gpu/faces_pack.py).
ensure_packages "${TRINE_BUILD_PACKAGES[@]}" python3-pil

root=$TRINE_ROOT  # common.sh has moved to it
build=$root/build-gpu
pack=$build/pack
jobs=${JOBS:-$(nproc)}
shared=$root/../shared

cd "$root"
cmake_args=(-S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DTRINE_CUDA=ON -DTRINE_BUILD_TESTS=ON)
if [[ -n "${TRINE_GPU_ARCHS:-}" ]]; then cmake_args+=("-DCMAKE_CUDA_ARCHITECTURES=$TRINE_GPU_ARCHS"); fi
echo "gpu-check: configuring $build" >&2
cmake "${cmake_args[@]}" >/dev/null
echo "gpu-check: building libtrine and the CUDA tests (nvcc is slow: minutes)" >&2
cmake --build "$build" -j"$jobs" --target trine trine_cuda test_cuda_parity test_cuda_ops \
  test_cuda_training
have_cli=1
if ! cmake --build "$build" -j"$jobs" --target trine_cli; then
  echo "gpu-check: warning: the trine program did not build; the pack runs the tests only" >&2
  have_cli=0
fi

echo "gpu-check: packing $pack" >&2
rm -rf "$pack"
mkdir -p "$pack/bin" "$pack/lib" "$pack/compat" "$pack/data/mnist"
cp "$build/test_cuda_parity" "$build/test_cuda_ops" "$build/test_cuda_training" "$pack/bin/"
if [[ $have_cli == 1 && -x "$build/trine" ]]; then cp "$build/trine" "$pack/bin/"; fi
cp -L "$build/libtrine.so.0" "$pack/lib/libtrine.so.0"
# libtrine opens its CUDA module from its own folder when CUDA is first asked for.
cp "$build/libtrine_cuda.so" "$pack/lib/"
strip --strip-unneeded "$pack"/bin/* "$pack/lib/libtrine.so.0" "$pack/lib/libtrine_cuda.so" \
  2>/dev/null || true

# A library's resolved path, from ldd.
lib_path() { ldd "$1" | awk -v n="$2" '$1 == n { print $3 }'; }
cudart=$(lib_path "$build/libtrine_cuda.so" libcudart.so.13)
[[ -n "$cudart" ]] && cp -L "$cudart" "$pack/lib/"
zlib=$(lib_path "$build/libtrine.so.0" libz.so.1)
[[ -n "$zlib" ]] && cp -L "$zlib" "$pack/lib/"
# OpenBLAS (trine dlopens it; TRINE_OPENBLAS points there) and what it needs besides libc.
openblas=$(grep -m1 '^BLAS_openblas_LIBRARY:FILEPATH=' "$build/CMakeCache.txt" | cut -d= -f2)
[[ -z "$openblas" ]] && openblas=$(ldconfig -p | awk '$1 == "libopenblas.so.0" { print $NF; exit }')
openblas=$(realpath "$openblas")
gzip -9 -c "$openblas" >"$pack/lib/libopenblas.so.0.gz"
for dep in $(ldd "$openblas" | awk '$3 ~ /^\// { print $3 }'); do
  case $(basename "$dep") in
    libc.so.* | libm.so.* | libpthread.so.* | libdl.so.* | librt.so.* | ld-linux*) ;;
    libgcc_s.so.*) cp -L "$dep" "$pack/compat/" ;;
    *) cp -L "$dep" "$pack/lib/" ;;
  esac
done
# libstdc++ only as a fallback (run.sh adds compat/ when the machine's is too old).
cp -L "$(lib_path "$build/libtrine.so.0" libstdc++.so.6)" "$pack/compat/"
[[ -e "$pack/compat/libgcc_s.so.1" ]] || cp -L "$(lib_path "$build/libtrine.so.0" libgcc_s.so.1)" "$pack/compat/"

cp "$shared/peers/torch_mnist.py" "$shared/peers/torch_lfw.py" "$root/scripts/gpu/torch_lfw_device.py" \
  "$pack/"
cp "$shared"/data/mnist/*.gz "$pack/data/mnist/"
# W2's data: LFW resized to 64x64 here (W2's own first step), as JPEG, since the 112x112 crops do
# not fit in what the device tool carries. Without Pillow or LFW, run.sh says W2 was skipped.
if [[ ! -d "$shared/data/faces/lfw" ]]; then
  echo "gpu-check: warning: no LFW at $shared/data/faces/lfw; the pack skips W2" >&2
elif ! /usr/bin/python3 -c 'import PIL' 2>/dev/null; then
  echo "gpu-check: warning: /usr/bin/python3 has no Pillow (Debian: python3-pil); the pack skips W2" >&2
else
  /usr/bin/python3 "$root/scripts/gpu/faces_pack.py" "$shared/data/faces" "$pack/data/faces64.tar.gz"
fi
{
  echo "commit $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$root" diff --quiet 2>/dev/null || echo -dirty)"
  echo "built $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "cuda_code $(grep -o 'code=\[[a-z_0-9]*\]' "$build/CMakeFiles/trine_cuda.dir/flags.make" | sort -u | tr -d '[]' | sed 's/code=//' | paste -sd, -)"
  echo "nvcc $(grep -m1 CMAKE_CUDA_COMPILER_VERSION "$build"/CMakeFiles/*/CMakeCUDACompiler.cmake 2>/dev/null | grep -o '[0-9.]*' | head -1)"
} >"$pack/MANIFEST"

cat >"$pack/run.sh" <<'RUN'
#!/usr/bin/env bash
# One GPU check of trine's CUDA backend (made by scripts/gpu-check.sh). Prints `name value`
# lines; every step has a time limit and the whole run stays under 8 minutes.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${OUT:-$here/out}
mkdir -p "$out"
# Each step's log and gtest XML, packed into $out/logs.tar.gz at exit: the device tool brings
# back at most 8 files from $OUT (run.log, the summary, is written there as the run goes).
logs=$(mktemp -d "${TMPDIR:-/tmp}/trine-gpu-logs.XXXXXX")
trap 'tar -czf "$out/logs.tar.gz" -C "$logs" . 2>/dev/null; rm -rf "$logs"' EXIT
orig_ld=${LD_LIBRARY_PATH:-}
start=$(date +%s)
deadline=$((start + 470))
exec > >(tee -a "$out/run.log") 2>&1

say() { echo "$*"; }
trim() { echo "$1" | sed 's/^ *//; s/ *$//; s/ /_/g'; }  # a value without spaces
left() { echo $((deadline - $(date +%s))); }
# step NAME BUDGET_S CMD...: runs CMD with the smaller of BUDGET_S and the time left; output to
# $logs/NAME.log; prints NAME_status and NAME_seconds.
step() {
  local name=$1 budget=$2
  shift 2
  local t t0 t1 rc
  t=$(left)
  ((t > budget)) && t=$budget
  if ((t < 5)); then
    say "${name}_status skipped_no_time_left"
    return 0
  fi
  t0=$(date +%s.%N)
  timeout -k 5 "$t" "$@" >"$logs/$name.log" 2>&1
  rc=$?
  t1=$(date +%s.%N)
  say "${name}_seconds $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')"
  case $rc in
    0) say "${name}_status pass" ;;
    124 | 137) say "${name}_status timeout_${t}s" ;;
    *) say "${name}_status fail_rc_$rc" ;;
  esac
  if ((rc != 0)); then say "${name}_error $(tail -n 1 "$logs/$name.log" | cut -c1-300)"; fi
  return $rc
}
# figures NAME: the `name value` lines of step NAME's output, as NAME.name value.
figures() { grep -E '^[A-Za-z0-9_.]+ [^ ]+$' "$logs/$1.log" | sed "s/^/$1./"; }

while read -r k v; do say "pack_$k $v"; done <"$here/MANIFEST"

# ---- libraries: the pack's, OpenBLAS unpacked, the machine's CUDA 13 (cuBLAS is not packed)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/trine-gpu-check.XXXXXX")
gzip -dc "$here/lib/libopenblas.so.0.gz" >"$tmp/libopenblas.so.0"
export TRINE_OPENBLAS=$tmp/libopenblas.so.0
libpath=$here/lib:$tmp
cublas_dir=""
for d in /usr/local/cuda/lib64 /usr/local/cuda/lib /usr/local/cuda-13*/lib64 \
  /usr/local/cuda/targets/*/lib /usr/lib/x86_64-linux-gnu; do
  if [[ -e "$d/libcublas.so.13" ]]; then cublas_dir=$d; break; fi
done
if [[ -z "$cublas_dir" ]]; then
  cublas_dir=$(ldconfig -p 2>/dev/null | awk '$1 == "libcublas.so.13" { print $NF; exit }' | xargs -r dirname)
fi
if [[ -z "$cublas_dir" ]] && command -v python3 >/dev/null; then
  cublas_dir=$(python3 - <<'PY' 2>/dev/null
import glob, os, site
for base in site.getsitepackages() + [site.getusersitepackages()]:
    for p in glob.glob(os.path.join(base, "nvidia", "**", "libcublas.so.13"), recursive=True):
        print(os.path.dirname(p)); raise SystemExit
PY
)
fi
say "cublas13_dir ${cublas_dir:-not_found}"
[[ -n "$cublas_dir" ]] && libpath=$libpath:$cublas_dir
export LD_LIBRARY_PATH=$libpath${orig_ld:+:$orig_ld}
# The machine's libstdc++ may predate the build machine's (GCC 12): then use the packed one.
if ! "$here/bin/test_cuda_parity" --gtest_list_tests >/dev/null 2>"$logs/probe.log" &&
  grep -q "GLIBCXX\|CXXABI\|GCC_" "$logs/probe.log"; then
  export LD_LIBRARY_PATH=$LD_LIBRARY_PATH:$here/compat
  say "libstdcxx packed"
fi
ldd "$here/bin/test_cuda_parity" "$here/lib/libtrine_cuda.so" | grep "not found" | sort -u |
  sed 's/^[[:space:]]*/missing_library /'

# ---- the GPU
if command -v nvidia-smi >/dev/null; then
  timeout 20 nvidia-smi >"$logs/nvidia-smi.log" 2>&1
  timeout 20 nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap \
    --format=csv,noheader 2>/dev/null | while IFS=, read -r name driver mem cc; do
    say "gpu_name $(trim "$name")"
    say "gpu_driver $(trim "$driver")"
    say "gpu_memory $(trim "$mem")"
    say "gpu_compute_capability $(trim "$cc")"
  done
else
  say "nvidia_smi not_found"
fi

# ---- parity tests (gtest --gtest_brief: failures and the summary only); the module-loading
# test runs the pack's trine program
export TRINE_BINARY_DIR=$here/bin
for t in test_cuda_parity test_cuda_ops test_cuda_training; do
  step "$t" 120 "$here/bin/$t" --gtest_brief=1 --gtest_output="xml:$logs/$t.xml"
  grep -E "^\[  (PASSED|FAILED|SKIPPED) +\]" "$logs/$t.log" | sed "s/^/${t}_summary /"
  # every distinct reason a test was skipped for, with how many tests gave it
  grep -A1 "Skipped$" "$logs/$t.log" | grep -v -e "Skipped$" -e "^--$" | sort | uniq -c |
    sed "s/^ *\([0-9]*\) /${t}_skip_reason \1 tests: /"
  grep -E -A4 "Failure$" "$logs/$t.log" | head -60 | sed "s/^/${t}_failure /"
done

# ---- benchmarks of the trine program, when it has them
trine=$here/bin/trine
if [[ -x "$trine" ]]; then
  say "trine_version $("$trine" --version 2>&1 | tr ' ' _)"
  commands=$("$trine" --help 2>&1 || true)
  # bench NAME BUDGET [flag value]...: `trine bench NAME --device cuda [flags]` as step
  # bench_NAME, or as the step that `as=STEP bench ...` names.
  bench() {
    local name=$1 budget=$2 as=${as:-bench_$1}
    shift 2
    if ! grep -qE "^  bench $name( |$)" <<<"$commands"; then
      say "bench_${name}_status skipped_no_such_subcommand"
      return 0
    fi
    local help
    help=$("$trine" bench "$name" --help 2>&1 || true)
    local args=(--device cuda)
    grep -q -- "--device" <<<"$help" || say "bench_${name}_note no_--device_flag_in_help"
    while (($# >= 2)); do
      if grep -q -- "$1" <<<"$help"; then args+=("$1" "$2"); else say "bench_${name}_note no_$1_flag"; fi
      shift 2
    done
    step "$as" "$budget" "$trine" bench "$name" "${args[@]}"
    figures "$as"
  }
  bench mining 45 --batch 1800 --dim 128
  # --threads 2 on both sides: the CPU threads the peers take by default (they prepare batches).
  bench w1 90 --data "$here/data/mnist" --epochs 1 --threads 2
  # The peers' precision: their convolutions on TF32 tensor cores (torch_tf32 below).
  as=bench_w1_tf32 bench w1 60 --data "$here/data/mnist" --epochs 1 --threads 2 --conv-math tf32
else
  say "trine_program skipped_not_packed"
fi

# ---- the PyTorch peers (their own libraries: the system's LD_LIBRARY_PATH, not the pack's)
torch_version=""
if command -v python3 >/dev/null; then
  torch_version=$(env LD_LIBRARY_PATH="$orig_ld" python3 -c 'import torch; print(torch.__version__)' 2>/dev/null)
fi
say "torch_version ${torch_version:-not_found}"
# The peers' precision: PyTorch lets cuDNN convolutions use TF32 tensor cores by default
# (cudnn.allow_tf32), while trine's GEMMs are full FP32 unless --conv-math tf32 (docs/cuda.md):
# bench_w1_tf32 and bench_w2_tf32 are the like-for-like runs.
if [[ -n "$torch_version" ]]; then
  say "torch_tf32 $(env LD_LIBRARY_PATH="$orig_ld" python3 -c 'import torch; b = torch.backends
print(f"cudnn.allow_tf32={b.cudnn.allow_tf32} matmul.allow_tf32={b.cuda.matmul.allow_tf32}")' 2>/dev/null)"
fi
peer() {  # peer NAME BUDGET SCRIPT [args]...: python3 SCRIPT --device cuda [args] as step NAME
  local name=$1 budget=$2 script=$3
  shift 3
  if [[ -z "$torch_version" ]]; then
    say "${name} skipped_no_pytorch"
    return 0
  fi
  step "$name" "$budget" env LD_LIBRARY_PATH="$orig_ld" python3 "$here/$script" --device cuda "$@"
  figures "$name"
}
peer torch_mnist 90 torch_mnist.py --data "$here/data/mnist" --epochs 1 --threads 2

# ---- W2 on LFW resized to 64x64 on the build machine (scripts/gpu/faces_pack.py): both engines
# read the same files; each one's resize from 64 to 64 is a copy. 3 epochs (192 steps) each.
if [[ -f "$here/data/faces64.tar.gz" ]] && mkdir -p "$tmp/faces64" &&
  tar -xzf "$here/data/faces64.tar.gz" -C "$tmp/faces64"; then
  say "faces64_images $(find "$tmp/faces64/lfw" -name '*.jpg' | wc -l)"
  if [[ -x "$trine" ]]; then
    bench w2 60 --faces "$tmp/faces64" --epochs 3 --threads 2
    as=bench_w2_tf32 bench w2 60 --faces "$tmp/faces64" --epochs 3 --threads 2 --conv-math tf32
  fi
  peer torch_lfw 90 torch_lfw_device.py --peer "$here/torch_lfw.py" --faces "$tmp/faces64" \
    --epochs 3 --threads 2
else
  say "bench_w2_status skipped_no_faces64_in_pack"
fi

# ---- last, with the time left: compute-sanitizer on the parity tests. memcheck (out-of-bounds or
# misaligned device accesses) on all of them but the largest mining batch and the two that start
# programs; racecheck (shared-memory hazards) on the kernels that use shared memory (mining,
# batch norm). Each says `..._summary ERROR SUMMARY: N errors`, or that it ran out of time.
sanitizer=$(command -v compute-sanitizer || ls /usr/local/cuda*/bin/compute-sanitizer \
  /usr/local/cuda*/compute-sanitizer/compute-sanitizer 2>/dev/null | head -1)
if [[ -n "$sanitizer" ]]; then
  sanitize() {  # sanitize TOOL GTEST_FILTER
    step "sanitizer_$1" 90 "$sanitizer" --tool "$1" --error-exitcode 3 \
      "$here/bin/test_cuda_parity" --gtest_brief=1 "--gtest_filter=$2"
    grep -m1 "ERROR SUMMARY" "$logs/sanitizer_$1.log" | sed "s/^=* */sanitizer_$1_summary /"
    grep -E "^\[  (PASSED|FAILED|SKIPPED) +\]" "$logs/sanitizer_$1.log" | sed "s/^/sanitizer_$1_tests /"
    grep -m5 -E "^=+ +(Invalid|Race|Error|Barrier)" "$logs/sanitizer_$1.log" | sed "s/^=* */sanitizer_$1_error /"
  }
  sanitize memcheck '-CudaParity.MiningOnALargeBatch:CudaModule.*:CudaDevice.*'
  sanitize racecheck 'CudaParity.Mine*:CudaParity.Triplet*:CudaParity.BatchNorm*'
else
  say "sanitizer skipped_not_found"
fi

# ---- last, with what time is left: where a GPU step's time goes, when Nsight Systems is there.
# Short runs of W1 and W2 (FP32) under `nsys profile --stats=true`: the kernels' summed GPU time
# and the CUDA API calls' host time (evaluation included). The full tables are in the logs.
nsys=$(command -v nsys || ls /usr/local/cuda*/bin/nsys /opt/nvidia/nsight-systems/*/bin/nsys \
  2>/dev/null | head -1)
if [[ -n "$nsys" && -x "$trine" ]]; then
  profile() {  # profile NAME BENCH [flags]...
    local name=$1 what=$2
    shift 2
    step "$name" 60 "$nsys" profile --stats=true --force-overwrite=true -o "$tmp/$name" \
      "$trine" bench "$what" --device cuda --threads 2 "$@"
    for report in cuda_gpu_kern_sum cuda_api_sum; do
      awk -v r="$report" 'index($0, "(" r ")") { f = 1; n = 0 } f && n < 16 { print; n++ }' \
        "$logs/$name.log" | grep -v '^ *$' | sed "s/^/${name}_$report /"
    done
  }
  profile nsys_w1 w1 --data "$here/data/mnist" --steps 200 --no-train-gallery
  if [[ -d "$tmp/faces64/lfw" ]]; then profile nsys_w2 w2 --faces "$tmp/faces64" --steps 60; fi
else
  say "nsys skipped_not_found"
fi

rm -rf "$tmp"
say "total_seconds $(($(date +%s) - start))"
RUN
chmod +x "$pack/run.sh"

size=$(du -sm "$pack" | cut -f1)
echo "gpu-check: $pack is ${size} MB" >&2
if ((size > 60)); then echo "gpu-check: warning: over 60 MB; the device tool carries 64 MiB" >&2; fi
echo "gpu-check: run it with the device tool:" >&2
echo "  run(command=\"bash build-gpu/pack/run.sh\", carry=[\"build-gpu/pack\"], timeout_s=540)" >&2
