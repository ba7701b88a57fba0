#!/usr/bin/env python3
"""Produce a Keras reference fixture (HDF5) for ddim-dist.

Rebuilds the network and the training / sampling logic of the Keras code
example "Denoising Diffusion Implicit Models" (András Béres, 2022) with Keras 2
semantics (tf_keras), gives every weight an explicit, stable layer name, fills
all weights with non-trivial random values, runs ONE training step with given
noises and diffusion times and the DDIM sampler for a few step counts, and
stores inputs, intermediate values, gradients and the weights before and after
the step.  See tests/data/README.md for the file layout and the semantics
that were verified here.

Usage:
  python3 tools/keras_reference.py --preset small --out tests/data/keras_small.h5
  python3 tools/keras_reference.py --preset full  --out /tmp/keras_full.h5
  python3 tools/keras_reference.py --out PATH [--image-size N --widths 8,16,24
      --block-depth D --embedding-dims E --batch B --num-samples N --seed S]
"""

import argparse
import math
import os
import sys

# Keras 2 semantics, deterministic kernels, CPU only, quiet logs. All of this
# must happen before tensorflow is imported.
os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ["TF_DETERMINISTIC_OPS"] = "1"
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import h5py  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf_keras  # noqa: E402
from tensorflow import keras  # noqa: E402  (tf_keras because of the env var)

layers = keras.layers

PRESETS = {
    "small": dict(image_size=16, widths=[8, 16, 24], block_depth=2,
                  embedding_dims=8, batch=4, num_samples=3, seed=1234,
                  # the seed's 1e-4 moves a weight by w*1e-7 in one step, below float32
                  # noise; a larger decay makes the decoupled decay visible to the test
                  weight_decay=0.02),
    "full": dict(image_size=64, widths=[32, 64, 96, 128], block_depth=2,
                 embedding_dims=32, batch=16, num_samples=4, seed=1234),
}

# Hyperparameters of the seed that the command line does not change (but WEIGHT_DECAY,
# which a preset or --weight-decay may set).
EMBEDDING_MAX_FREQUENCY = 1000.0
MIN_SIGNAL_RATE = 0.02
MAX_SIGNAL_RATE = 0.95
EMA = 0.999
LEARNING_RATE = 1e-3
WEIGHT_DECAY = 1e-4
SAMPLER_STEPS = (1, 2, 5)

NOTES = []


def note(text):
    NOTES.append(text)
    print("NOTE:", text)


# --------------------------------------------------------------------------
# network (same structure as the seed's get_network, with explicit names)
# --------------------------------------------------------------------------

def sinusoidal_embedding(x, embedding_dims, embedding_max_frequency):
    # frequencies log-spaced from 1 to max, evaluated on the noise variance
    embedding_min_frequency = 1.0
    frequencies = tf.exp(
        tf.linspace(
            tf.math.log(embedding_min_frequency),
            tf.math.log(embedding_max_frequency),
            embedding_dims // 2,
        )
    )
    angular_speeds = 2.0 * math.pi * frequencies
    return tf.concat(
        [tf.sin(angular_speeds * x), tf.cos(angular_speeds * x)], axis=3
    )


def residual_block(x, width, name):
    if x.shape[3] == width:
        residual = x
    else:
        residual = layers.Conv2D(width, kernel_size=1, name=name + "_skip")(x)
    x = layers.BatchNormalization(center=False, scale=False, name=name + "_bn")(x)
    x = layers.Conv2D(width, kernel_size=3, padding="same",
                      activation=keras.activations.swish,
                      name=name + "_conv1")(x)
    x = layers.Conv2D(width, kernel_size=3, padding="same",
                      name=name + "_conv2")(x)
    return layers.Add(name=name + "_add")([x, residual])


def build_network(image_size, widths, block_depth, embedding_dims):
    noisy_images = keras.Input(shape=(image_size, image_size, 3),
                               name="noisy_images")
    noise_variances = keras.Input(shape=(1, 1, 1), name="noise_variances")

    e = layers.Lambda(
        sinusoidal_embedding,
        arguments=dict(embedding_dims=embedding_dims,
                       embedding_max_frequency=EMBEDDING_MAX_FREQUENCY),
        name="embedding",
    )(noise_variances)
    e = layers.UpSampling2D(size=image_size, interpolation="nearest",
                            name="embedding_upsample")(e)

    x = layers.Conv2D(widths[0], kernel_size=1, name="stem")(noisy_images)
    x = layers.Concatenate(name="stem_concat")([x, e])

    skips = []
    for level, width in enumerate(widths[:-1]):          # DownBlock
        for j in range(block_depth):
            x = residual_block(x, width, "down%d_block%d" % (level, j))
            skips.append(x)
        x = layers.AveragePooling2D(pool_size=2, name="down%d_pool" % level)(x)

    for j in range(block_depth):                         # middle
        x = residual_block(x, widths[-1], "mid_block%d" % j)

    for level in reversed(range(len(widths) - 1)):       # UpBlock
        width = widths[level]
        x = layers.UpSampling2D(size=2, interpolation="bilinear",
                                name="up%d_upsample" % level)(x)
        for j in range(block_depth):
            x = layers.Concatenate(name="up%d_block%d_concat" % (level, j))(
                [x, skips.pop()])
            x = residual_block(x, width, "up%d_block%d" % (level, j))

    x = layers.Conv2D(3, kernel_size=1, kernel_initializer="zeros",
                      name="head")(x)
    return keras.Model([noisy_images, noise_variances], x, name="residual_unet")


# --------------------------------------------------------------------------
# the seed's DiffusionModel, with train_step taking noises/times as inputs
# --------------------------------------------------------------------------

def _clone_layer(layer):
    # clone_model's default, except that the Lambda keeps its Python function
    # object (its serialised bytecode would lose this module's globals when the
    # module is imported rather than run).
    if isinstance(layer, layers.Lambda):
        return layers.Lambda(layer.function, arguments=layer.arguments,
                             name=layer.name)
    return layer.__class__.from_config(layer.get_config())


class DiffusionModel(keras.Model):
    def __init__(self, image_size, widths, block_depth, embedding_dims):
        super().__init__()
        self.image_size = image_size
        self.normalizer = layers.Normalization()
        self.network = build_network(image_size, widths, block_depth,
                                     embedding_dims)
        self.ema_network = keras.models.clone_model(
            self.network, clone_function=_clone_layer)

    def compile(self, **kwargs):
        super().compile(**kwargs)
        self.noise_loss_tracker = keras.metrics.Mean(name="n_loss")
        self.image_loss_tracker = keras.metrics.Mean(name="i_loss")

    def denormalize(self, images):
        images = self.normalizer.mean + images * self.normalizer.variance ** 0.5
        return tf.clip_by_value(images, 0.0, 1.0)

    def diffusion_schedule(self, diffusion_times):
        start_angle = tf.acos(MAX_SIGNAL_RATE)
        end_angle = tf.acos(MIN_SIGNAL_RATE)
        diffusion_angles = start_angle + diffusion_times * (end_angle - start_angle)
        signal_rates = tf.cos(diffusion_angles)
        noise_rates = tf.sin(diffusion_angles)
        return noise_rates, signal_rates

    def denoise(self, noisy_images, noise_rates, signal_rates, training):
        network = self.network if training else self.ema_network
        pred_noises = network([noisy_images, noise_rates ** 2], training=training)
        pred_images = (noisy_images - noise_rates * pred_noises) / signal_rates
        return pred_noises, pred_images

    def reverse_diffusion(self, initial_noise, diffusion_steps):
        num_images = initial_noise.shape[0]
        step_size = 1.0 / diffusion_steps
        next_noisy_images = initial_noise
        for step in range(diffusion_steps):
            noisy_images = next_noisy_images
            diffusion_times = tf.ones((num_images, 1, 1, 1)) - step * step_size
            noise_rates, signal_rates = self.diffusion_schedule(diffusion_times)
            pred_noises, pred_images = self.denoise(
                noisy_images, noise_rates, signal_rates, training=False)
            next_diffusion_times = diffusion_times - step_size
            next_noise_rates, next_signal_rates = self.diffusion_schedule(
                next_diffusion_times)
            next_noisy_images = (next_signal_rates * pred_images
                                 + next_noise_rates * pred_noises)
        return pred_images

    def train_step_given(self, images, noises, diffusion_times):
        """The seed's train_step, with noises and (B,1,1,1) times given."""
        images = self.normalizer(images, training=True)
        noise_rates, signal_rates = self.diffusion_schedule(diffusion_times)
        noisy_images = signal_rates * images + noise_rates * noises

        with tf.GradientTape() as tape:
            pred_noises, pred_images = self.denoise(
                noisy_images, noise_rates, signal_rates, training=True)
            noise_loss = self.loss(noises, pred_noises)   # shape (B,S,S)
            image_loss = self.loss(images, pred_images)

        gradients = tape.gradient(noise_loss, self.network.trainable_weights)
        self.optimizer.apply_gradients(
            zip(gradients, self.network.trainable_weights))

        self.noise_loss_tracker.update_state(noise_loss)
        self.image_loss_tracker.update_state(image_loss)

        for weight, ema_weight in zip(self.network.weights,
                                      self.ema_network.weights):
            ema_weight.assign(EMA * ema_weight + (1 - EMA) * weight)

        return dict(
            normalized_images=images, noise_rates=noise_rates,
            signal_rates=signal_rates, noisy_images=noisy_images,
            pred_noises=pred_noises, pred_images=pred_images,
            noise_loss_raw=noise_loss,
            noise_loss=self.noise_loss_tracker.result(),
            image_loss=self.image_loss_tracker.result(),
            gradients=gradients,
        )


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------

def weight_key(variable):
    # "down0_block0_conv1/kernel:0" -> "kernel"
    return variable.name.split("/")[-1].split(":")[0]


def layers_with_weights(network):
    return [l for l in network.layers if l.weights]


def bf16_round(a):
    """Round float32 values to the nearest bfloat16-representable value.

    Only used for the random values we make up (initial weights, noises): the
    low 16 mantissa bits become zero, so gzip can halve them and the committed
    fixture stays about 1 MB. They are still ordinary float32 numbers.
    """
    u = np.asarray(a, np.float32).view(np.uint32).astype(np.uint64)
    u = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16) << 16
    return u.astype(np.uint32).view(np.float32)


def randomize(network, rng):
    """Non-trivial random values for every weight (head included)."""
    for layer in layers_with_weights(network):
        for v in layer.weights:
            key = weight_key(v)
            shape = tuple(v.shape)
            if key == "kernel":
                kh, kw, cin, cout = shape
                std = math.sqrt(2.0 / (kh * kw * (cin + cout)))
                val = rng.normal(0.0, std, shape)
            elif key == "bias":
                val = rng.normal(0.0, 0.05, shape)
            elif key == "moving_mean":
                val = rng.normal(0.0, 0.1, shape)
            elif key == "moving_variance":
                val = rng.uniform(0.5, 1.5, shape)
            else:
                raise RuntimeError("unexpected weight %s" % v.name)
            v.assign(bf16_round(val))


def snapshot(network):
    return {layer.name: {weight_key(v): v.numpy().copy() for v in layer.weights}
            for layer in layers_with_weights(network)}


def smooth_images(rng, n, size):
    """Smooth random RGB images in [0, 1]: a few random low-frequency waves."""
    yy, xx = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    out = np.empty((n, size, size, 3), np.float64)
    for i in range(n):
        for c in range(3):
            img = np.full((size, size), rng.uniform(0.3, 0.7))
            for _ in range(3):
                fy, fx = rng.integers(0, 4, 2)
                phase = rng.uniform(0, 2 * math.pi)
                amp = rng.uniform(0.05, 0.25)
                img += amp * np.cos(2 * math.pi * (fy * yy + fx * xx) / size + phase)
            out[i, :, :, c] = img
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def maxdiff(a, b):
    return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))


def numpy_forward(wts, noisy, noise_var, training, widths, block_depth,
                  embedding_dims, emb=None):
    """Independent float64 numpy forward of the network (sanity check).

    emb: optional (B, embedding_dims) embedding to use instead of computing it
    in float64 from noise_var (the high-frequency channels are ill-conditioned).
    """
    def conv(x, name, swish=False):
        k = wts[name]["kernel"].astype(np.float64)
        b = wts[name]["bias"].astype(np.float64)
        kh, p = k.shape[0], k.shape[0] // 2
        h, w = x.shape[1:3]
        xp = np.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
        out = b + sum(np.einsum("nhwc,cd->nhwd", xp[:, dy:dy + h, dx:dx + w], k[dy, dx])
                      for dy in range(kh) for dx in range(kh))
        return out / (1.0 + np.exp(-out)) if swish else out

    def bn(x, name):
        if training:
            mean, var = x.mean(axis=(0, 1, 2)), x.var(axis=(0, 1, 2))
        else:
            mean = wts[name]["moving_mean"].astype(np.float64)
            var = wts[name]["moving_variance"].astype(np.float64)
        return (x - mean) / np.sqrt(var + 1e-3)

    def block(x, width, name):
        res = x if x.shape[3] == width else conv(x, name + "_skip")
        h = conv(bn(x, name + "_bn"), name + "_conv1", swish=True)
        return conv(h, name + "_conv2") + res

    def up2(x, axis):
        n = x.shape[axis]
        idx = np.arange(n)
        prev = np.take(x, np.maximum(idx - 1, 0), axis=axis)
        nxt = np.take(x, np.minimum(idx + 1, n - 1), axis=axis)
        even = 0.25 * prev + 0.75 * x
        odd = 0.75 * x + 0.25 * nxt
        return np.stack([even, odd], axis=axis + 1).reshape(
            x.shape[:axis] + (2 * n,) + x.shape[axis + 1:])

    size = noisy.shape[1]
    if emb is None:
        emb = numpy_forward_embedding(noise_var, embedding_dims)
    e = np.asarray(emb, np.float64).reshape(-1, 1, 1, embedding_dims)
    e = np.broadcast_to(e, (e.shape[0], size, size, embedding_dims))
    x = np.concatenate([conv(noisy.astype(np.float64), "stem"), e], axis=3)
    skips = []
    for level, width in enumerate(widths[:-1]):
        for j in range(block_depth):
            x = block(x, width, "down%d_block%d" % (level, j))
            skips.append(x)
        b_, h_, w_, c_ = x.shape
        x = x.reshape(b_, h_ // 2, 2, w_ // 2, 2, c_).mean(axis=(2, 4))
    for j in range(block_depth):
        x = block(x, widths[-1], "mid_block%d" % j)
    for level in reversed(range(len(widths) - 1)):
        x = up2(up2(x, 1), 2)
        for j in range(block_depth):
            x = np.concatenate([x, skips.pop()], axis=3)
            x = block(x, widths[level], "up%d_block%d" % (level, j))
    return conv(x, "head")


def numpy_forward_embedding(noise_var, embedding_dims):
    freqs = np.exp(np.linspace(0.0, math.log(EMBEDDING_MAX_FREQUENCY),
                               embedding_dims // 2))
    v = np.asarray(noise_var, np.float64).reshape(-1, 1)
    return np.concatenate([np.sin(2 * math.pi * freqs * v),
                           np.cos(2 * math.pi * freqs * v)], axis=1)


def upsampling_check():
    """How UpSampling2D(bilinear) samples: half-pixel centres, edge clamp."""
    x = np.arange(2 * 3 * 4 * 2, dtype=np.float32).reshape(2, 3, 4, 2) ** 1.5
    y = layers.UpSampling2D(size=2, interpolation="bilinear")(x).numpy()

    def ref(x, half_pixel):
        n, h, w, c = x.shape
        out = np.zeros((n, 2 * h, 2 * w, c), np.float64)
        for oy in range(2 * h):
            for ox in range(2 * w):
                if half_pixel:
                    sy, sx = (oy + 0.5) / 2 - 0.5, (ox + 0.5) / 2 - 0.5
                else:
                    sy, sx = oy / 2.0, ox / 2.0
                sy, sx = max(sy, 0.0), max(sx, 0.0)
                y0, x0 = int(math.floor(sy)), int(math.floor(sx))
                y1, x1 = min(y0 + 1, h - 1), min(x0 + 1, w - 1)
                ly, lx = sy - y0, sx - x0
                out[:, oy, ox] = ((1 - ly) * ((1 - lx) * x[:, y0, x0] + lx * x[:, y0, x1])
                                  + ly * ((1 - lx) * x[:, y1, x0] + lx * x[:, y1, x1]))
        return out

    d_half = maxdiff(y, ref(x, True))
    d_asym = maxdiff(y, ref(x, False))
    print("upsampling bilinear: maxdiff half-pixel %.3g, asymmetric %.3g"
          % (d_half, d_asym))
    assert d_half < 1e-5 * np.abs(x).max() < d_asym, (d_half, d_asym)
    note("UpSampling2D(size=2, bilinear) == tf.image.resize bilinear with "
         "half-pixel centres: src = (dst + 0.5)/2 - 0.5, clamped below at 0 and "
         "neighbour index clamped to size-1; for 2x this means output pixel 2i "
         "= 0.25*x[i-1] + 0.75*x[i] and 2i+1 = 0.75*x[i] + 0.25*x[i+1] with "
         "x[-1]:=x[0], x[n]:=x[n-1] (separably in y and x). "
         "maxdiff vs numpy half-pixel %.3g (vs the asymmetric src = dst/2 "
         "variant: %.3g)." % (d_half, d_asym))


def bn_variance_direct_check(rng):
    """Tiny direct check: does the BN moving variance use n/(n-1)?"""
    bn = layers.BatchNormalization(center=False, scale=False)
    x = rng.normal(0.5, 2.0, (2, 3, 3, 4)).astype(np.float32)
    bn.build(x.shape)
    mm0 = rng.normal(0, 0.1, 4).astype(np.float32)
    mv0 = rng.uniform(0.5, 1.5, 4).astype(np.float32)
    results = {}
    for mode in ("eager", "tf.function"):
        bn.moving_mean.assign(mm0)
        bn.moving_variance.assign(mv0)
        if mode == "eager":
            y = bn(x, training=True).numpy()
        else:
            y = tf.function(lambda t: bn(t, training=True))(x).numpy()
        xm = x.astype(np.float64)
        n = xm.shape[0] * xm.shape[1] * xm.shape[2]
        mean = xm.mean(axis=(0, 1, 2))
        var_b = xm.var(axis=(0, 1, 2))
        var_u = var_b * n / (n - 1)
        mv = bn.moving_variance.numpy()
        mm = bn.moving_mean.numpy()
        d_u = maxdiff(mv, 0.99 * mv0 + 0.01 * var_u)
        d_b = maxdiff(mv, 0.99 * mv0 + 0.01 * var_b)
        d_m = maxdiff(mm, 0.99 * mm0 + 0.01 * mean)
        d_y = maxdiff(y, (xm - mean) / np.sqrt(var_b + 1e-3))
        d_yu = maxdiff(y, (xm - mean) / np.sqrt(var_u + 1e-3))
        print("BN direct (%s, n=%d): moving_var diff unbiased %.3g biased %.3g; "
              "moving_mean diff %.3g; output diff biased %.3g unbiased %.3g"
              % (mode, n, d_u, d_b, d_m, d_y, d_yu))
        assert d_u < 1e-6 < d_b, (d_u, d_b)
        assert d_y < 1e-5 < d_yu, (d_y, d_yu)
        assert d_m < 1e-6
        results[mode] = (d_u, d_b)
    note("BatchNormalization (Keras 2 fused, training): the output is normalised "
         "with the BIASED batch variance (divide by n, n = B*H*W) plus eps=1e-3, "
         "but moving_variance is updated with the UNBIASED (Bessel-corrected, "
         "n/(n-1)) batch variance: mv = 0.99*mv + 0.01*var*n/(n-1); moving_mean = "
         "0.99*mm + 0.01*mean. Direct check on a (2,3,3,4) tensor, eager and "
         "tf.function: maxdiff unbiased/biased hypotheses %s." % results)


# --------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--preset", choices=sorted(PRESETS))
    ap.add_argument("--image-size", type=int)
    ap.add_argument("--widths")
    ap.add_argument("--block-depth", type=int)
    ap.add_argument("--embedding-dims", type=int)
    ap.add_argument("--batch", type=int)
    ap.add_argument("--num-samples", type=int)
    ap.add_argument("--seed", type=int)
    ap.add_argument("--weight-decay", type=float)
    args = ap.parse_args()

    cfg = dict(PRESETS[args.preset or "small"])
    for key in ("image_size", "block_depth", "embedding_dims", "batch",
                "num_samples", "seed"):
        if getattr(args, key) is not None:
            cfg[key] = getattr(args, key)
    if args.widths:
        cfg["widths"] = [int(w) for w in args.widths.split(",")]
    global WEIGHT_DECAY
    WEIGHT_DECAY = cfg.get("weight_decay", WEIGHT_DECAY)
    if args.weight_decay is not None:
        WEIGHT_DECAY = args.weight_decay
    S, widths, D = cfg["image_size"], cfg["widths"], cfg["block_depth"]
    E, B, N, seed = cfg["embedding_dims"], cfg["batch"], cfg["num_samples"], cfg["seed"]
    assert S % (2 ** (len(widths) - 1)) == 0, "image size must divide by 2^(L-1)"
    assert E % 2 == 0

    print("tensorflow", tf.__version__, "tf_keras", tf_keras.__version__,
          "keras module", keras.__name__, "numpy", np.__version__,
          "h5py", h5py.__version__)
    assert keras.__name__.startswith("tf_keras"), "Keras 2 (tf_keras) required"
    print("config", cfg)

    tf.keras.backend.set_floatx("float32")
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
    rng = np.random.default_rng(seed)

    # ---- inputs -----------------------------------------------------------
    images = smooth_images(rng, B, S)
    noises = bf16_round(rng.standard_normal((B, S, S, 3)))
    diffusion_times = rng.uniform(0.0, 1.0, (B,)).astype(np.float32)
    initial_noise = bf16_round(rng.standard_normal((N, S, S, 3)))

    # ---- model --------------------------------------------------------------
    model = DiffusionModel(S, widths, D, E)
    model.compile(
        optimizer=keras.optimizers.AdamW(learning_rate=LEARNING_RATE,
                                         weight_decay=WEIGHT_DECAY),
        loss=keras.losses.mean_absolute_error,
    )
    opt = model.optimizer
    assert model.loss is keras.losses.mean_absolute_error
    model.normalizer.adapt(images, batch_size=B)   # one batch
    norm_mean = model.normalizer.mean.numpy().reshape(3)
    norm_var = model.normalizer.variance.numpy().reshape(3)
    d = maxdiff(norm_mean, images.astype(np.float64).mean(axis=(0, 1, 2)))
    d2 = maxdiff(norm_var, images.astype(np.float64).var(axis=(0, 1, 2)))
    print("normalizer vs numpy biased mean/var: %.3g %.3g" % (d, d2))
    assert d < 1e-5 and d2 < 1e-4 * float(norm_var.max()), (d, d2)

    net, ema_net = model.network, model.ema_network
    names = [l.name for l in layers_with_weights(net)]
    assert names == [l.name for l in layers_with_weights(ema_net)]
    assert [v.name for v in net.weights] == [v.name for v in ema_net.weights]
    randomize(net, rng)
    randomize(ema_net, rng)
    w_before = snapshot(net)
    ema_before = snapshot(ema_net)
    kinds = sorted({k for ws in w_before.values() for k in ws})
    assert kinds == ["bias", "kernel", "moving_mean", "moving_variance"], kinds
    n_params = sum(int(np.prod(v.shape)) for v in net.trainable_weights)
    print("layers with weights:", len(names), "trainable params:", n_params)

    # ---- sampler (EMA network, weights before the step, inference mode) ----
    # Run as a tf.function (graph mode, like the seed's test_step/KID path and
    # model.fit): there Grappler turns x**2 into an exact float32 square and
    # x**0.5 into sqrt, whereas eager tf.pow(x, 2.0) can be 1 ulp off x*x.
    @tf.function
    def generate(noise, k):
        pred = model.reverse_diffusion(noise, k)
        return pred, model.denormalize(pred)

    sampler = {}
    for k in SAMPLER_STEPS:
        pred, imgs = generate(tf.constant(initial_noise), k)
        sampler[k] = (pred.numpy(), imgs.numpy())
    assert maxdiff(snapshot(ema_net)["down0_block0_bn"]["moving_variance"],
                   ema_before["down0_block0_bn"]["moving_variance"]) == 0.0

    times4 = tf.constant(diffusion_times.reshape(B, 1, 1, 1))

    # ---- check pass: gradient of the non-scalar loss, BN inputs -----------
    all_before = net.get_weights()
    bn_names = [n for n in names if n.endswith("_bn")]
    probe = keras.Model(net.inputs, [net.get_layer(n).input for n in bn_names])

    @tf.function
    def check_pass(images, noises, times):
        x = model.normalizer(images, training=True)
        nr, sr = model.diffusion_schedule(times)
        noisy = sr * x + nr * noises
        with tf.GradientTape(persistent=True) as tape:
            pn = net([noisy, nr ** 2], training=True)
            loss = keras.losses.mean_absolute_error(noises, pn)
            loss_sum = tf.reduce_sum(loss)
            loss_mean = tf.reduce_mean(loss)
        g_raw = tape.gradient(loss, net.trainable_weights)
        g_sum = tape.gradient(loss_sum, net.trainable_weights)
        g_mean = tape.gradient(loss_mean, net.trainable_weights)
        del tape
        bn_in = probe([noisy, nr ** 2], training=True)
        return loss, g_raw, g_sum, g_mean, bn_in

    loss_c, g_raw, g_sum, g_mean, bn_in = check_pass(
        tf.constant(images), tf.constant(noises), times4)
    assert tuple(loss_c.shape) == (B, S, S), loss_c.shape
    d_sum = max(maxdiff(a, b) for a, b in zip(g_raw, g_sum))
    scale = max(float(np.abs(a.numpy()).max()) for a in g_raw)
    d_mean = max(maxdiff(a, b.numpy() * (B * S * S)) for a, b in zip(g_raw, g_mean))
    rel_mean = d_mean / scale
    print("grad(non-scalar loss) vs grad(sum): %.3g; vs grad(mean)*B*S*S: %.3g "
          "(rel %.3g)" % (d_sum, d_mean, rel_mean))
    assert d_sum <= 1e-6 * scale and rel_mean < 1e-5
    note("tape.gradient(noise_loss, ...) with noise_loss = mean_absolute_error"
         "(noises, pred_noises) of shape (B,S,S) equals the gradient of its SUM: "
         "maxdiff vs grad(reduce_sum) %.3g, vs grad(reduce_mean)*B*S*S=%d %.3g "
         "(max |grad| %.3g). So the C code must use d(loss)/d(pred_noise) = "
         "sign(pred - noise)/3 per element (the 1/3 is the channel mean), NOT "
         "divided by B*S*S. The stored /forward/noise_loss is the MEAN (as the "
         "Mean tracker reports)." % (d_sum, B * S * S, d_mean, scale))
    bn_in = [t.numpy().astype(np.float64) for t in bn_in]
    net.set_weights(all_before)
    assert maxdiff(snapshot(net)["down0_block0_bn"]["moving_variance"],
                   w_before["down0_block0_bn"]["moving_variance"]) == 0.0

    # ---- the training step (graph mode, as under model.fit) ----------------
    assert int(opt.iterations.numpy()) == 0
    step = tf.function(model.train_step_given)
    out = step(tf.constant(images), tf.constant(noises), times4)
    assert int(opt.iterations.numpy()) == 1
    fwd = {k: v.numpy() for k, v in out.items() if k != "gradients"}
    grads_list = [g.numpy() for g in out["gradients"]]
    w_after = snapshot(net)
    ema_after = snapshot(ema_net)

    # grads keyed by layer / weight
    owner = {id(v): layer.name for layer in layers_with_weights(net)
             for v in layer.weights}
    grads = {}
    for v, g in zip(net.trainable_weights, grads_list):
        grads.setdefault(owner[id(v)], {})[weight_key(v)] = g
    assert sorted(grads) == sorted(n for n in names if not n.endswith("_bn"))
    d = max(maxdiff(a, b) for a, b in zip(grads_list, g_raw))
    print("step grads vs check-pass grads: %.3g" % d)

    # losses: the trackers report the mean over all elements
    assert abs(float(fwd["noise_loss"]) - fwd["noise_loss_raw"].astype(np.float64).mean()) < 1e-6
    d = maxdiff(fwd["noise_loss_raw"],
                np.abs(noises - fwd["pred_noises"]).astype(np.float64).mean(axis=-1))
    assert d < 1e-6, d

    # normalizer: (x - mean) / max(sqrt(var), 1e-7)
    d = maxdiff(fwd["normalized_images"],
                (images - norm_mean) / np.maximum(np.sqrt(norm_var), 1e-7))
    print("normalized images vs numpy: %.3g" % d)
    assert d < 1e-5

    # BN moving statistics: biased vs unbiased, from the real network's numbers
    worst_u, best_b, decided = 0.0, float("inf"), 0
    bn_stats = {}
    for n, x in zip(bn_names, bn_in):
        cnt = x.shape[0] * x.shape[1] * x.shape[2]
        mean = x.mean(axis=(0, 1, 2))
        var_b = x.var(axis=(0, 1, 2))
        var_u = var_b * cnt / (cnt - 1)
        mv0 = w_before[n]["moving_variance"].astype(np.float64)
        mv1 = w_after[n]["moving_variance"]
        err_u = maxdiff(mv1, 0.99 * mv0 + 0.01 * var_u) / float(np.abs(mv1).max())
        err_b = maxdiff(mv1, 0.99 * mv0 + 0.01 * var_b) / float(np.abs(mv1).max())
        worst_u = max(worst_u, err_u)
        best_b = min(best_b, err_b)
        decided += err_b > 10 * err_u
        mm = 0.99 * w_before[n]["moving_mean"].astype(np.float64) + 0.01 * mean
        assert maxdiff(w_after[n]["moving_mean"], mm) < 1e-5
        bn_stats[n] = (mean.astype(np.float32), var_b.astype(np.float32))
    print("network BN moving_variance rel err: unbiased worst %.3g, biased best "
          "%.3g; %d of %d layers clearly favour unbiased"
          % (worst_u, best_b, decided, len(bn_names)))
    assert worst_u < 1e-6 and decided >= 1, (worst_u, decided)
    note("In the real step every BN layer's new moving_variance matches "
         "0.99*mv + 0.01*unbiased_batch_var (worst rel err %.3g); the biased "
         "hypothesis is off by >= %.3g (the gap is 0.01*var/(n-1), so it is "
         "only visible where n = B*H*W is small; %d of %d layers decide it)."
         % (worst_u, best_b, decided, len(bn_names)))

    # AdamW: decay first (w -= w*wd*lr), then the Adam step, epsilon outside sqrt
    worst = 0.0
    for n in grads:
        for k, g in grads[n].items():
            w0 = w_before[n][k].astype(np.float64)
            g = g.astype(np.float64)
            w = w0 - w0 * WEIGHT_DECAY * LEARNING_RATE
            m = 0.1 * g
            v = 0.001 * g * g
            alpha = LEARNING_RATE * math.sqrt(1 - 0.999) / (1 - 0.9)
            w = w - m * alpha / (np.sqrt(v) + 1e-7)
            worst = max(worst, maxdiff(w_after[n][k], w))
    print("AdamW numpy recompute maxdiff: %.3g" % worst)
    assert worst < 1e-6
    note("AdamW (tf_keras 2.21 keras.optimizers.AdamW, fresh state, step t=1): "
         "for every trainable variable (kernels AND biases, no exclusions) first "
         "w -= w*weight_decay*lr (decoupled decay, uses the pre-update w), then "
         "m += (g-m)*(1-b1); v += (g^2-v)*(1-b2); alpha = lr*sqrt(1-b2^t)/(1-b1^t); "
         "w -= m*alpha/(sqrt(v)+eps) with eps=1e-7 OUTSIDE the bias correction. "
         "numpy recompute maxdiff %.3g." % worst)

    # EMA over network.weights (including BN moving stats), after the update
    worst = 0.0
    for n in names:
        for k in w_after[n]:
            e = EMA * ema_before[n][k].astype(np.float64) + (1 - EMA) * w_after[n][k]
            worst = max(worst, maxdiff(ema_after[n][k], e))
    print("EMA numpy recompute maxdiff: %.3g" % worst)
    assert worst < 1e-6

    # sampler: denormalize = clip(mean + x*sqrt(var), 0, 1)
    for k in SAMPLER_STEPS:
        p, im = sampler[k]
        d = maxdiff(im, np.clip(norm_mean + p * np.sqrt(norm_var), 0, 1))
        assert d < 1e-6, d

    # the embedding exactly as the Lambda layer computes it (float32)
    emb_model = keras.Model(net.inputs, net.get_layer("embedding").output)
    nr = fwd["noise_rates"].reshape(B)
    nvar32 = fwd["noise_rates"] * fwd["noise_rates"]   # exact float32 square
    embedding = emb_model([fwd["noisy_images"], nvar32]).numpy().reshape(B, E)
    angular_speeds = (2.0 * math.pi * tf.exp(tf.linspace(
        tf.math.log(1.0), tf.math.log(EMBEDDING_MAX_FREQUENCY), E // 2))).numpy()
    emb32 = np.concatenate([np.sin(angular_speeds * nvar32.reshape(B, 1)),
                            np.cos(angular_speeds * nvar32.reshape(B, 1))], axis=1)
    d_emb32 = maxdiff(embedding, emb32)
    emb64 = numpy_forward_embedding(nr.astype(np.float64) ** 2, E)
    d_emb64 = maxdiff(embedding, emb64)
    print("embedding vs float32-argument sin/cos %.3g, vs float64 %.3g"
          % (d_emb32, d_emb64))
    assert d_emb32 < 1e-6

    # independent numpy forward: training mode (batch statistics) and the
    # EMA network in inference mode (first sampler step, t = 1)
    pn = numpy_forward(w_before, fwd["noisy_images"], None, True, widths, D, E,
                       emb=embedding)
    d_train = maxdiff(pn, fwd["pred_noises"]) / float(np.abs(pn).max())
    pn64 = numpy_forward(w_before, fwd["noisy_images"], nr.astype(np.float64) ** 2,
                         True, widths, D, E)
    d_train64 = maxdiff(pn64, fwd["pred_noises"]) / float(np.abs(pn).max())
    t1 = np.ones((N, 1, 1, 1), np.float32)
    nr1, sr1 = (t.numpy() for t in model.diffusion_schedule(tf.constant(t1)))
    emb1 = emb_model([initial_noise, nr1 ** 2]).numpy().reshape(N, E)
    pn1 = numpy_forward(ema_before, initial_noise, None, False, widths, D, E,
                        emb=emb1)
    pi1 = (initial_noise - nr1 * pn1) / sr1
    d_inf = maxdiff(pi1, sampler[1][0]) / float(np.abs(pi1).max())
    print("numpy forward vs Keras, rel maxdiff: training %.3g (with a float64 "
          "embedding: %.3g), inference/sampler %.3g" % (d_train, d_train64, d_inf))
    assert d_train < 1e-4 and d_inf < 2e-5, (d_train, d_inf)
    note("An independent float64 numpy forward (conv same-padding, swish, BN, "
         "2x2 average pooling, half-pixel bilinear 2x upsampling, concat order "
         "[upsampled, skip] and [stem, embedding], sinusoidal embedding [sin, cos] "
         "of the noise VARIANCE) fed with Keras' float32 embedding reproduces "
         "/forward/pred_noises (BN on batch stats) to rel %.3g and "
         "/sampler/steps_1/pred_images (EMA net, BN on moving stats) to rel %.3g."
         % (d_train, d_inf))
    note("EMBEDDING CONDITIONING: angular speeds reach 2*pi*1000, so the top "
         "embedding channels are very sensitive to float32 rounding of the "
         "argument: Keras computes freqs = exp(linspace(log 1, log %g, E/2)) in "
         "float32 (linspace = start + i*((stop-start)/(n-1)), endpoints exact), "
         "angular = float32(2*pi)*freqs, arg = angular*float32(noise_rate^2), "
         "then sinf/cosf: reproducing that in float32 matches Keras' embedding to "
         "%.3g, whereas a float64 embedding differs by %.3g and moves "
         "pred_noises by rel %.3g. A 1-ulp difference in noise_rate (sinf of the "
         "schedule angle) already moves the top channel by ~1e-3. Stored: "
         "/forward/embedding_angular_speeds, /forward/embedding; tests that must be "
         "tight can feed /forward/noise_rates instead of recomputing them."
         % (EMBEDDING_MAX_FREQUENCY, d_emb32, d_emb64, d_train64))

    upsampling_check()
    bn_variance_direct_check(rng)
    note("Normalization (Keras 2): adapt() stores the biased mean/variance over "
         "all pixels of all images per channel (here: adapted on /inputs/images, "
         "one batch); call() = (x - mean)/max(sqrt(variance), 1e-7) "
         "(backend.epsilon, a max, not added); denormalize = clip(mean + "
         "x*sqrt(variance), 0, 1).")
    note("Loss = keras.losses.mean_absolute_error: mean over the last (channel) "
         "axis only -> shape (B,S,S); the Mean trackers then average it over all "
         "B*S*S elements.")
    note("The sampler's times are float32: t = ones - step*(1/k) (python double "
         "step*step_size rounded to float32 once), next t = t - float32(1/k); the "
         "last next-time is ~0 (may be a tiny negative). Angles: start = "
         "acos(float32 0.95), end = acos(float32 0.02), angle = start + t*(end-start).")
    note("POW: eager tf.pow(x, 2.0) (x**2) is not always the correctly rounded "
         "float32 x*x (1 ulp off for some inputs), while inside tf.function "
         "(model.fit's train_step, and this script's sampler) Grappler rewrites "
         "x**2 to Square (= x*x exactly) and x**0.5 to Sqrt. All stored values "
         "come from graph mode, so C should use x*x and sqrtf. Because of the "
         "embedding's conditioning, the eager 1-ulp difference alone moves the "
         "full-size pred_noises by ~1e-4 relative.")
    note("EMA: ema_w = 0.999*ema_w + (1-0.999)*w over network.weights in order "
         "(kernels, biases AND BN moving_mean/moving_variance), using the weights "
         "after the AdamW update and after the BN moving-stat update of this step.")
    note("Initial weights are random (not the seed's initializers); the head is "
         "random, not zero, so the gradients through the whole net are non-trivial. "
         "The random initial weights, noises and initial sampler noise are rounded "
         "to bfloat16-representable float32 values only to make the file compress; "
         "they are used as float32 everywhere.")

    # ---- write --------------------------------------------------------------
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    # libver v110 (HDF5 >= 1.10 reads it): far less per-dataset overhead than
    # the default v1.8-compatible format for a file with ~400 small datasets.
    # No object timestamps, so the same seed gives a byte-identical file.
    fapl = h5py.h5p.create(h5py.h5p.FILE_ACCESS)
    fapl.set_libver_bounds(h5py.h5f.LIBVER_V110, h5py.h5f.LIBVER_V110)
    fcpl = h5py.h5p.create(h5py.h5p.FILE_CREATE)
    fcpl.set_obj_track_times(False)
    gcpl = h5py.h5p.create(h5py.h5p.GROUP_CREATE)
    gcpl.set_obj_track_times(False)
    fid = h5py.h5f.create(os.fsencode(args.out), h5py.h5f.ACC_TRUNC,
                          fcpl=fcpl, fapl=fapl)
    with h5py.File(fid) as f:
        def group(path):
            cur = ""
            for part in path.split("/"):
                cur = cur + "/" + part if cur else part
                if cur not in f:
                    h5py.h5g.create(f.id, cur.encode(), gcpl=gcpl)
            return f[path]

        def put(path, arr):
            arr = np.asarray(arr)
            if arr.dtype.kind == "f":
                arr = arr.astype(np.float32)
            if "/" in path:
                group(path.rsplit("/", 1)[0])
            if arr.ndim == 0:
                f.create_dataset(path, data=arr, track_times=False)
            else:
                f.create_dataset(path, data=arr, compression="gzip",
                                 compression_opts=9, shuffle=True,
                                 track_times=False)

        c = group("config")
        c.attrs["image_size"] = np.int32(S)
        c.attrs["widths"] = np.array(widths, np.int32)
        c.attrs["block_depth"] = np.int32(D)
        c.attrs["embedding_dims"] = np.int32(E)
        c.attrs["embedding_max_frequency"] = np.float32(EMBEDDING_MAX_FREQUENCY)
        c.attrs["min_signal_rate"] = np.float32(MIN_SIGNAL_RATE)
        c.attrs["max_signal_rate"] = np.float32(MAX_SIGNAL_RATE)
        c.attrs["batch_size"] = np.int32(B)
        c.attrs["num_sample_images"] = np.int32(N)
        c.attrs["learning_rate"] = np.float32(LEARNING_RATE)
        c.attrs["weight_decay"] = np.float32(WEIGHT_DECAY)
        c.attrs["ema"] = np.float32(EMA)
        c.attrs["bn_momentum"] = np.float32(0.99)
        c.attrs["bn_epsilon"] = np.float32(1e-3)
        c.attrs["adam_beta_1"] = np.float32(opt.beta_1)
        c.attrs["adam_beta_2"] = np.float32(opt.beta_2)
        c.attrs["adam_epsilon"] = np.float32(opt.epsilon)
        c.attrs["normalizer_epsilon"] = np.float32(1e-7)
        c.attrs["loss"] = "mae"
        c.attrs["seed"] = np.int32(seed)
        c.attrs["sampler_steps"] = np.array(SAMPLER_STEPS, np.int32)
        c.attrs["tf_version"] = tf.__version__
        c.attrs["keras_version"] = "tf_keras " + tf_keras.__version__
        c.attrs["python_version"] = sys.version.split()[0]
        c.attrs["numpy_version"] = np.__version__
        c.attrs["h5py_version"] = h5py.__version__
        c.attrs["layer_names"] = np.array(names, dtype=h5py.string_dtype())
        c.attrs["trainable_weight_order"] = np.array(
            [v.name for v in net.trainable_weights], dtype=h5py.string_dtype())

        put("normalizer/mean", norm_mean)
        put("normalizer/variance", norm_var)
        for top, ws in (("weights", w_before), ("ema_weights", ema_before),
                     ("grads", grads),
                     ("after_step/weights", w_after),
                     ("after_step/ema_weights", ema_after)):
            for n in (n for n in names if n in ws):
                for k in sorted(ws[n]):
                    put("%s/%s/%s" % (top, n, k), ws[n][k])

        put("inputs/images", images)
        put("inputs/noises", noises)
        put("inputs/diffusion_times", diffusion_times)

        put("forward/normalized_images", fwd["normalized_images"])
        put("forward/noise_rates", fwd["noise_rates"].reshape(B))
        put("forward/signal_rates", fwd["signal_rates"].reshape(B))
        put("forward/noisy_images", fwd["noisy_images"])
        put("forward/pred_noises", fwd["pred_noises"])
        put("forward/pred_images", fwd["pred_images"])
        put("forward/embedding_angular_speeds", angular_speeds)
        put("forward/embedding", embedding)
        put("forward/noise_loss", np.float32(fwd["noise_loss"]))
        put("forward/image_loss", np.float32(fwd["image_loss"]))
        for n, (mean, var) in bn_stats.items():
            put("forward/bn_batch_mean/%s" % n, mean)
            put("forward/bn_batch_variance/%s" % n, var)

        put("sampler/initial_noise", initial_noise)
        for k in SAMPLER_STEPS:
            put("sampler/steps_%d/pred_images" % k, sampler[k][0])
            put("sampler/steps_%d/images" % k, sampler[k][1])

        f.create_dataset("notes", data="\n".join(NOTES),
                         dtype=h5py.string_dtype(), track_times=False)
    print("wrote", args.out, os.path.getsize(args.out), "bytes")


if __name__ == "__main__":
    main()
