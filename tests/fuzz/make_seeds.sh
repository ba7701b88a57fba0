#!/usr/bin/env bash
# make_seeds.sh BUILD_DIR: re-creates the seed corpus of the fuzz targets, tests/fuzz/corpus/
# (committed; run this only to refresh it), with the project's own programs: a tiny
# synthetic dataset (ddim-prep), a tiny training run's checkpoint and resolved config
# (ddim-dist: 16x16, widths [8, 16], the model fuzz_checkpoint.c builds) and its TensorBoard
# event file, its EMA export
# and a sample grid (ddim-sample), the configs/ files, and the grid converted by Pillow
# (PYTHON=... a python with Pillow; skipped without) to the other kinds of JPEG and PNG
# that photos come as (grey, progressive, subsampled, palette, alpha, 16-bit, 1-bit), so that each
# decoding path has a seed; and the edit lists of the HDF5 structure fuzzers.
set -euo pipefail
build=$(realpath "$1")
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
corpus=$here/corpus
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export OMP_NUM_THREADS=1

rm -rf "$corpus"
mkdir -p "$corpus"/{config,dataset,checkpoint,ema_weights,image,tb_events}

"$build/ddim-prep" --synthetic 6 --size 8 --output "$corpus/dataset/synthetic_8px.h5" >/dev/null
"$build/ddim-prep" --synthetic 12 --size 16 --output "$tmp/data.h5" >/dev/null
cat >"$tmp/cfg.yaml" <<YAML
data: {path: "$tmp/data.h5", dataset_repetitions: 1, resident: "off"}
model: {image_size: 16, widths: [8, 16], block_depth: 1, embedding_dims: 8}
train: {num_epochs: 1, batch_size: 4, max_steps: 2}
eval: {plot_diffusion_steps: 2, plot_rows: 1, plot_cols: 1}
run: {dir: "$tmp/run", backend: cpu, progress_seconds: 1000}
YAML
"$build/ddim-dist" --config "$tmp/cfg.yaml" >/dev/null
cp "$tmp/run/checkpoint.h5" "$corpus/checkpoint/tiny.h5"
"$build/ddim-sample" --checkpoint "$tmp/run/checkpoint.h5" --export "$corpus/ema_weights/tiny_export.h5" \
    --output "$corpus/image/grid.png" --num-images 1 --steps 1 >/dev/null

# the run's TensorBoard event file (step 2, with the grid) and one TensorBoard wrote itself
cp "$tmp"/run/events.out.tfevents.* "$corpus/tb_events/tiny.tfevents"
cp "$repo/tests/data/tb_reference.tfevents" "$corpus/tb_events/tensorboard.tfevents"
cp "$tmp/run/config.yaml" "$corpus/config/resolved.yaml"
cp "$tmp/cfg.yaml" "$corpus/config/flow_style.yaml"
cp "$repo"/configs/*.yaml "$corpus/config/"

# the structure fuzzers' seeds are edit lists (fuzz_h5_edit.c) applied to the first file of
# their loader's corpus: none (the file as it is) and one that adds a root attribute no
# loader reads ("note")
for t in dataset checkpoint ema_weights; do
    mkdir -p "$corpus/${t}_edit"
    : >"$corpus/${t}_edit/base_unchanged"
    printf '\x00\x1c\x03\x00' >"$corpus/${t}_edit/note_attr"
done

python=${PYTHON:-python3}
if "$python" -c "import PIL" 2>/dev/null; then
    "$python" - "$corpus/image" <<'PY'
import sys
from PIL import Image
out = sys.argv[1]
grid = Image.open(out + "/grid.png").convert("RGB").resize((24, 16))
grid.save(out + "/rgb.jpg", quality=90)
grid.convert("L").save(out + "/grey.jpg", quality=90)
grid.save(out + "/progressive.jpg", quality=80, progressive=True)
grid.save(out + "/subsampled.jpg", quality=75, subsampling=2)
grid.convert("P", palette=Image.ADAPTIVE, colors=16).save(out + "/palette.png")
rgba = grid.convert("RGBA")
rgba.putalpha(128)
rgba.save(out + "/rgba.png")
grid.convert("LA").save(out + "/grey_alpha.png")
grid.convert("I;16").save(out + "/grey16.png")
grid.convert("1").save(out + "/bilevel.png")
PY
else
    echo "make_seeds: Pillow not found (PYTHON=$python): only the PNG grid is an image seed" >&2
fi
du -ab "$corpus" | sort -k2
