#!/usr/bin/env python3
"""Make the KID parity fixture for ddim-dist (tests/test_kid_fixture.c).

Writes two files:
  * an InceptionV3 weights file without the top, written by Keras itself
    (model.save_weights in h5 format, as the published
    inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5 was: root attribute
    `layer_names`, each layer a group with attribute `weight_names`, an empty float64
    array for a layer without weights, and its datasets at <layer>/<weight name>), with
    seeded weights drawn from two values per tensor, then repacked with gzip by HDF5's
    h5repack (attributes untouched, checked) so that the file stays small;
  * the reference: two sets of images, the 2048 features that the Keras example's KID
    encoder gives each image (Rescaling(255), Resizing(75, 75), inception_v3
    preprocess_input, InceptionV3(include_top=False, weights=<that file>),
    GlobalAveragePooling2D) and the KID that the example's KID metric computes over the
    batches.

The weights file is read back by Keras (the encoder loads it through weights=PATH).

Usage:
  python3 tools/inception_reference.py --weights tests/data/inception_v3_seeded_notop.h5 \\
      --reference tests/data/kid_reference.h5
Requirements: tools/requirements-reference.txt (TensorFlow 2.21 + tf_keras, CPU only), and
h5repack (Debian: hdf5-tools).
"""

import argparse
import os
import subprocess
import tempfile

os.environ["TF_USE_LEGACY_KERAS"] = "1"  # Keras 2 (tf_keras), as the example
os.environ["CUDA_VISIBLE_DEVICES"] = ""
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"

import h5py  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorflow import keras  # noqa: E402
from tensorflow.keras import layers  # noqa: E402

IMAGE_SIZE = 64       # the example's image_size
KID_IMAGE_SIZE = 75   # the example's kid_image_size
BATCH = 5             # images per KID batch
NUM_BATCHES = 2


def seeded_weights(model, rng):
    """Two values per tensor: +-a kernels (He scale), and BatchNorm beta, mean and variance
    from two values each, so activations stay of order one through the 94 layers."""
    for layer in model.layers:
        values = []
        for w in layer.weights:
            shape = tuple(w.shape)
            name = w.name.split("/")[-1]
            if name.startswith("kernel"):
                fan_in = int(np.prod(shape[:-1]))
                a = np.float32(np.sqrt(2.0 / fan_in))
                v = rng.choice(np.array([-a, a], np.float32), size=shape)
            elif name.startswith("beta"):
                v = rng.choice(np.array([-0.1, 0.2], np.float32), size=shape)
            elif name.startswith("moving_mean"):
                v = rng.choice(np.array([-0.05, 0.1], np.float32), size=shape)
            elif name.startswith("moving_variance"):
                v = rng.choice(np.array([0.5, 2.0], np.float32), size=shape)
            else:
                raise SystemExit(f"unexpected weight {w.name}")
            values.append(v.astype(np.float32))
        if values:
            layer.set_weights(values)


def write_weights(model, path):
    """Keras's own file: model.save_weights in h5 format (tf_keras's legacy hdf5_format, the
    code that wrote the published notop file), repacked with gzip by HDF5's h5repack, which
    changes only how the datasets are stored. Every attribute stays as Keras wrote it: the
    123 layers without weights have `weight_names` = [], a float64 array of length 0."""
    with tempfile.TemporaryDirectory() as d:
        raw = os.path.join(d, "keras.h5")
        model.save_weights(raw, save_format="h5")
        tmp = path + ".tmp"
        subprocess.run(["h5repack", "-f", "SHUF", "-f", "GZIP=9", raw, tmp], check=True)
        check_same_file(raw, tmp)
        os.replace(tmp, path)


def check_same_file(keras_file, repacked):
    """The repacked file holds Keras's attributes (type, shape and value) and weights
    exactly."""
    def same_attrs(a, b, where):
        assert sorted(a.attrs) == sorted(b.attrs), where
        for k in a.attrs:
            aa, bb = a.attrs.get_id(k), b.attrs.get_id(k)
            assert aa.dtype == bb.dtype and aa.shape == bb.shape, (where, k)
            assert np.array_equal(np.asarray(a.attrs[k]), np.asarray(b.attrs[k])), (where, k)

    with h5py.File(keras_file, "r") as a, h5py.File(repacked, "r") as b:
        same_attrs(a, b, "/")
        empty = 0
        for name in a.attrs["layer_names"]:
            name = name.decode() if isinstance(name, bytes) else name
            same_attrs(a[name], b[name], name)
            wn = a[name].attrs["weight_names"]
            empty += wn.size == 0 and wn.dtype == np.float64
            for w in wn:
                w = w.decode() if isinstance(w, bytes) else w
                assert np.array_equal(a[name][w][()], b[name][w][()]), (name, w)
        assert empty > 0, "expected Keras's float64 [] weight_names on layers without weights"


def make_images(rng, n, smooth):
    """Images in [0, 1]: coarse random colour fields upsampled, plus pixel noise."""
    coarse = rng.uniform(0, 1, size=(n, smooth, smooth, 3)).astype(np.float32)
    img = tf.image.resize(coarse, (IMAGE_SIZE, IMAGE_SIZE), method="bicubic").numpy()
    img += rng.normal(0, 0.05, size=img.shape).astype(np.float32)
    return np.clip(img, 0.0, 1.0).astype(np.float32)


def kid_encoder(weights_path):
    # the example's KID encoder, with the seeded weights instead of "imagenet"
    return keras.Sequential([
        keras.Input(shape=(IMAGE_SIZE, IMAGE_SIZE, 3)),
        layers.Rescaling(255.0),
        layers.Resizing(height=KID_IMAGE_SIZE, width=KID_IMAGE_SIZE),
        layers.Lambda(keras.applications.inception_v3.preprocess_input),
        keras.applications.InceptionV3(include_top=False,
                                       input_shape=(KID_IMAGE_SIZE, KID_IMAGE_SIZE, 3),
                                       weights=weights_path),
        layers.GlobalAveragePooling2D(),
    ], name="inception_encoder")


def polynomial_kernel(f1, f2):
    # the example's KID.polynomial_kernel
    d = tf.cast(tf.shape(f1)[1], dtype=tf.float32)
    return (f1 @ tf.transpose(f2) / d + 1.0) ** 3.0


def kid_batch(real_features, generated_features):
    # the example's KID.update_state, after the encoder
    kr = polynomial_kernel(real_features, real_features)
    kg = polynomial_kernel(generated_features, generated_features)
    kc = polynomial_kernel(real_features, generated_features)
    b = tf.shape(real_features)[0]
    bf = tf.cast(b, dtype=tf.float32)
    mr = tf.reduce_sum(kr * (1.0 - tf.eye(b))) / (bf * (bf - 1.0))
    mg = tf.reduce_sum(kg * (1.0 - tf.eye(b))) / (bf * (bf - 1.0))
    mc = tf.reduce_mean(kc)
    return mr + mg - 2.0 * mc


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--weights", required=True)
    ap.add_argument("--reference", required=True)
    ap.add_argument("--seed", type=int, default=2022)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    tf.keras.utils.set_random_seed(args.seed)

    model = keras.applications.InceptionV3(include_top=False, weights=None,
                                           input_shape=(KID_IMAGE_SIZE, KID_IMAGE_SIZE, 3))
    seeded_weights(model, rng)
    write_weights(model, args.weights)

    n = BATCH * NUM_BATCHES
    real = make_images(rng, n, 4)
    generated = make_images(rng, n, 8)
    encoder = kid_encoder(args.weights)
    # the file Keras read gives the weights that were written
    for a, b in zip(encoder.layers[3].weights, model.weights):
        assert np.array_equal(a.numpy(), b.numpy()), a.name
    fr = encoder(real, training=False).numpy()
    fg = encoder(generated, training=False).numpy()
    tracker = keras.metrics.Mean()  # the example's kid_tracker
    per_batch = []
    for i in range(NUM_BATCHES):
        s = slice(i * BATCH, (i + 1) * BATCH)
        k = kid_batch(fr[s], fg[s])
        per_batch.append(float(k))
        tracker.update_state(k)
    # a set against itself (same images as real and generated), for the C test's sanity
    self_kid = float(kid_batch(fr[:BATCH], fr[:BATCH]))
    resized = layers.Resizing(KID_IMAGE_SIZE, KID_IMAGE_SIZE)(real[:2]).numpy()
    with h5py.File(args.reference, "w") as f:
        f.attrs["batch_size"] = BATCH
        f.attrs["kid"] = float(tracker.result())
        f.attrs["kid_self"] = self_kid
        f.attrs["tensorflow_version"] = tf.__version__
        for name, v in [("real", real), ("generated", generated), ("features_real", fr),
                        ("features_generated", fg), ("kid_batches", np.array(per_batch)),
                        ("resized_real", resized)]:
            f.create_dataset(name, data=np.asarray(v, np.float32), compression="gzip")
    print(f"features: mean {fr.mean():.4g} std {fr.std():.4g} max {fr.max():.4g}; "
          f"kid per batch {per_batch}, kid {float(tracker.result()):.6g}, self {self_kid:.3g}")


if __name__ == "__main__":
    main()
