#!/usr/bin/env bash
# device_build.sh: run ON THE GPU MACHINE (docs/gpu.md), in the repository root, with the
# folder .bundle (tools/device_bundle.sh, made here) carried along. Configures build-gpu
# with the CUDA backend and without MPI against the bundle's libraries and the Python
# environment's cuDNN / NCCL, builds it, and runs the tests labelled gpu, unit or model.
#
#   tools/device_build.sh            # build + tests
#   tools/device_build.sh smoke      # also a short training run on the CUDA backend
#                                    # (synthetic 32x32 data, one epoch)
#
# Environment: BUILD_DIR (build-gpu), JOBS (16), CTEST_LABELS ('gpu|unit|model'; 'none' runs
# no tests, e.g. on a second call to a machine still warm from the first), CMAKE_ARGS
# (more -D options), CUDNN_ROOT / NCCL_ROOT (default: the pip packages'), NVCC. Where the
# device tool's $OUT is set, ctest's LastTest.log and the smoke run's metrics and last
# sample grid are copied there (they come back); tee this script's output there yourself.
# Exit status: 0 when everything passed; non-zero on a failed step, and when a GPU is visible
# but the gpu test skipped itself (the CUDA backend could not start).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
repo=$(pwd)
bdir=${BUILD_DIR:-build-gpu}
[[ "$bdir" == /* ]] || bdir=$repo/$bdir
out=${OUT:-}

say() { echo "device_build: $*"; }
die() {
    echo "device_build: FAILED: $*" >&2
    exit 1
}

[[ -f .bundle/env.sh ]] || die ".bundle/env.sh missing: run tools/device_bundle.sh here and carry .bundle"
# shellcheck disable=SC1091
source .bundle/env.sh || die "sourcing .bundle/env.sh"

# --- tools: cmake (the Python environment has one), nvcc -----------------------------------
if ! command -v cmake >/dev/null; then
    export PATH=$PATH:/opt/torch/.venv/bin
fi
command -v cmake >/dev/null || die "no cmake on PATH or in /opt/torch/.venv/bin"
nvcc=${NVCC:-}
if [[ -z "$nvcc" ]]; then
    for c in "$(command -v nvcc 2>/dev/null)" /usr/local/cuda/bin/nvcc "${DDIM_PIP_CUDA:-/nonexistent}/bin/nvcc"; do
        [[ -n "$c" && -x "$c" ]] && nvcc=$c && break
    done
fi
[[ -n "$nvcc" ]] || die "no nvcc (PATH, /usr/local/cuda/bin, the pip nvidia/cu13/bin): set NVCC"
cuda_root=$(dirname "$(dirname "$(readlink -f "$nvcc")")")
cmake_extra=()
# cuDNN / NCCL: the pip packages' (env.sh), else CMake looks in the toolkit
for v in CUDNN_ROOT NCCL_ROOT; do
    if [[ -n "${!v:-}" ]]; then
        cmake_extra+=("-D$v=${!v}")
    else
        say "warning: $v not set (no pip package found): CMake looks in the CUDA toolkit only"
    fi
done

say "gpu: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || echo none visible)"
say "nvcc: $nvcc ($("$nvcc" --version | grep -o 'release [0-9.]*'))"
say "cmake: $(command -v cmake) ($(cmake --version | head -1)); cc: $(cc --version 2>/dev/null | head -1)"
say "$(getconf GNU_LIBC_VERSION 2>/dev/null); bundle: $DDIM_BUNDLE_ROOT" \
    "($(ls "$DDIM_BUNDLE_ROOT/lib-missing" | wc -l) of lib-fallback/ used: this machine lacks them)"
say "cuDNN: ${CUDNN_ROOT:-toolkit}; NCCL: ${NCCL_ROOT:-toolkit}"

# FindCUDAToolkit looks for the unversioned libcudart.so / libcublas.so; NVIDIA's pip
# wheels hold only libcudart.so.13 etc. Link names for those go into a shim folder.
if [[ ! -e "$cuda_root/lib64/libcudart.so" && ! -e "$cuda_root/lib/x64/libcudart.so" ]]; then
    shim=$bdir/cuda-link-names
    mkdir -p "$shim"
    for l in cudart cublas cublasLt; do
        for d in "$cuda_root/lib64" "$cuda_root/lib" "${DDIM_PIP_CUDA:-/nonexistent}/lib"; do
            f=$(ls "$d/lib$l.so."[0-9]* 2>/dev/null | sort -V | head -1)
            if [[ -n "$f" ]]; then
                ln -sf "$f" "$shim/lib$l.so"
                break
            fi
        done
    done
    say "CUDA link names: $(ls "$shim" | tr '\n' ' ')in $shim"
    cmake_extra+=(-DCMAKE_LIBRARY_PATH="$shim")
fi

# --- configure, build, test --------------------------------------------------------------
# a build configured against another bundle (its cache holds that bundle's paths) starts over
if [[ -f "$bdir/CMakeCache.txt" ]] && ! grep -qF "$DDIM_BUNDLE_ROOT/" "$bdir/CMakeCache.txt"; then
    say "$bdir was configured against another bundle: reconfiguring from scratch"
    rm -f "$bdir/CMakeCache.txt"
fi
# pkg-config is left out so that every library comes from the bundle, not from a stray
# system copy; MPI is off (the machine has none; one rank).
# shellcheck disable=SC2086
cmake -S . -B "$bdir" -DCMAKE_BUILD_TYPE=Release -DDDIM_CUDA=ON -DDDIM_MPI=OFF \
    -DCMAKE_DISABLE_FIND_PACKAGE_PkgConfig=ON -DCMAKE_CUDA_COMPILER="$nvcc" \
    -DCUDAToolkit_ROOT="$cuda_root" "${cmake_extra[@]}" ${CMAKE_ARGS:-} || die "configure (see above)"
cmake --build "$bdir" -j"${JOBS:-16}" || die "build (see above)"
if ldd "$bdir/ddim-dist" | grep 'not found'; then
    die "ddim-dist has unresolved libraries (above)"
fi
ldd "$bdir/ddim-dist" | grep -E 'hdf5|yaml|png|jpeg|dnnl|cudnn|nccl|cublas|cudart' | sed 's/^\s*/device_build: ldd: /'

# ctest over $labels; 1 when a test failed, or when a gpu test skipped itself although a
# GPU is visible (the CUDA backend did not start)
run_tests() {
    local rc=0 gpu_tests t
    ctest --test-dir "$bdir" -L "$labels" --output-on-failure 2>&1 | tee "$bdir/device_ctest.log"
    ((PIPESTATUS[0] == 0)) || rc=1
    if [[ -n "$out" && -f "$bdir/Testing/Temporary/LastTest.log" ]]; then
        cp "$bdir/Testing/Temporary/LastTest.log" "$out/LastTest.log"
    fi
    gpu_tests=$(ctest --test-dir "$bdir" -N -L gpu | sed -n 's/^ *Test *#[0-9]*: *//p')
    if [[ -z "$gpu_tests" ]]; then
        say "no gpu-labelled test registered: is DDIM_HAVE_CUDA on?"
        rc=1
    fi
    if nvidia-smi -L >/dev/null 2>&1; then
        for t in $gpu_tests; do
            if grep -qE " $t \.*\*\*\*Skipped" "$bdir/device_ctest.log"; then
                say "$t was SKIPPED although a GPU is visible: the CUDA backend did not start"
                rc=1
            fi
        done
    fi
    return $rc
}

status=0
labels=${CTEST_LABELS:-gpu|unit|model}
if [[ "$labels" == none ]]; then
    say "tests skipped (CTEST_LABELS=none)"
else
    run_tests || status=1
fi

# --- smoke: a short training run on the CUDA backend --------------------------------------
if [[ "${1:-}" == smoke ]]; then
    smoke=/tmp/ddim-smoke
    rm -rf "$smoke"
    mkdir -p "$smoke"
    if "$bdir/ddim-prep" --synthetic 512 --size 32 --output "$smoke/synthetic32.h5" &&
        "$bdir/ddim-dist" --config configs/quickstart.yaml --set run.backend=cuda \
            --set data.path="$smoke/synthetic32.h5" --set train.num_epochs=1 --run-dir "$smoke/run"; then
        say "smoke run: $(ls "$smoke/run" | tr '\n' ' ')in $smoke/run"
        if [[ -n "$out" ]]; then
            cp "$smoke/run/metrics.jsonl" "$out/smoke_metrics.jsonl"
            last=$(ls "$smoke"/run/samples/*.png | sort | tail -1)
            cp "$last" "$out/smoke_samples.png"
        fi
    else
        say "smoke training run failed"
        status=1
    fi
fi

if ((status == 0)); then
    say "all passed"
else
    say "FAILED (see above)"
fi
exit $status
