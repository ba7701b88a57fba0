#!/usr/bin/env bash
# What the programs read is checked before it can fool a result (issue 16): each case hands
# a program a file that is wrong in one way and expects a refusal naming the file and what
# is wrong (exit status 1 or 2, never a signal), with nothing written or lost.
# usage: test_inputs.sh CASE DDIM_DIST DDIM_PREP DDIM_SAMPLE DDIM_KID H5_EDIT INCEPTION.h5
#   other_dataset   another dataset copied over data.path: resume refused (its content
#                   fingerprint differs), train.resume=force goes on and records it
#   bad_variance    a dataset whose train_variance is inf, 0 or negative: refused at load
#   kid_bad_images  ddim-kid on float images with a NaN, or outside [0, 1]: refused, naming
#                   the file and the first bad image
#   nan_weights     a NaN in the EMA weights of a checkpoint or an export, or in the
#                   InceptionV3 weights: ddim-sample and ddim-kid refuse, naming the dataset
#   flipped_bit     one bit flipped in the stored bytes of a weight, an Adam moment, the
#                   normalizer (checkpoint, EMA export) or the images (dataset): the
#                   Fletcher32 checksum refuses it, naming the file and the dataset
#   declared_sizes  a few-KB dataset declaring 2^31 images (never written): ddim-dist and
#                   ddim-kid refuse it before allocating, naming the file and the dataset;
#                   images that are stored but need more memory than ulimit -v allows:
#                   refused naming the file, by the program that prints it (ddim-kid)
set -u
case_name=$1 dist=$2 prep=$3 sample=$4 kid=$5 h5_edit=$6 inception=$7
source "$(dirname "$0")/fault_util.sh"
export OMP_NUM_THREADS=1

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

bad_variance() {
    make_data data 48 16
    for v in inf 0 -0.01; do
        cp "$tmp/data.h5" "$tmp/bad.h5"
        "$h5_edit" set-attr "$tmp/bad.h5" train_variance 0.05 "$v" 0.05 || fail "h5_edit"
        write_cfg "$tmp/cfg.yaml" "$tmp/run" "data: {path: \"$tmp/bad.h5\", dataset_repetitions: 1}" \
            "train: {num_epochs: 1, batch_size: 8}"
        "$dist" --config "$tmp/cfg.yaml" >"$tmp/out" 2>&1
        rc=$?
        expect_status "$rc" nonzero
        expect_out "$tmp/bad.h5: attribute 'train_variance' holds $v for channel 1" "variance $v"
        [[ ! -e $tmp/run ]] || fail "train_variance $v: the run directory was made"
        ok "train_variance $v: refused at load naming the file and the attribute"
    done
}

kid_bad_images() {
    make_data data 48 16
    for v in nan 7 -0.5; do
        "$h5_edit" float-images "$tmp/gen.h5" 12 16 0.5 &&
            "$h5_edit" set-float "$tmp/gen.h5" images $((3 * 16 * 16 * 3 + 100)) "$v" || fail "h5_edit"
        "$kid" --real "$tmp/data.h5" --generated "$tmp/gen.h5" --inception-weights "$inception" \
            --backend cpu >"$tmp/out" 2>&1
        rc=$?
        expect_status "$rc" 1
        expect_out "$tmp/gen.h5: dataset 'images': image 3 holds $v \(element 100\): expected float images in \[0, 1\]" "value $v"
        ! grep -q '"kid"' "$tmp/out" || fail "a KID was printed for images holding $v"
        ok "ddim-kid, a float image holding $v: refused naming the file and image 3"
    done
}

nan_weights() {
    trained_run
    cp "$tmp/run/checkpoint.h5" "$tmp/ckpt.h5"
    "$h5_edit" set-float "$tmp/ckpt.h5" /ema_weights/head/bias 1 nan || fail "h5_edit"
    "$sample" --checkpoint "$tmp/ckpt.h5" --steps 2 --output "$tmp/grid.png" >"$tmp/out" 2>&1
    rc=$?
    expect_status "$rc" 1
    expect_out "$tmp/ckpt.h5: dataset '/ema_weights/head/bias' holds nan at element 1 of 3: not a finite number" "checkpoint"
    [[ ! -e $tmp/grid.png ]] || fail "a grid was drawn from NaN weights"
    "$h5_edit" set-float "$tmp/ema.h5" /normalizer/variance 2 inf || fail "h5_edit"
    "$sample" --weights "$tmp/ema.h5" --steps 2 --output "$tmp/grid.png" >"$tmp/out" 2>&1
    rc=$?
    expect_status "$rc" 1
    expect_out "$tmp/ema.h5: dataset '/normalizer/variance' holds inf at element 2 of 3" "export"
    ok "ddim-sample: NaN in a checkpoint's EMA weights, inf in an export's normalizer: refused, naming the dataset"
    cp "$inception" "$tmp/inception.h5"
    "$h5_edit" set-float "$tmp/inception.h5" /conv2d_5/conv2d_5/kernel:0 17 nan || fail "h5_edit"
    "$kid" --real "$tmp/data.h5" --generated "$tmp/data.h5" --inception-weights "$tmp/inception.h5" \
        --backend cpu >"$tmp/out" 2>&1
    rc=$?
    expect_status "$rc" 1
    expect_out "dataset '/conv2d_5/conv2d_5/kernel:0' holds nan at element 17" "inception"
    ok "ddim-kid: NaN in an InceptionV3 kernel: refused, naming the dataset"
}

# flipped BASE COPY DATASET: COPY is BASE with the lowest bit of DATASET's first stored value
# flipped (a float moves by one unit in the last place: finite, plausible, wrong)
flipped() {
    cp "$1" "$2"
    "$h5_edit" flip-bit "$2" "$3" 0 0 >/dev/null || fail "h5_edit flip-bit $3"
}

# expect_checksum_error FILE DATASET WHAT: the output says FILE's DATASET failed its checksum
expect_checksum_error() {
    expect_status "$rc" 1
    expect_out "$1: cannot read [^:]*'$2'[^:]*: data error detected by Fletcher32 checksum \(the checksum stored with the data does not match its bytes: the file is damaged\)" "$3"
}

flipped_bit() {
    trained_run
    mkdir -p "$tmp/run2"
    write_cfg "$tmp/cfg2.yaml" "$tmp/run2" "train: {num_epochs: 2, batch_size: 8}"
    for ds in /weights/down0_block0_conv1/kernel /optimizer/v/head/bias /normalizer/variance; do
        flipped "$tmp/run/checkpoint.h5" "$tmp/run2/checkpoint.h5" "$ds"
        cp "$tmp/run2/checkpoint.h5" "$tmp/before"
        "$dist" --config "$tmp/cfg2.yaml" >"$tmp/out" 2>&1
        rc=$?
        expect_checksum_error "$tmp/run2/checkpoint.h5" "$ds" "resume, $ds"
        cmp -s "$tmp/run2/checkpoint.h5" "$tmp/before" || fail "the checkpoint was replaced"
    done
    ok "a bit flipped in a checkpoint's weights, Adam moments, normalizer: resume refused"
    flipped "$tmp/run/checkpoint.h5" "$tmp/ckpt.h5" /ema_weights/down0_block0_bn/moving_mean
    "$sample" --checkpoint "$tmp/ckpt.h5" --steps 2 --output "$tmp/grid.png" >"$tmp/out" 2>&1
    rc=$?
    expect_checksum_error "$tmp/ckpt.h5" /ema_weights/down0_block0_bn/moving_mean "ddim-sample"
    flipped "$tmp/ema.h5" "$tmp/ema2.h5" /weights/up0_block0_conv2/kernel
    "$sample" --weights "$tmp/ema2.h5" --steps 2 --output "$tmp/grid.png" >"$tmp/out" 2>&1
    rc=$?
    expect_checksum_error "$tmp/ema2.h5" /weights/up0_block0_conv2/kernel "export"
    [[ ! -e $tmp/grid.png ]] || fail "a grid was drawn from damaged weights"
    ok "a bit flipped in a checkpoint's or an export's EMA weights: ddim-sample refuses"
    flipped "$tmp/data.h5" "$tmp/data2.h5" /train/images
    write_cfg "$tmp/cfg3.yaml" "$tmp/run3" "data: {path: \"$tmp/data2.h5\", dataset_repetitions: 1, resident: \"on\"}"
    "$dist" --config "$tmp/cfg3.yaml" >"$tmp/out" 2>&1
    rc=$?
    expect_checksum_error "$tmp/data2.h5" /train/images "dataset"
    ok "a bit flipped in a dataset's images: refused when read"
}

# limited SIZE_KB COMMAND...: COMMAND under ulimit -v (address space), where it can be had:
# a sanitizer build reserves terabytes of address space and cannot run under one
limited() {
    local kb=$1
    shift
    if [[ -n ${ASAN_OPTIONS:-} ]]; then
        "$@"
    else
        (ulimit -v "$kb" && exec "$@")
    fi
}

declared_sizes() {
    make_data data 48 16
    cp "$tmp/data.h5" "$tmp/huge.h5"
    "$h5_edit" declare "$tmp/huge.h5" /train/images 2147483648 &&
        "$h5_edit" set-attr "$tmp/huge.h5" num_train 2147483648 || fail "h5_edit"
    (($(stat -c %s "$tmp/huge.h5") < 200000)) || fail "the file is not small"
    write_cfg "$tmp/cfg.yaml" "$tmp/run" "data: {path: \"$tmp/huge.h5\", dataset_repetitions: 1}"
    # 4 GB of address space: what the declared images would need (16 GiB for an epoch's
    # order alone) fails at once instead of swapping
    limited 4000000 "$dist" --config "$tmp/cfg.yaml" >"$tmp/out" 2>&1
    rc=$?
    expect_status "$rc" 1
    expect_out "^ddim-dist: error \(rank 0\): $tmp/huge.h5: dataset '/train/images' declares [0-9]+ elements, but the file stores only 0 of the 2147483648 chunks they need" "ddim-dist"
    limited 4000000 "$kid" --real "$tmp/huge.h5:train/images" --generated "$tmp/data.h5" \
        --inception-weights "$inception" --backend cpu >"$tmp/out" 2>&1
    rc=$?
    expect_status "$rc" 1
    expect_out "^ddim-kid: --real: $tmp/huge.h5: dataset 'train/images' declares [0-9]+ elements, but the file stores only 0 of the 2147483648 chunks" "ddim-kid"
    ok "2^31 images declared in $(stat -c %s "$tmp/huge.h5") bytes: refused before allocating, naming the file"
    if [[ -n ${ASAN_OPTIONS:-} ]]; then
        echo "note: a sanitizer build cannot run under ulimit -v: the memory limit is not tested"
        return 0
    fi
    "$h5_edit" zero-images "$tmp/zeros.h5" 25 2048 || fail "h5_edit" # 315 MB, as floats 1.2 GB
    limited 1000000 "$kid" --real "$tmp/zeros.h5" --generated "$tmp/data.h5" \
        --inception-weights "$inception" --backend cpu >"$tmp/out" 2>&1
    rc=$?
    expect_status "$rc" 1
    expect_out "^ddim-kid: --real: $tmp/zeros.h5: dataset 'images' needs 1.17 GiB of host memory, more than the 0.95 GiB that ulimit -v allows" "memory"
    ok "images that need more memory than ulimit -v allows: refused by ddim-kid naming the file"
}

declare -F "$case_name" >/dev/null || { echo "unknown case $case_name"; exit 2; }
"$case_name"
