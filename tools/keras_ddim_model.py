"""The Keras model of the DDIM code example, as tools/keras_reference.py runs it.

The network (the seed's get_network, every layer with an explicit, stable name),
the seed's DiffusionModel with a train_step that takes the noises and diffusion
times as inputs, the DDIM sampler, and access to the weights by those names.
Keras 2 semantics (tf_keras): importing this module sets the environment that
TensorFlow reads at import time, so import it before tensorflow.
"""

import math
import os

# Keras 2 semantics, deterministic kernels (unless the importer said otherwise:
# tools/compare_cpu_step.py times the example as it runs, without), CPU only, quiet
# logs. All of this must happen before tensorflow is imported.
os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_DETERMINISTIC_OPS", "1")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402
from tensorflow import keras  # noqa: E402  (tf_keras because of the env var)

layers = keras.layers

# Hyperparameters of the seed used by the model (the command line does not change them).
EMBEDDING_MAX_FREQUENCY = 1000.0
MIN_SIGNAL_RATE = 0.02
MAX_SIGNAL_RATE = 0.95
EMA = 0.999


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
# weights by stable name
# --------------------------------------------------------------------------

def weight_key(variable):
    # "down0_block0_conv1/kernel:0" -> "kernel"
    return variable.name.split("/")[-1].split(":")[0]


def layers_with_weights(network):
    return [l for l in network.layers if l.weights]


def snapshot(network):
    return {layer.name: {weight_key(v): v.numpy().copy() for v in layer.weights}
            for layer in layers_with_weights(network)}
