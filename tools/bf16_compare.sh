#!/usr/bin/env bash
# model.precision fp32 against bf16 on the quickstart (configs/quickstart.yaml): both trained
# from the same seed for the same epochs, and a third run in fp32 from another seed (seed 2)
# as the yardstick of what the noise of training alone moves; side by side in the background
# (one OpenMP thread each, so that they share the machine evenly; one thread also makes each
# run's bits independent of the machine's load). Then each final checkpoint's KID against
# the validation split with the seeded InceptionV3 of the tests (tests/data/; docs/kid.md),
# its samples drawn at the precision it trained in. Prints a Markdown table of the epoch
# losses and the KIDs (docs/perf.md shows one); the runs stay in OUT_DIR.
#
# usage: tools/bf16_compare.sh [OUT_DIR]   (default runs/bf16_compare)
# Settings: BUILD (default build), EPOCHS (default the quickstart's 12), THREADS (per run, 1),
# RUNS (default "fp32 bf16 seed2"; a run already finished in OUT_DIR is not trained again, a
# KID already in OUT_DIR not computed again).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-runs/bf16_compare}
build=${BUILD:-build}
epochs=${EPOCHS:-12}
inception=tests/data/inception_v3_seeded_notop.h5
mkdir -p "$out" data
[[ -f data/synthetic.h5 ]] ||
    "$build/ddim-prep" --synthetic 2000 --size 32 --output data/synthetic.h5 >/dev/null
declare -A sets=([fp32]="model.precision=fp32" [bf16]="model.precision=bf16"
    [seed2]="model.precision=fp32 train.seed=2")
runs=${RUNS:-fp32 bf16 seed2}
start=$(date +%s)
# trained: the run's metrics hold its last epoch
trained() { grep -q "\"type\":\"epoch\",\"epoch\":$epochs," "$out/$1/metrics.jsonl" 2>/dev/null; }
for r in $runs; do
    trained "$r" && continue
    args=()
    for s in ${sets[$r]}; do args+=(--set "$s"); done
    rm -rf "${out:?}/$r"
    OMP_NUM_THREADS=${THREADS:-1} "$build/ddim-dist" --config configs/quickstart.yaml "${args[@]}" \
        --set train.num_epochs="$epochs" --set run.dir="$out/$r" --set run.tensorboard=off \
        >"$out/$r.log" 2>&1 &
done
wait
echo "trained in $(($(date +%s) - start)) s" >&2
for r in $runs; do
    trained "$r" || { echo "bf16_compare.sh: run $r did not finish; see $out/$r.log" >&2 && exit 1; }
    # the same initial noises for every model (--seed): only the models differ
    [[ -f $out/$r.kid.json ]] ||
        OMP_NUM_THREADS=2 "$build/ddim-kid" --checkpoint "$out/$r/checkpoint.h5" --seed 42 \
            --dataset data/synthetic.h5 --inception-weights "$inception" >"$out/$r.kid.json"
done
# a column of one field of the epoch lines of a run's metrics.jsonl
field() { grep '"type":"epoch"' "$out/$1/metrics.jsonl" | grep -o "\"$2\":[^,}]*" | cut -d: -f2; }
cols=() header="| epoch |" rule="| --- |"
for key in n_loss val_n_loss; do
    for r in $runs; do
        field "$r" "$key" >"$out/$r.$key.txt"
        cols+=("$out/$r.$key.txt")
        header+=" $r $key |" rule+=" --- |"
    done
done
echo "$header"
echo "$rule"
paste "${cols[@]}" | awk '{ printf "| %d |", NR; for (i = 1; i <= NF; i++) printf " %.4f |", $i; print "" }'
echo
kid() { grep -o '"kid":[^,}]*' "$out/$1.kid.json" | cut -d: -f2; }
# the spread of the KID batches: their standard deviation over the batches
spread() {
    grep -o '"kid_batches":\[[^]]*' "$out/$1.kid.json" | cut -d[ -f2 | tr ',' '\n' |
        awk '{ s += $1; q += $1 * $1; n++ } END { printf "%.2f", sqrt((q - s * s / n) / (n - 1)) }'
}
echo "| final checkpoint |$(for r in $runs; do printf ' %s |' "$r"; done)"
echo "| --- |$(for r in $runs; do printf -- ' --- |'; done)"
echo "| KID (seeded InceptionV3, 5 steps, 6 batches of 64) |$(for r in $runs; do printf ' %.4f |' "$(kid "$r")"; done)"
echo "| standard deviation of the 6 batches' KIDs |$(for r in $runs; do printf ' %s |' "$(spread "$r")"; done)"
