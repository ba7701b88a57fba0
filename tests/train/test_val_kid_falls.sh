#!/usr/bin/env bash
# The validation KID falls over a short training run on generated data (label train): 400
# synthetic 16 px images (ddim-prep --synthetic), a small U-Net, 4 epochs of 40 steps, KID
# every epoch with the seeded InceptionV3 fixture; the last epoch's val_kid must be below
# MARGIN x the first's. A second run with a learning rate of 1e-9 (0 is refused by the
# configuration) must not pass that bar: it proves that the bar needs learning.
#
# The margin, from measurements on this configuration (CPU, 2 cores; last / first val_kid):
#   trained, seeds 1..5:        194.6 -> 16.3 (0.084), 83.9 -> 11.1 (0.13), 72.7 -> 9.3
#                               (0.13), 83.5 -> 10.4 (0.12), 235.5 -> 16.7 (0.071)
#   learning rate 1e-9, 1 and 2: 140.2 -> 139.2 (0.99), 134.9 -> 137.2 (1.02)
# MARGIN 0.35 sits near the geometric middle of 0.13 and 0.99: almost 3x from either side.
# The untrained runs still move (the noise of each epoch's KID images is keyed by the epoch,
# and BatchNorm's moving statistics change with zero learning) by only ~3%.
# usage: test_val_kid_falls.sh DDIM_DIST DDIM_PREP WEIGHTS.h5
set -u
dist=$1 prep=$2 weights=$3
margin=0.35
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; [[ -f $tmp/out ]] && tail -20 "$tmp/out"; exit 1; }
"$prep" --synthetic 400 --size 16 --seed 1 --output "$tmp/data.h5" >/dev/null 2>&1 ||
    fail "ddim-prep"

# run NAME LEARNING_RATE: trains, prints the epochs' val_kid
run() {
    cat >"$tmp/$1.yaml" <<YAML
data: {path: "$tmp/data.h5", dataset_repetitions: 2}
model: {image_size: 16, widths: [16, 32], block_depth: 1, embedding_dims: 16}
train: {num_epochs: 4, batch_size: 16, learning_rate: $2, ema: 0.9, seed: 1}
eval: {plot_diffusion_steps: 2, plot_rows: 1, plot_cols: 2, kid_diffusion_steps: 5,
       kid_every: 1, inception_weights: "$weights"}
run: {dir: "$tmp/$1", backend: cpu, progress_seconds: 1000}
YAML
    timeout 300 "$dist" --config "$tmp/$1.yaml" >"$tmp/out" 2>&1 || fail "ddim-dist ($1)"
    grep '"type":"epoch"' "$tmp/$1/metrics.jsonl" | grep -o '"val_kid":[^,}]*' | cut -d: -f2
}

# falls FIRST LAST: whether LAST < margin x FIRST (both numbers)
falls() {
    awk -v a="$1" -v b="$2" -v m="$margin" 'BEGIN { exit !(a + 0 > 0 && b + 0 < m * a) }'
}

mapfile -t kid < <(run trained 0.001)
echo "trained: val_kid ${kid[*]}"
[[ ${#kid[@]} -eq 4 ]] || fail "expected 4 epochs with a val_kid, got '${kid[*]}'"
for k in "${kid[@]}"; do [[ $k =~ ^[0-9.e+-]+$ ]] || fail "val_kid '$k' is not a number"; done
falls "${kid[0]}" "${kid[3]}" ||
    fail "val_kid did not fall below $margin x the first epoch's: ${kid[*]}"
echo "ok: val_kid ${kid[0]} -> ${kid[3]} (below $margin x)"

mapfile -t flat < <(run untrained 1e-9)
echo "learning rate 1e-9: val_kid ${flat[*]}"
[[ ${#flat[@]} -eq 4 ]] || fail "expected 4 epochs with a val_kid, got '${flat[*]}'"
falls "${flat[0]}" "${flat[3]}" &&
    fail "without learning val_kid still passed the bar (${flat[*]}): the test cannot tell"
echo "ok: without learning the bar is not met"
