#!/usr/bin/env bash
# KID against the number of sampling steps for the DDIM (eta 0), stochastic (eta 1) and
# second-order (Heun) samplers, as a Markdown table (docs/sampling.md shows one): every cell
# is one `ddim-kid --checkpoint ... --dataset ... --steps K` run, the model's samples
# against the dataset's validation split. The JSON of every run is kept in OUT_DIR.
#
# usage: tools/kid_steps.sh CHECKPOINT DATASET.h5 INCEPTION.h5 [OUT_DIR] [-- DDIM_KID_OPTIONS...]
#   e.g. tools/kid_steps.sh runs/quickstart/checkpoint.h5 data/synthetic.h5 \
#            tests/data/inception_v3_seeded_notop.h5 runs/kid_steps
# Steps: KID_STEPS (default "1 2 5 10 20").
set -euo pipefail
cd "$(dirname "$0")/.."
[[ $# -ge 3 ]] || { sed -n '2,10p' "$0"; exit 2; }
checkpoint=$1 dataset=$2 inception=$3
shift 3
out=runs/kid_steps
if [[ $# -gt 0 && $1 != -- ]]; then out=$1; shift; fi
if [[ $# -gt 0 && $1 == -- ]]; then shift; fi
mkdir -p "$out"
field() { grep -o "\"$1\":[^,}]*" "$2" | head -1 | cut -d: -f2; }
declare -A label=([ddim]="DDIM (eta 0)" [eta1]="stochastic (eta 1)" [heun]="Heun")
declare -A opts=([ddim]="" [eta1]="--eta 1" [heun]="--sampler heun")
steps=${KID_STEPS:-1 2 5 10 20}
header="| sampler |" rule="| --- |"
for k in $steps; do header+=" K = $k |" rule+=" --- |"; done
rows=()
for s in ddim eta1 heun; do
    row="| ${label[$s]} |"
    for k in $steps; do
        json="$out/${s}_$k.json"
        # shellcheck disable=SC2086
        build/ddim-kid --checkpoint "$checkpoint" --dataset "$dataset" --split val \
            --inception-weights "$inception" --steps "$k" ${opts[$s]} "$@" >"$json"
        row+=" $(printf '%.3g' "$(field kid "$json")") ($(field network_evaluations_per_image "$json")) |"
        echo "$s $k steps: $(cat "$json")" >&2
    done
    rows+=("$row")
done
echo "KID for K sampling steps (network evaluations per image in brackets); $(field images_used "$out/ddim_1.json") \
images in batches of $(field batch_size "$out/ddim_1.json"), seed $(field seed "$out/ddim_1.json")"
echo
echo "$header"
echo "$rule"
printf '%s\n' "${rows[@]}"
