#!/usr/bin/env python3
"""check_resize.py: ddim-prep's crop + antialiased resize against TensorFlow's.

For random images (written as lossless PNGs, so both sides see the same pixels) and real
photos (JPEGs: compared on the pixels libjpeg decoded, which ddim-prep dumps, to isolate the
resize from JPEG decoder differences), runs

    ddim-prep --dump-resize IN OUT.bin --size S

and the Keras example's preprocess_image (crop_to_bounding_box, tf.image.resize(...,
antialias=True), /255, clip) on the same pixels, and reports the largest float difference
and how many stored uint8 values (round(255 x)) differ. For the photos it also checks the
decoder (TF's decode_jpeg vs ddim-prep's libjpeg settings) and the whole pipeline (TF's
decode + preprocess vs ddim-prep).

usage: tools/check_resize.py [--prep build/ddim-prep] [--images DIR] [--count 12]
                             [--size 64] [--tolerance 1e-4]
Exit status 0 when the float difference is below the tolerance everywhere."""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import tensorflow as tf  # noqa: E402


def tf_preprocess(pixels, size):
    """The example's preprocess_image on an (h, w, 3) uint8 array."""
    image = tf.constant(pixels)
    h, w = pixels.shape[0], pixels.shape[1]
    s = min(h, w)
    image = tf.image.crop_to_bounding_box(image, (h - s) // 2, (w - s) // 2, s, s)
    image = tf.image.resize(image, size=[size, size], antialias=True)
    return tf.clip_by_value(image / 255.0, 0.0, 1.0).numpy()


def run_prep(prep, path, size, tmp):
    out = os.path.join(tmp, "dump.bin")
    subprocess.run([prep, "--dump-resize", path, out, "--size", str(size)], check=True)
    raw = open(out, "rb").read()
    w, h, s = np.frombuffer(raw[:12], dtype=np.int32)
    n = int(w) * int(h) * 3
    pixels = np.frombuffer(raw[12:12 + n], dtype=np.uint8).reshape(h, w, 3)
    resized = np.frombuffer(raw[12 + n:], dtype=np.float32).reshape(s, s, 3)
    return pixels, resized


def compare(name, ours, theirs, report):
    diff = float(np.max(np.abs(ours.astype(np.float64) - theirs.astype(np.float64))))
    q_ours = np.round(255.0 * ours.astype(np.float64))
    q_tf = np.round(255.0 * theirs.astype(np.float64))
    mismatched = int(np.count_nonzero(q_ours != q_tf))
    report.append((name, diff, mismatched, ours.size))
    print(f"  {name:40s} max |diff| {diff:.3e}  uint8 mismatches {mismatched}/{ours.size}")


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prep", default=os.path.join(here, "..", "build", "ddim-prep"))
    ap.add_argument("--images", default=os.path.join(here, "..", "..", "shared", "data",
                                                     "flowers102", "jpg"))
    ap.add_argument("--count", type=int, default=12, help="real photos to check")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--tolerance", type=float, default=1e-4)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    report = []
    with tempfile.TemporaryDirectory() as tmp:
        print("random images (lossless PNG):")
        shapes = [(128, 171), (171, 128), (500, 375), (97, 131), (64, 64), (65, 64),
                  (40, 50), (7, 9), (1000, 667), (129, 129)]
        for i, (h, w) in enumerate(shapes):
            if i % 2:  # smooth images too, not only noise
                yy, xx = np.mgrid[0:h, 0:w]
                base = 127.5 + 127.5 * np.sin(xx[..., None] / 7.0 + yy[..., None] / 11.0
                                              + np.arange(3))
                img = np.clip(base + rng.normal(0, 8, (h, w, 3)), 0, 255).astype(np.uint8)
            else:
                img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
            path = os.path.join(tmp, f"random_{i}.png")
            tf.io.write_file(path, tf.io.encode_png(img))
            pixels, ours = run_prep(args.prep, path, args.size, tmp)
            assert np.array_equal(pixels, img), "PNG round trip changed the pixels"
            compare(f"random {h}x{w}", ours, tf_preprocess(img, args.size), report)
        if os.path.isdir(args.images):
            files = sorted(f for f in os.listdir(args.images) if f.lower().endswith(".jpg"))
            pick = rng.choice(len(files), size=min(args.count, len(files)), replace=False)
            print(f"real photos from {args.images}:")
            decode_diffs = []
            for k in sorted(pick):
                path = os.path.join(args.images, files[k])
                pixels, ours = run_prep(args.prep, path, args.size, tmp)
                compare(files[k] + " resize", ours, tf_preprocess(pixels, args.size), report)
                tf_pixels = tf.io.decode_jpeg(tf.io.read_file(path), channels=3).numpy()
                decode_diffs.append(int(np.max(np.abs(tf_pixels.astype(int) - pixels))))
                compare(files[k] + " decode+resize", ours, tf_preprocess(tf_pixels, args.size),
                        report)
            print(f"  TF decode_jpeg vs ddim-prep's libjpeg decode, max level difference per "
                  f"photo: {decode_diffs}")
        else:
            print(f"no real photos: {args.images} is not a folder")
    worst = max(r[1] for r in report)
    mism = sum(r[2] for r in report)
    total = sum(r[3] for r in report)
    print(f"max float difference {worst:.3e} over {len(report)} images "
          f"(tolerance {args.tolerance:g}); uint8 mismatches {mism}/{total}")
    return 0 if worst < args.tolerance else 1


if __name__ == "__main__":
    sys.exit(main())
