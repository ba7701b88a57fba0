#!/usr/bin/env bash
# ddim-dist's TensorBoard event files read by TensorBoard itself (label lifecycle): a tiny
# run stopped at step 12 (train.max_steps), resumed to step 20, set back to its step-12
# checkpoint as a run that died after writing steps 13..20 leaves it (events and metrics
# past the checkpoint), and resumed to its end at step 24. check_tb.py then reads the event
# files with TensorBoard's EventAccumulator and its CRC-32C and compares every scalar with
# metrics.jsonl, every image with the PNG grids, the config text with config.yaml, and
# that no step is in two files. Then it must fail on scratch copies spoiled three ways: a
# checksum bit flipped, a step's record removed, a step's record written twice.
#
# TensorBoard comes from PyPI into a venv kept in the build folder (tb-venv; made once,
# pip's cache makes a second build folder's quick); without PyPI the test is skipped (77).
# usage: test_tensorboard.sh DDIM_DIST DDIM_PREP BUILD_DIR
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=tests/test_lib.sh
source "$here/test_lib.sh"
dist=$1 prep=$2 bdir=$3
check=$here/tensorboard/check_tb.py
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

venv=$bdir/tb-venv
if ! "$venv/bin/python" -c "import tensorboard, PIL" 2>/dev/null; then
    rm -rf "$venv.part"
    python3 -m venv "$venv.part" >"$tmp/out" 2>&1 ||
        fail "python3 -m venv (Debian: python3-venv) failed"
    if ! "$venv.part/bin/python" -m pip install --disable-pip-version-check --timeout 20 \
        --retries 1 -q -r "$here/tensorboard/requirements.txt" >"$tmp/pip" 2>&1; then
        echo "skipped: pip cannot install tensorboard (PyPI not reachable?):"
        tail -3 "$tmp/pip"
        rm -rf "$venv.part"
        exit 77
    fi
    rm -rf "$venv" && mv "$venv.part" "$venv" || fail "cannot put the venv at $venv"
fi
py=$venv/bin/python
ok "tensorboard $("$py" -c 'import tensorboard; print(tensorboard.__version__)') in $venv"

run_expect "ddim-prep" 0 "$prep" --synthetic 80 --size 16 --output "$tmp/data.h5"
cat >"$tmp/cfg.yaml" <<YAML
data: {path: "$tmp/data.h5", dataset_repetitions: 1}
model: {image_size: 16, widths: [8, 16], block_depth: 1, embedding_dims: 8}
train: {num_epochs: 3, batch_size: 8}
eval: {plot_diffusion_steps: 2, plot_rows: 1, plot_cols: 2}
run: {dir: "$tmp/run", backend: cpu, progress_seconds: 1000}
YAML
run=$tmp/run
# 64 training images, batch 8: 8 steps per epoch, 24 in all
run_expect "ddim-dist to step 12" 0 "$dist" --config "$tmp/cfg.yaml" --set train.max_steps=12
cp "$run/checkpoint.h5" "$tmp/step12.h5"
# train.max_steps reports the epoch it stopped in: epoch 2's grid of step 12, replaced later
cp "$run/samples/epoch_0002.png" "$tmp/grid12.png"
run_expect "ddim-dist resumed to step 20" 0 "$dist" --config "$tmp/cfg.yaml" \
    --set train.max_steps=20
cp "$tmp/step12.h5" "$run/checkpoint.h5" # the run to 20 died: its checkpoints are lost
run_expect "ddim-dist resumed from step 12 to the end" 0 "$dist" --config "$tmp/cfg.yaml"
grep -q "record(s) after step 12 cut from 1 event file" "$tmp/out" ||
    fail "the resumed run did not say it cut the dead run's steps after 12"
n=$(find "$run" -name 'events.out.tfevents.*' | wc -l)
((n == 3)) || fail "$n event files, expected 3 (one per start)"
ok "a run to 12, resumed to 20, set back to 12 and resumed to 24: 3 event files"

checks=(--starts 1,13 --grid "12=$tmp/grid12.png")
"$py" "$check" "$run" "${checks[@]}" >"$tmp/out" 2>&1 || fail "check_tb.py on the run"
tail -1 "$tmp/out"

# spoiled copies: check_tb.py must fail, and say why
last=$(find "$run" -name 'events.out.tfevents.*' | sort | tail -1)
for spoil in "crc:payload checksum of the record" "drop:train/noise_loss: steps differ.*missing \[[0-9]" \
    "dup:train/noise_loss at step [0-9]+ twice"; do
    mode=${spoil%%:*} want=${spoil#*:}
    rm -rf "$tmp/copy" && cp -r "$run" "$tmp/copy"
    "$py" "$check" --corrupt "$mode" "$tmp/copy/${last#"$run"/}" >"$tmp/out" 2>&1 ||
        fail "check_tb.py --corrupt $mode"
    if "$py" "$check" "$tmp/copy" "${checks[@]}" >"$tmp/out" 2>&1; then
        fail "check_tb.py passed a copy spoiled by '$mode'"
    fi
    grep -Eq "FAIL: .*$want" "$tmp/out" || fail "check_tb.py on '$mode': no message like '$want'"
    ok "spoiled by '$mode': check_tb.py fails ($(grep -m1 FAIL "$tmp/out" | cut -c1-110))"
done
echo "test_tensorboard: all checks passed"
