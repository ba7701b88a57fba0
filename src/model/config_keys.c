/* config_keys.c: the table of configuration keys, the one home of every setting: a row is a
 * key's YAML name, type, place in struct run_config, default (as the YAML file writes it),
 * bounds and doc line. The defaults are the Keras example's. Everything else reads them from
 * here: config_defaults, the loader and its checks (config_yaml.c, config.c), the YAML
 * writer, ddim-dist --help and the key list in docs/config.md (ddim-dist --list-keys). */
#include "config_keys.h"

#include <string.h>

_Static_assert(sizeof(enum loss_kind) == sizeof(int), "KEY_ENUM stores enums as int");
_Static_assert(sizeof(enum resume_mode) == sizeof(int), "KEY_ENUM stores enums as int");

#define OFF(f) offsetof(struct run_config, f)
#define SIZE(f) sizeof(((struct run_config *)0)->f)
/* (name, field, default, bounds..., doc line) */
#define K_INT(n, f, d, lo, hi, h)                                                                  \
    {                                                                                              \
        .name = n, .type = KEY_INT, .off = OFF(f), .def = d, .min = lo, .max = hi, .help = h       \
    }
#define K_NUM(n, t, f, d, lo, hi, o, h)                                                            \
    {                                                                                              \
        .name = n, .type = t, .off = OFF(f), .def = d, .min = lo, .max = hi, .open = o, .help = h  \
    }
#define K_STR(n, f, d, least, ch, h)                                                               \
    {                                                                                              \
        .name = n, .type = KEY_STRING, .off = OFF(f), .cap = SIZE(f), .def = d, .min = least,      \
        .choices = ch, .help = h                                                                   \
    }

enum { OPEN_LO = KEY_MIN_OPEN, OPEN_HI = KEY_MAX_OPEN, OPEN_BOTH = KEY_MIN_OPEN | KEY_MAX_OPEN };

/* Sections appear in this order when written; keys within a section in table order. */
const struct config_key config_keys[] = {
    K_STR("data.path", data_path, "data/flowers64.h5", 1, NULL, "HDF5 dataset made by ddim-prep"),
    K_INT("data.dataset_repetitions", dataset_repetitions, "5", 1, 1000,
          "passes over the training split per epoch"),
    K_STR("data.resident", resident, "auto", 0, "auto|on|off",
          "keep the training and validation images in backend memory (auto: on with the CUDA "
          "backend)"),

    K_INT("model.image_size", model.image_size, "64", 1, 4096,
          "square images; a multiple of 2^(levels-1)"),
    {.name = "model.widths",
     .type = KEY_INT_LIST,
     .off = OFF(model.widths),
     .cap = UNET_MAX_LEVELS,
     .count_off = OFF(model.num_levels),
     .min_count = 2,
     .def = "[32, 64, 96, 128]",
     .min = 1,
     .max = 4096,
     .help = "channels per U-Net level; the last is the middle"},
    K_INT("model.block_depth", model.block_depth, "2", 1, 16, "residual blocks per level"),
    K_INT("model.embedding_dims", model.embedding_dims, "32", 2, 4096,
          "sinusoidal noise-variance embedding size (even)"),
    K_NUM("model.embedding_min_frequency", KEY_FLOAT, model.embedding_min_frequency, "1.0", 0, 1e6,
          OPEN_LO, "lowest embedding frequency"),
    K_NUM("model.embedding_max_frequency", KEY_FLOAT, model.embedding_max_frequency, "1000.0", 0,
          1e6, OPEN_LO, "highest embedding frequency (at least the lowest)"),
    K_NUM("model.bn_momentum", KEY_FLOAT, model.bn_momentum, "0.99", 0, 1, OPEN_HI,
          "BatchNormalization moving-average momentum (Keras's default)"),
    K_NUM("model.bn_epsilon", KEY_FLOAT, model.bn_epsilon, "0.001", 0, 1, OPEN_LO,
          "BatchNormalization epsilon (Keras's default)"),

    K_NUM("diffusion.min_signal_rate", KEY_FLOAT, diffusion.min_signal_rate, "0.02", 0, 1,
          OPEN_BOTH, "signal rate at diffusion time 1 (pure noise end)"),
    K_NUM("diffusion.max_signal_rate", KEY_FLOAT, diffusion.max_signal_rate, "0.95", 0, 1,
          OPEN_BOTH, "signal rate at diffusion time 0 (image end); above the minimum"),

    K_INT("train.num_epochs", num_epochs, "1", 1, 1000000,
          "epochs; the example's code says 1 and asks for at least 50 for good results"),
    K_INT("train.batch_size", batch_size, "64", 1, 1048576, "global batch, split across ranks"),
    K_NUM("train.learning_rate", KEY_FLOAT, diffusion.learning_rate, "0.001", 0, 10, OPEN_LO,
          "AdamW learning rate"),
    K_NUM("train.weight_decay", KEY_FLOAT, diffusion.weight_decay, "0.0001", 0, 1, 0,
          "AdamW decoupled weight decay (scaled by the learning rate)"),
    K_NUM("train.adam_beta_1", KEY_FLOAT, diffusion.adam_beta1, "0.9", 0, 1, OPEN_HI,
          "Adam first-moment decay"),
    K_NUM("train.adam_beta_2", KEY_FLOAT, diffusion.adam_beta2, "0.999", 0, 1, OPEN_HI,
          "Adam second-moment decay"),
    K_NUM("train.adam_epsilon", KEY_FLOAT, diffusion.adam_epsilon, "1e-07", 0, 1, OPEN_LO,
          "Adam epsilon (Keras's default)"),
    K_NUM("train.ema", KEY_FLOAT, diffusion.ema, "0.999", 0, 1, 0,
          "EMA momentum of the sampling network"),
    {.name = "train.loss",
     .type = KEY_ENUM,
     .off = OFF(diffusion.loss),
     .def = "mae",
     .choices = "mae|mse", /* the order of enum loss_kind */
     .help = "noise loss: mean absolute or mean squared error"},
    {.name = "train.seed",
     .type = KEY_U64,
     .off = OFF(diffusion.seed),
     .def = "42",
     .help = "keys every random stream"},
    K_NUM("train.max_steps", KEY_LONG, max_steps, "0", 0, 1e15, 0,
          "stop after this many steps in total (0: no limit)"),
    {.name = "train.resume",
     .type = KEY_ENUM,
     .off = OFF(resume),
     .def = "auto",
     .choices = "auto|never|force", /* the order of enum resume_mode */
     .help = "auto: continue from run.dir/checkpoint.h5 if any; never: refuse if one exists; "
             "force: continue even with settings that change the training"},
    K_NUM("train.divergence_factor", KEY_DOUBLE, divergence_factor, "20.0", 0, 1e12, 0,
          "stop when the noise loss exceeds this times the median of the last 50 steps (0: off)"),

    K_INT("eval.kid_image_size", kid_image_size, "75", 75, 1024,
          "KID resizes images to this (InceptionV3 needs >= 75)"),
    K_INT("eval.kid_diffusion_steps", kid_diffusion_steps, "5", 1, 10000,
          "sampling steps for KID images"),
    K_INT("eval.kid_every", kid_every, "1", 0, 1000000,
          "validation KID every this many epochs; 0: never"),
    K_INT("eval.plot_diffusion_steps", plot_diffusion_steps, "20", 1, 10000,
          "sampling steps for image grids"),
    K_INT("eval.plot_rows", plot_rows, "3", 1, 64, "rows of the image grid"),
    K_INT("eval.plot_cols", plot_cols, "6", 1, 64, "columns of the image grid"),
    K_STR("eval.inception_weights", inception_weights, "", 0, NULL,
          "Keras InceptionV3 notop .h5; empty: no KID"),

    K_STR("run.dir", run_dir, "runs/ddim", 1, NULL, "everything a run writes goes here"),
    K_STR("run.backend", backend, "auto", 0, "auto|cpu|cuda",
          "auto: CUDA if a GPU works, else CPU"),
    K_STR("run.cuda_graph", cuda_graph, "auto", 0, "auto|on|off",
          "capture the whole training step once as a CUDA graph and replay it (auto: on where "
          "it works: the CUDA backend, one rank or several over NCCL)"),
    K_NUM("run.progress_seconds", KEY_DOUBLE, progress_seconds, "5.0", 0, 86400, 0,
          "seconds between progress lines"),
    K_NUM("run.collective_timeout_s", KEY_DOUBLE, collective_timeout_s, "600.0", 0, 604800, 0,
          "end the job when a rank does not reach a collective within this (0: wait forever)"),
    K_NUM("run.allreduce_bucket_mib", KEY_DOUBLE, allreduce_bucket_mib, "1.0", 0, 65536, 0,
          "several ranks: all-reduce the gradient in buckets of this many MiB while the backward "
          "pass runs (0: in one piece after it; docs/perf.md); the same bits either way"),
    K_STR("run.tensorboard", tensorboard, "on", 0, "on|off",
          "rank 0 writes TensorBoard event files in run.dir: tensorboard --logdir <its parent>"),
};
const int config_num_keys = (int)(sizeof config_keys / sizeof config_keys[0]);

const struct config_key *config_key_find(const char *name)
{
    for (int i = 0; i < config_num_keys; i++)
        if (!strcmp(config_keys[i].name, name))
            return &config_keys[i];
    return NULL;
}
