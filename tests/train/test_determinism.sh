#!/usr/bin/env bash
# The same training twice gives the same checkpoint, bit for bit, whatever the thread count
# (label train): two separate ddim-dist processes train a small U-Net (32x32, 3x3
# convolutions on oneDNN's AVX2/AVX-512 kernels, BatchNorm, the whole step) on the same
# synthetic data with the same seed, the first on one OpenMP thread, the second on two (every
# op splitting its work, the reductions included); the weights, EMA weights and Adam moments
# of the two checkpoints must be equal (h5diff, no tolerance), and so must every step's
# losses in metrics.jsonl. A nondeterministic kernel (an atomic add, a reduction ordered by
# thread timing), a result that depends on how the work is split, or a buffer read before
# it is written fails it.
# usage: test_determinism.sh DDIM_DIST DDIM_PREP
set -u
# shellcheck source=tests/test_lib.sh
source "$(dirname "$0")/../test_lib.sh"
dist=$1 prep=$2
command -v h5diff >/dev/null || { echo "SKIP: h5diff (Debian: hdf5-tools) not found"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

run_expect "ddim-prep" 0 "$prep" --synthetic 80 --size 32 --seed 3 --output "$tmp/data.h5"
for r in 1 2; do
    cat >"$tmp/cfg$r.yaml" <<YAML
data: {path: "$tmp/data.h5", dataset_repetitions: 1}
model: {image_size: 32, widths: [16, 32], block_depth: 1, embedding_dims: 16}
train: {num_epochs: 2, batch_size: 16, seed: 5}
eval: {plot_diffusion_steps: 2, plot_rows: 1, plot_cols: 2}
run: {dir: "$tmp/run$r", backend: cpu, progress_seconds: 1000}
YAML
    OMP_NUM_THREADS=$r run_expect "training run $r ($r thread(s))" 0 "$dist" --config "$tmp/cfg$r.yaml"
done
for group in /weights /ema_weights /optimizer; do
    h5diff -q "$tmp/run1/checkpoint.h5" "$tmp/run2/checkpoint.h5" "$group" "$group" \
        >"$tmp/diff" 2>&1 || {
        h5diff -r "$tmp/run1/checkpoint.h5" "$tmp/run2/checkpoint.h5" "$group" "$group" |
            head -20
        fail "the two runs' $group differ"
    }
    ok "$group: identical in both runs (1 and 2 threads)"
done
# the losses of every step (the lines without their timings)
losses() { grep '"type":"step"' "$1" | grep -o '"[a-z_]*loss[a-z_]*":[^,}]*'; }
losses "$tmp/run1/metrics.jsonl" >"$tmp/l1"
losses "$tmp/run2/metrics.jsonl" >"$tmp/l2"
[[ -s $tmp/l1 ]] || fail "no step losses in metrics.jsonl"
cmp -s "$tmp/l1" "$tmp/l2" || fail "the step losses differ: $(diff "$tmp/l1" "$tmp/l2" | head -4)"
ok "$(wc -l <"$tmp/l1") step losses identical"
