#!/usr/bin/env bash
# The validation KID is the same for 1, 2 and 4 ranks (label mpi): each rank generates and
# encodes its share of every validation batch, the features are gathered, and the noise is
# keyed by global image index. A one-epoch run of a tiny model on synthetic data, KID with
# the seeded InceptionV3 fixture; val_kid of metrics.jsonl compared across rank counts.
# Tolerance 1e-3 relative: the runs differ only by float32 summation order in the
# all-reduces of training (measured ~1e-6 relative on val_kid); a rank that draws another
# share's noise, or features gathered to the wrong rows, changes KID by far more.
# usage: test_kid_ranks.sh MPIEXEC DDIM_DIST DDIM_PREP WEIGHTS.h5
set -u
mpiexec=$1 dist=$2 prep=$3 weights=$4
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; [[ -f $tmp/out ]] && tail -20 "$tmp/out"; exit 1; }
"$prep" --synthetic 80 --size 16 --output "$tmp/data.h5" >/dev/null 2>&1 || fail "ddim-prep"
declare -A kid
for np in 1 2 4; do
    cat >"$tmp/cfg$np.yaml" <<YAML
data: {path: "$tmp/data.h5", dataset_repetitions: 1}
model: {image_size: 16, widths: [8, 16], block_depth: 1, embedding_dims: 8}
train: {num_epochs: 1, batch_size: 8}
eval: {plot_diffusion_steps: 2, kid_diffusion_steps: 2, kid_every: 1, inception_weights: "$weights"}
run: {dir: "$tmp/run$np", backend: cpu, progress_seconds: 1000}
YAML
    timeout 240 "$mpiexec" --allow-run-as-root --oversubscribe -np "$np" "$dist" \
        --config "$tmp/cfg$np.yaml" >"$tmp/out" 2>&1 || fail "ddim-dist on $np rank(s)"
    kid[$np]=$(grep -o '"val_kid":[^,]*' "$tmp/run$np/metrics.jsonl" | tail -1 | cut -d: -f2)
    [[ -n ${kid[$np]} && ${kid[$np]} != null ]] || fail "no val_kid with $np rank(s)"
    [[ -f $tmp/run$np/best.h5 ]] || fail "no best.h5 with $np rank(s)"
    echo "np=$np val_kid ${kid[$np]}"
done
for np in 2 4; do
    awk -v a="${kid[1]}" -v b="${kid[$np]}" 'BEGIN { d = a - b; if (d < 0) d = -d;
        m = a < 0 ? -a : a; exit !(d <= 1e-3 * m + 1e-6) }' ||
        fail "val_kid ${kid[$np]} on $np ranks differs from ${kid[1]} on 1 rank"
done
echo "ok: val_kid agrees on 1, 2 and 4 ranks"
# a configured weights file that is missing: an error at start naming it, no training step
sed "s|inception_weights: \"$weights\"|inception_weights: \"$tmp/missing.h5\"|; s|run$|runx|" \
    "$tmp/cfg1.yaml" >"$tmp/cfgx.yaml"
sed -i "s|dir: \"$tmp/run1\"|dir: \"$tmp/runx\"|" "$tmp/cfgx.yaml"
if "$dist" --config "$tmp/cfgx.yaml" >"$tmp/out" 2>&1; then fail "missing weights accepted"; fi
grep -q "$tmp/missing.h5" "$tmp/out" || fail "the error does not name the missing file"
grep -q '"type":"step"' "$tmp/runx/metrics.jsonl" 2>/dev/null && fail "trained before failing"
echo "ok: a missing inception_weights file is an error at start"
