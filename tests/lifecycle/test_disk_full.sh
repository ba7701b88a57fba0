#!/usr/bin/env bash
# A full disk under a running program (label lifecycle): ddim-dist, whose checkpoint write
# fails at the end of an epoch, ddim-sample writing --images-h5 and --export, and ddim-prep
# writing a dataset. Each must end by a normal exit (a clean error or 0, never a signal:
# the HDF5 file of a failed write once stayed half-open and crashed the exit with 139),
# leave the earlier checkpoint byte for byte, and leave no partial file or .tmp behind (a
# sample file, a .tmp of a failed create once stayed). The full disk is a
# small tmpfs mounted as root in a private mount namespace; without the right to mount
# the test is skipped (77).
# usage: test_disk_full.sh DDIM_DIST DDIM_PREP DDIM_SAMPLE
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=tests/test_lib.sh
source "$here/test_lib.sh"
if [[ -z ${DDIM_PRIVATE_MOUNTS:-} ]] && unshare -m --propagation private true 2>/dev/null; then
    DDIM_PRIVATE_MOUNTS=1 exec unshare -m --propagation private bash "$0" "$@"
fi
dist=$1 prep=$2 sample=$3
tmp=$(mktemp -d)
disk=$tmp/disk
trap 'umount "$disk" 2>/dev/null; rm -rf "$tmp"' EXIT
mkdir "$disk"
if ! msg=$(mount -t tmpfs -o size=4m tmpfs "$disk" 2>&1); then
    echo "skipped: cannot mount a tmpfs as the full disk (needs root): $msg"
    exit 77
fi

run_expect "ddim-prep" 0 "$prep" --synthetic 80 --size 16 --output "$tmp/data.h5"
cat >"$tmp/cfg.yaml" <<YAML
data: {path: "$tmp/data.h5", dataset_repetitions: 1}
model: {image_size: 16, widths: [8, 16], block_depth: 1, embedding_dims: 8}
train: {num_epochs: 1, batch_size: 8}
eval: {plot_diffusion_steps: 2, plot_rows: 1, plot_cols: 2}
run: {dir: "$disk/run", backend: cpu, progress_seconds: 1000}
YAML
ckpt=$disk/run/checkpoint.h5
run_expect "ddim-dist, first epoch" 0 "$dist" --config "$tmp/cfg.yaml"
[[ -s $ckpt ]] || fail "no checkpoint after the first epoch"
cp "$ckpt" "$tmp/before.h5"
ok "first epoch: exit 0, checkpoint of $(stat -c %s "$ckpt") bytes"

# fill the disk, then free 64 KiB: room for the logs and the sample grid, not for a
# checkpoint (over 200 KiB)
dd if=/dev/zero of="$disk/filler" bs=4096 >/dev/null 2>&1
truncate -s -64K "$disk/filler" || fail "truncate"
run_expect "ddim-dist, second epoch on a full disk" clean \
    "$dist" --config "$tmp/cfg.yaml" --set train.num_epochs=2
grep -q "checkpoint" "$tmp/out" || fail "ddim-dist said nothing about the checkpoint"
cmp -s "$ckpt" "$tmp/before.h5" || fail "the first epoch's checkpoint changed"
[[ ! -e $ckpt.tmp ]] || fail "checkpoint.h5.tmp left behind"
ok "checkpoint write on a full disk: a normal exit, the earlier checkpoint intact"

# room for a file to be created and half written, not for any of the outputs below (the
# EMA export is over 50 KiB): a write that fails midway is the case that once crashed
dd if=/dev/zero of="$disk/filler2" bs=4096 >/dev/null 2>&1
truncate -s -16K "$disk/filler2" || fail "truncate"
run_expect "ddim-sample --images-h5 on a full disk" error "$sample" --checkpoint "$tmp/before.h5" \
    --num-images 400 --steps 1 --backend cpu --images-h5 "$disk/images.h5"
run_expect "ddim-sample --export on a full disk" error "$sample" --checkpoint "$tmp/before.h5" \
    --export "$disk/ema.h5"
for f in images.h5 images.h5.tmp ema.h5 ema.h5.tmp; do
    [[ ! -e $disk/$f ]] || fail "ddim-sample left $f behind (a failed write leaves nothing)"
done
ok "ddim-sample on a full disk: error exits, nothing left"

run_expect "ddim-prep on a full disk" error "$prep" --synthetic 400 --size 32 --output "$disk/d.h5"
[[ ! -e $disk/d.h5.tmp && ! -e $disk/d.h5 ]] || fail "ddim-prep left a file behind"
ok "ddim-prep on a full disk: an error exit, nothing left"
echo "test_disk_full: all checks passed"
