#!/usr/bin/env bash
# Checkpoints are float32 whatever model.precision trained them, and interchangeable (label
# train): a run trained one epoch in fp32 resumes in bf16, and one trained in bf16 resumes in
# fp32. Each resume is accepted without train.resume=force and recorded in metrics.jsonl as a
# change that is not exact; every weight of every checkpoint is float32; and the resumed
# epoch's n_loss stays within 1% of an uninterrupted fp32 run's. Measured on this
# configuration (CPU): both resumes within 1e-5 of it (0.769372 and 0.769377 against
# 0.769379), while epoch 1 (fresh weights) gives 0.7956, 3.4% above: a checkpoint read
# wrongly or not at all, training that starts again, fails the bound.
# usage: test_precision_resume.sh DDIM_DIST DDIM_PREP
set -u
dist=$1 prep=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; [[ -f $tmp/out ]] && tail -20 "$tmp/out"; exit 1; }
"$prep" --synthetic 200 --size 16 --seed 1 --output "$tmp/data.h5" >/dev/null 2>&1 ||
    fail "ddim-prep"

# run NAME PRECISION EPOCHS: trains (or resumes) run NAME to EPOCHS epochs
run() {
    cat >"$tmp/$1-$2.yaml" <<YAML
data: {path: "$tmp/data.h5", dataset_repetitions: 1}
model: {image_size: 16, widths: [8, 16], block_depth: 1, embedding_dims: 8, precision: $2}
train: {num_epochs: $3, batch_size: 16, ema: 0.9, seed: 3}
eval: {plot_diffusion_steps: 2, plot_rows: 1, plot_cols: 2}
run: {dir: "$tmp/$1", backend: cpu, progress_seconds: 1000, tensorboard: off}
YAML
    timeout 300 "$dist" --config "$tmp/$1-$2.yaml" >"$tmp/out" 2>&1 || fail "ddim-dist ($1, $2)"
}
# the n_loss of epoch E of run NAME
epoch_loss() {
    grep '"type":"epoch"' "$tmp/$1/metrics.jsonl" | grep "\"epoch\":$2," |
        grep -o '"n_loss":[^,}]*' | cut -d: -f2
}
# every weight, EMA weight, optimizer moment and BatchNorm statistic of the file is float32
float32_only() {
    local types
    types=$(h5dump -H "$1" | grep -A1 -E 'DATASET "(kernel|bias|moving_mean|moving_variance)"' |
        grep -o 'DATATYPE *[A-Z_0-9]*' | awk '{print $2}' | sort | uniq -c | tr -s ' \n' ' ')
    [[ $types =~ ^\ [0-9]+\ H5T_IEEE_F32LE\ $ ]] ||
        fail "$1: weights of types '$types', expected float32 only"
}

run straight fp32 2
want=$(epoch_loss straight 2)
for pair in "fp32 bf16" "bf16 fp32"; do
    read -r first second <<<"$pair"
    name=$first-then-$second
    run "$name" "$first" 1
    float32_only "$tmp/$name/checkpoint.h5"
    run "$name" "$second" 2
    float32_only "$tmp/$name/checkpoint.h5"
    grep -q "\"type\":\"config_change\".*\"forced\":false.*{\"key\":\"model.precision\",\"old\":\"$first\",\"new\":\"$second\",\"exact_resume\":false}" \
        "$tmp/$name/metrics.jsonl" || fail "$name: no config_change line for the precision"
    got=$(epoch_loss "$name" 2)
    awk -v a="$got" -v b="$want" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(b > 0 && d <= 0.01 * b) }' ||
        fail "$name: epoch 2's n_loss $got, an uninterrupted fp32 run's $want: not within 1%"
    echo "ok   $name: resumed, float32 checkpoints, epoch 2 n_loss $got (fp32 straight $want)"
done
