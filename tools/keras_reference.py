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

The Keras model itself (network, DiffusionModel, train step, sampler) is in
keras_ddim_model.py, the independent numpy / direct checks in
keras_ddim_checks.py; this script makes the inputs and weights, runs the
step and the sampler, checks the results and writes the file.

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

import h5py
import numpy as np

# The model module sets Keras 2 semantics, deterministic kernels, CPU only and quiet
# logs before it imports tensorflow, so it comes first.
from keras_ddim_model import (  # noqa: E402
    EMA, EMBEDDING_MAX_FREQUENCY, MAX_SIGNAL_RATE, MIN_SIGNAL_RATE,
    DiffusionModel, layers_with_weights, snapshot, weight_key)
from keras_ddim_checks import (  # noqa: E402
    NOTES, bn_variance_direct_check, maxdiff, note, numpy_forward,
    numpy_forward_embedding, upsampling_check)

import tensorflow as tf  # noqa: E402
import tf_keras  # noqa: E402
from tensorflow import keras  # noqa: E402  (tf_keras because of the env var)

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
# which a preset or --weight-decay may set); the model's own are in keras_ddim_model.
LEARNING_RATE = 1e-3
WEIGHT_DECAY = 1e-4
SAMPLER_STEPS = (1, 2, 5)


# --------------------------------------------------------------------------
# made-up inputs and weights
# --------------------------------------------------------------------------

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
