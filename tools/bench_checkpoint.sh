#!/usr/bin/env bash
# bench_checkpoint.sh: what the checksums of every stored dataset (HDF5's Fletcher32 filter,
# io/h5_util.h) cost on the write and the read of the Keras example's checkpoint (default
# config), with and without them, interleaved. Re-measure on an idle machine:
#   tools/bench_checkpoint.sh [BUILD_DIR] [DIR] [ROUNDS]
# (BUILD_DIR default build; DIR, where the files go, default a fresh folder in /tmp: the
# write includes the fsync of that disk.)
set -euo pipefail
build=${1:-build}
dir=${2:-$(mktemp -d /tmp/ddim_bench_checkpoint.XXXXXX)}
rounds=${3:-10}
[[ -x $build/tests/bench_checkpoint ]] || cmake --build "$build" --target bench_checkpoint >/dev/null
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} "$build/tests/bench_checkpoint" "$dir" "$rounds"
