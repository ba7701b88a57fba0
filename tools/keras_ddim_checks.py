"""Independent checks of the Keras semantics for tools/keras_reference.py.

A float64 numpy forward of the network, direct probes of UpSampling2D(bilinear)
and of the BatchNormalization moving variance, and the NOTES list in which every
verified claim is recorded (stored in the fixture as /notes).
"""

import math

from keras_ddim_model import EMBEDDING_MAX_FREQUENCY, layers  # before tensorflow

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

NOTES = []


def note(text):
    NOTES.append(text)
    print("NOTE:", text)


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
