#!/usr/bin/env python3
"""Checks a ddim-dist run directory's TensorBoard event files with TensorBoard's own code
(tests/tensorboard/test_tensorboard.sh runs it in a venv holding the tensorboard package).

    check_tb.py RUN_DIR --starts 1,13 [--grid STEP=PNG]...
                                           check; exit 0, or 1 with every problem found
    check_tb.py --corrupt MODE EVENT_FILE  spoil one record in place, for a scratch copy:
                                           crc (flip a checksum bit), drop (remove a step's
                                           record), dup (append a step's record again)

What is checked:
  - framing, by TensorBoard's masked CRC-32C: every file is whole records to its end,
    each opening with file_version "brain.Event:2"; no (tag, step) is in two files (a
    resumed run's file repeats no step of an earlier one: they were cut, not only hidden);
  - each start of the run left a SessionLog START and the "config" text at its first step
    (--starts), the last one equal to config.yaml;
  - through TensorBoard's EventAccumulator (what its Python loader shows, with its own
    purging of orphaned steps): every per-step scalar at exactly the steps of
    metrics.jsonl, 1..N, each once, with metrics.jsonl's value at the precision it prints;
    train/learning_rate equal to config.yaml's train.learning_rate as float32; the epoch
    scalars at the epoch lines' steps; the "samples" image of each epoch line pixel for
    pixel equal to samples/epoch_NNNN.png (both decoded), or to the --grid file of its step
    where a later line of the same epoch replaced that file (a run stopped by
    train.max_steps reports the epoch it stopped in, which goes on when it is resumed).
"""
import argparse
import glob
import io
import json
import math
import os
import re
import struct
import sys

import numpy as np
from PIL import Image
from tensorboard.backend.event_processing import event_accumulator
from tensorboard.compat.proto import event_pb2
from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import masked_crc32c

problems = []


def problem(text):
    problems.append(text)


def read_records(path):
    """(offset, payload) of each record; a problem for anything but whole, intact ones."""
    data = open(path, "rb").read()
    out, at = [], 0
    while at < len(data):
        if len(data) - at < 12:
            problem(f"{path}: {len(data) - at} bytes at the end are no whole record header")
            break
        (length,) = struct.unpack("<Q", data[at : at + 8])
        (hcrc,) = struct.unpack("<I", data[at + 8 : at + 12])
        if hcrc != masked_crc32c(data[at : at + 8]):
            problem(f"{path}: the length checksum of the record at byte {at} is wrong")
            break
        end = at + 12 + length + 4
        if end > len(data):
            problem(f"{path}: the record at byte {at} is cut off")
            break
        payload = data[at + 12 : at + 12 + length]
        (pcrc,) = struct.unpack("<I", data[end - 4 : end])
        if pcrc != masked_crc32c(payload):
            problem(f"{path}: the payload checksum of the record at byte {at} is wrong")
            break
        out.append((at, payload))
        at = end
    return out


def event_files(run):
    return sorted(glob.glob(os.path.join(run, "events.out.tfevents.*")))


def check_files(run, starts, config_text):
    files = event_files(run)
    seen, start_steps, configs = {}, [], []
    for path in files:
        events = [event_pb2.Event.FromString(p) for _, p in read_records(path)]
        if not events or events[0].file_version != "brain.Event:2":
            problem(f"{path}: does not open with file_version brain.Event:2")
        for ev in events:
            if ev.HasField("session_log") and ev.session_log.status == event_pb2.SessionLog.START:
                start_steps.append(ev.step)
            for v in ev.summary.value:
                key = (v.tag, ev.step)
                if key in seen:
                    problem(f"{v.tag} at step {ev.step} twice: in {seen[key]} and {path}")
                seen[key] = path
                if v.tag == "config":
                    configs.append((ev.step, v.tensor.string_val[0].decode()))
    if start_steps != starts:
        problem(f"SessionLog START at steps {start_steps}, expected {starts}")
    if [s for s, _ in configs] != starts:
        problem(f"config text at steps {[s for s, _ in configs]}, expected {starts}")
    want = "```yaml\n" + config_text + "```\n"
    if configs and configs[-1][1] != want:
        problem("the last config text is not config.yaml in a yaml code block")


def metrics_lines(run):
    steps, epochs = {}, {}
    for line in open(os.path.join(run, "metrics.jsonl")):
        m = json.loads(line)
        if m["type"] == "step":
            if m["step"] in steps:
                problem(f"metrics.jsonl: step {m['step']} twice")
            steps[m["step"]] = m
        elif m["type"] == "epoch":
            epochs[m["step"]] = m
    if sorted(steps) != list(range(1, len(steps) + 1)):
        problem(f"metrics.jsonl: the steps are not 1..{len(steps)}")
    return steps, epochs


def same_g6(tb, want):
    """tb (float32) is the value metrics.jsonl printed as %.6g (from the same float)."""
    if want is None:
        return math.isnan(tb)
    return float("%.6g" % tb) == want


def close_printed(tb, want, digits):
    """tb (float32 of a double) within half a unit of the last of `digits` digits printed."""
    if want == 0:
        return abs(tb) < 1e-30
    half = 0.5 * 10 ** (math.floor(math.log10(abs(want))) - digits + 1)
    return abs(tb - want) <= half * (1 + 1e-9) + abs(want) * 1.2e-7


def check_series(acc, tag, want, compare):
    """want: {step: value}; every step once, each value as compare says."""
    got = [(e.step, e.value) for e in acc.Scalars(tag)] if tag in acc.Tags()["scalars"] else []
    steps = [s for s, _ in got]
    if steps != sorted(want):
        lost = sorted(set(want) - set(steps))
        extra = sorted(set(steps) - set(want))
        twice = sorted({s for s in steps if steps.count(s) > 1})
        problem(f"{tag}: steps differ from metrics.jsonl: missing {lost[:10]}, not in it "
                f"{extra[:10]}, twice {twice[:10]} ({len(steps)} vs {len(want)})")
    bad = [(s, v, want[s]) for s, v in got if s in want and not compare(v, want[s])]
    if bad:
        problem(f"{tag}: {len(bad)} value(s) differ from metrics.jsonl, first: step {bad[0][0]} "
                f"{bad[0][1]!r} vs {bad[0][2]!r}")


def decode_png(data):
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def check_accumulator(run, config_text, grids):
    acc = event_accumulator.EventAccumulator(
        run, size_guidance={event_accumulator.SCALARS: 0, event_accumulator.IMAGES: 0,
                            event_accumulator.TENSORS: 0})
    acc.Reload()
    steps, epochs = metrics_lines(run)
    for tag, key in (("train/noise_loss", "n_loss"), ("train/image_loss", "i_loss")):
        check_series(acc, tag, {s: m[key] for s, m in steps.items()}, same_g6)
    check_series(acc, "train/images_per_second",
                 {s: m["images_per_s"] for s, m in steps.items()},
                 lambda tb, j: close_printed(tb, j, 4))
    lr = float(re.search(r"^  learning_rate: *([^ #\n]+)", config_text, re.M).group(1))
    check_series(acc, "train/learning_rate", {s: lr for s in steps},
                 lambda tb, j: tb == float(np.float32(j)))
    for tag, key in (("epoch/noise_loss", "n_loss"), ("epoch/image_loss", "i_loss"),
                     ("val/noise_loss", "val_n_loss"), ("val/image_loss", "val_i_loss"),
                     ("val/kid", "val_kid")):
        want = {s: m[key] for s, m in epochs.items() if m[key] is not None}
        if want or tag in acc.Tags()["scalars"]:
            check_series(acc, tag, want, same_g6)
    images = acc.Images("samples") if "samples" in acc.Tags()["images"] else []
    if [e.step for e in images] != sorted(epochs):
        problem(f"samples: images at steps {[e.step for e in images]}, epochs end at "
                f"{sorted(epochs)}")
    last_of_epoch = {m["epoch"]: s for s, m in sorted(epochs.items())}
    for e in images:
        if e.step in grids:
            path = grids[e.step]
        elif e.step in epochs and last_of_epoch[epochs[e.step]["epoch"]] == e.step:
            path = os.path.join(run, "samples", "epoch_%04d.png" % epochs[e.step]["epoch"])
        else:
            problem(f"samples at step {e.step}: no grid to compare it with (--grid)")
            continue
        tb, png = decode_png(e.encoded_image_string), decode_png(open(path, "rb").read())
        if tb.shape != png.shape or (e.height, e.width) != tb.shape[:2] or not (tb == png).all():
            problem(f"samples at step {e.step}: its pixels differ from {path}")


def corrupt(mode, path):
    """Spoils the record of a step in the middle of the file (a scratch copy)."""
    data = bytearray(open(path, "rb").read())
    records = read_records(path)
    steps = [(at, p) for at, p in records
             if event_pb2.Event.FromString(p).summary.value
             and event_pb2.Event.FromString(p).summary.value[0].tag == "train/noise_loss"]
    at, payload = steps[len(steps) // 2]
    end = at + 12 + len(payload) + 4
    if mode == "crc":
        data[end - 1] ^= 0x01
    elif mode == "drop":
        del data[at:end]
    elif mode == "dup":
        data += data[at:end]
    open(path, "wb").write(bytes(data))
    step = event_pb2.Event.FromString(payload).step
    print(f"check_tb: {mode}: the record of step {step} in {path}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("path")
    ap.add_argument("--starts", default="1")
    ap.add_argument("--corrupt", choices=["crc", "drop", "dup"])
    ap.add_argument("--grid", action="append", default=[], metavar="STEP=PNG",
                    help="the grid of step STEP, where samples/ holds a later one of its epoch")
    args = ap.parse_args()
    if args.corrupt:
        corrupt(args.corrupt, args.path)
        return 0
    config_text = open(os.path.join(args.path, "config.yaml")).read()
    check_files(args.path, [int(s) for s in args.starts.split(",")], config_text)
    grids = {int(g.split("=", 1)[0]): g.split("=", 1)[1] for g in args.grid}
    check_accumulator(args.path, config_text, grids)
    for p in problems:
        print("check_tb: FAIL:", p)
    if not problems:
        print(f"check_tb: {args.path}: every event file, scalar, image and config text agrees")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
