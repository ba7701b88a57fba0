#!/usr/bin/env bash
# What the programs write never destroys what is there (issue 16):
#   - no program writes over its own input: each same-file case points one output option at
#     one input and expects a refusal naming both (exit 2, before anything is written) and
#     the input byte for byte as it was; one case per program and output option:
#       sample_export sample_output sample_gif sample_images_h5 sample_save_noise
#       prep_output_archive prep_output_folder prep_preview prep_dump_resize
#       gif_output dist_data_path dist_inception
#   - gif_keeps_old: ddim-gif failing on a broken frame leaves the previous GIF whole and
#     no temporary behind (GIFs are written to a temporary, fsync'ed and renamed)
# usage: test_outputs.sh CASE DDIM_DIST DDIM_PREP DDIM_SAMPLE DDIM_GIF INCEPTION.h5
set -u
case_name=$1 dist=$2 prep=$3 sample=$4 gif=$5 inception=$6
source "$(dirname "$0")/fault_util.sh"
export OMP_NUM_THREADS=1

# refused WHAT_OUT OUT WHAT_IN IN COMMAND...: COMMAND exits 2 naming both, IN is unchanged
refused() {
    local what_out=$1 out=$2 what_in=$3 in=$4
    shift 4
    cp "$in" "$tmp/before"
    "$@" >"$tmp/out" 2>&1
    rc=$?
    expect_status "$rc" 2
    expect_out "$what_out '$out' is the same file as $what_in '$in'" "the refusal"
    cmp -s "$in" "$tmp/before" || fail "$in was changed"
    ok "$what_out onto $what_in: refused naming both, the input intact"
}

sample_export() {
    trained_run
    local c=$tmp/run/checkpoint.h5
    refused --export "$c" --checkpoint "$c" "$sample" --checkpoint "$c" --export "$c"
}

sample_output() {
    trained_run
    local c=$tmp/run/checkpoint.h5
    refused --output "$c" --checkpoint "$c" "$sample" --checkpoint "$c" --output "$c"
}

sample_gif() {
    trained_run
    ln -s "$tmp/ema.h5" "$tmp/link.gif" # another name for the same file
    refused --gif "$tmp/link.gif" --weights "$tmp/ema.h5" \
        "$sample" --weights "$tmp/ema.h5" --trajectory --steps 2 --num-images 2 --gif "$tmp/link.gif"
}

sample_images_h5() {
    trained_run
    refused --images-h5 "$tmp/ema.h5" --weights "$tmp/ema.h5" \
        "$sample" --weights "$tmp/ema.h5" --steps 2 --images-h5 "$tmp/ema.h5"
}

sample_save_noise() {
    trained_run
    local c=$tmp/run/checkpoint.h5
    refused --save-noise "$c" --checkpoint "$c" "$sample" --checkpoint "$c" --steps 2 --save-noise "$c"
    "$sample" --weights "$tmp/ema.h5" --steps 2 --num-images 2 --save-noise "$tmp/noise.h5" \
        >"$tmp/out" 2>&1 || fail "--save-noise failed"
    refused --save-noise "$tmp/noise.h5" --noise "$tmp/noise.h5" \
        "$sample" --weights "$tmp/ema.h5" --steps 2 --noise "$tmp/noise.h5" --save-noise "$tmp/noise.h5"
}

# a folder of three PNG images (the run's grid), and the same as a .tar
image_folder() {
    trained_run
    mkdir -p "$tmp/photos"
    for i in 1 2 3; do cp "$tmp/run/samples/epoch_0001.png" "$tmp/photos/p$i.png"; done
    tar -cf "$tmp/photos.tar" -C "$tmp" photos
}

prep_output_archive() {
    image_folder
    refused --output "$tmp/photos.tar" --input "$tmp/photos.tar" \
        "$prep" --input "$tmp/photos.tar" --output "$tmp/photos.tar" --size 16
}

prep_output_folder() {
    image_folder
    refused --output "$tmp/photos/p2.png" "the input image" "$tmp/photos/p2.png" \
        "$prep" --input "$tmp/photos" --output "$tmp/photos/p2.png" --size 16
    [[ ! -e $tmp/photos/p2.png.tmp ]] || fail "a temporary was left in the input folder"
}

prep_preview() {
    image_folder
    refused --preview "$tmp/photos/p1.png" "the input image" "$tmp/photos/p1.png" \
        "$prep" --input "$tmp/photos" --output "$tmp/new.h5" --size 16 --preview "$tmp/photos/p1.png"
    [[ ! -e $tmp/new.h5 ]] || fail "the dataset was written although the run was refused"
}

prep_dump_resize() {
    image_folder
    refused "--dump-resize OUT" "$tmp/photos/p1.png" "--dump-resize IN" "$tmp/photos/p1.png" \
        "$prep" --dump-resize "$tmp/photos/p1.png" "$tmp/photos/p1.png"
}

gif_output() {
    trained_run
    local frame=$tmp/run/samples/epoch_0001.png
    refused --output "$frame" "the input frame" "$frame" "$gif" "$tmp/run" --output "$frame"
}

dist_data_path() {
    # a dataset kept in a run directory under the name of a file the run writes
    mkdir -p "$tmp/run"
    make_data data 48 16
    mv "$tmp/data.h5" "$tmp/run/loss.png"
    write_cfg "$tmp/cfg.yaml" "$tmp/run" "data: {path: \"$tmp/run/loss.png\", dataset_repetitions: 1}" \
        "train: {num_epochs: 1, batch_size: 8}"
    refused "the run's loss.png" "$tmp/run/loss.png" data.path "$tmp/run/loss.png" \
        "$dist" --config "$tmp/cfg.yaml"
    [[ ! -e $tmp/run/lock ]] || fail "the run directory was written to"
}

dist_inception() {
    make_data data 48 16
    mkdir -p "$tmp/run"
    cp "$inception" "$tmp/run/kid.png"
    write_cfg "$tmp/cfg.yaml" "$tmp/run" "train: {num_epochs: 1, batch_size: 8}" \
        "eval: {plot_diffusion_steps: 2, plot_rows: 1, plot_cols: 2, inception_weights: \"$tmp/run/kid.png\", kid_diffusion_steps: 1}"
    refused "the run's kid.png" "$tmp/run/kid.png" eval.inception_weights "$tmp/run/kid.png" \
        "$dist" --config "$tmp/cfg.yaml"
}

gif_keeps_old() {
    trained_run
    local samples=$tmp/run/samples
    cp "$samples/epoch_0001.png" "$samples/epoch_0002.png"
    "$gif" "$tmp/run" >"$tmp/out" 2>&1 || fail "ddim-gif failed on good grids"
    cp "$samples/evolution.gif" "$tmp/before.gif"
    head -c 100 "$samples/epoch_0001.png" >"$samples/epoch_0003.png" # a cut-off grid
    "$gif" "$tmp/run" >"$tmp/out" 2>&1
    rc=$?
    expect_status "$rc" 1
    expect_out "epoch_0003.png" "the broken frame named"
    cmp -s "$samples/evolution.gif" "$tmp/before.gif" || fail "the previous GIF was lost"
    no_leftovers "$samples"
    ok "ddim-gif failing on a broken frame: the previous GIF whole, no temporary"
}

declare -F "$case_name" >/dev/null || { echo "unknown case $case_name"; exit 2; }
"$case_name"
