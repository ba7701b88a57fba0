#!/usr/bin/env bash
# model.precision fp32 against bf16 on the quickstart (configs/quickstart.yaml): both trained
# from the same seed for the same epochs, side by side in the background (one OpenMP thread
# each, so that they share the machine evenly), then each final checkpoint's KID against the
# validation split with the seeded InceptionV3 of the tests (tests/data/; docs/kid.md), its
# samples drawn at the precision it trained in. Prints a Markdown table of the epoch losses
# and the KIDs (docs/perf.md shows one); the runs stay in OUT_DIR.
#
# usage: tools/bf16_compare.sh [OUT_DIR]   (default runs/bf16_compare)
# Settings: BUILD (default build), EPOCHS (default the quickstart's 12), THREADS (per run, 1).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-runs/bf16_compare}
build=${BUILD:-build}
epochs=${EPOCHS:-12}
inception=tests/data/inception_v3_seeded_notop.h5
mkdir -p "$out" data
[[ -f data/synthetic.h5 ]] ||
    "$build/ddim-prep" --synthetic 2000 --size 32 --output data/synthetic.h5 >/dev/null
start=$(date +%s)
for p in fp32 bf16; do
    OMP_NUM_THREADS=${THREADS:-1} "$build/ddim-dist" --config configs/quickstart.yaml \
        --set model.precision=$p --set train.num_epochs="$epochs" --set run.dir="$out/$p" \
        --set run.tensorboard=off >"$out/$p.log" 2>&1 &
done
wait
echo "trained both in $(($(date +%s) - start)) s" >&2
for p in fp32 bf16; do
    OMP_NUM_THREADS=2 "$build/ddim-kid" --checkpoint "$out/$p/checkpoint.h5" \
        --dataset data/synthetic.h5 --inception-weights "$inception" >"$out/$p.kid.json"
done
# one column per epoch line of metrics.jsonl: "n_loss i_loss val_n_loss val_i_loss"
epoch_field() { grep '"type":"epoch"' "$out/$1/metrics.jsonl" | grep -o "\"$2\":[^,}]*" | cut -d: -f2; }
echo "| epoch | fp32 n_loss | bf16 n_loss | fp32 val_n_loss | bf16 val_n_loss |"
echo "| --- | --- | --- | --- | --- |"
paste <(epoch_field fp32 n_loss) <(epoch_field bf16 n_loss) <(epoch_field fp32 val_n_loss) \
    <(epoch_field bf16 val_n_loss) | awk '{printf "| %d | %s | %s | %s | %s |\n", NR, $1, $2, $3, $4}'
kid() { grep -o '"kid":[^,}]*' "$out/$1.kid.json" | cut -d: -f2; }
echo
echo "| | fp32 | bf16 |"
echo "| --- | --- | --- |"
echo "| KID (final checkpoint, seeded InceptionV3, 5 steps) | $(kid fp32) | $(kid bf16) |"
