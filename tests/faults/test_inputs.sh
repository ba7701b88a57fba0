#!/usr/bin/env bash
# What the programs read is checked before it can fool a result (issue 16): each case hands
# a program a file that is wrong in one way and expects a refusal naming the file and what
# is wrong (exit status 1 or 2, never a signal), with nothing written or lost.
# usage: test_inputs.sh CASE DDIM_DIST DDIM_PREP DDIM_SAMPLE DDIM_KID INCEPTION.h5
#   other_dataset   another dataset copied over data.path: resume refused (its content
#                   fingerprint differs), train.resume=force goes on and records it
set -u
case_name=$1 dist=$2 prep=$3 sample=$4 kid=$5 inception=$6
source "$(dirname "$0")/fault_util.sh"
export OMP_NUM_THREADS=1

# a one-epoch run on $tmp/data.h5 into $tmp/run
trained_run() {
    make_data data 48 16
    write_cfg "$tmp/cfg.yaml" "$tmp/run" "train: {num_epochs: 1, batch_size: 8}"
    "$dist" --config "$tmp/cfg.yaml" >"$tmp/out" 2>&1 || fail "the first run failed"
}

# the root attribute NAME of FILE, as h5dump prints a string's value
h5_attr() {
    h5dump -a "$2" "$1" 2>/dev/null | sed -n 's/^ *(0): "\(.*\)"$/\1/p'
}

other_dataset() {
    trained_run
    # the fingerprint is xxHash's XXH128 of the pixels, as xxh128sum computes it
    local px=$tmp/pixels.bin
    h5dump -d /train/images -b LE -o "$px" "$tmp/data.h5" >/dev/null 2>&1 || fail "h5dump -b"
    local want
    want=$(xxh128sum "$px" | cut -d' ' -f1) || fail "xxh128sum (package xxhash)"
    [[ $(h5_attr "$tmp/data.h5" train_xxh128) == "$want" ]] || fail "train_xxh128 is not XXH128 of the pixels"
    [[ $(h5_attr "$tmp/run/checkpoint.h5" data_train_xxh128) == "$want" ]] ||
        fail "the checkpoint does not record the dataset's fingerprint"
    # the same size, other images (another seed), copied over data.path
    "$prep" --synthetic 48 --size 16 --seed 7 --output "$tmp/other.h5" >/dev/null 2>&1 || fail "ddim-prep"
    cp "$tmp/other.h5" "$tmp/data.h5"
    cp "$tmp/run/checkpoint.h5" "$tmp/ckpt.before"
    "$dist" --config "$tmp/cfg.yaml" --set train.num_epochs=2 >"$tmp/out" 2>&1
    rc=$?
    expect_status "$rc" nonzero
    expect_out "cannot resume: .*data.train_xxh128 $want -> [0-9a-f]{32}.*data.path holds other images" "refusal"
    cmp -s "$tmp/run/checkpoint.h5" "$tmp/ckpt.before" || fail "the checkpoint was touched"
    ok "another dataset at data.path: resume refused naming the fingerprints, checkpoint kept"
    "$dist" --config "$tmp/cfg.yaml" --set train.num_epochs=2 --set train.resume=force >"$tmp/out" 2>&1
    rc=$?
    expect_status "$rc" 0
    metrics_has "$tmp/run/metrics.jsonl" '.type == "config_change" and .forced == true and
        any(.changes[]; .key == "data.train_xxh128" and .exact_resume == false)' ||
        fail "no forced config_change line for the dataset"
    [[ $(h5_attr "$tmp/run/checkpoint.h5" data_train_xxh128) != "$want" ]] ||
        fail "the new checkpoint still records the old dataset"
    ok "train.resume=force: goes on with the new dataset, recorded in metrics.jsonl"
}

declare -F "$case_name" >/dev/null || { echo "unknown case $case_name"; exit 2; }
"$case_name"
