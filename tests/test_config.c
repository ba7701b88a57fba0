/* test_config.c: the run configuration: the Keras example's defaults, the shipped configs,
 * every kind of bad input (each message must name the file, the line and the key), --set
 * overrides, the cross-field checks, and write -> load giving back the identical struct. */
#define _POSIX_C_SOURCE 200809L /* mkdtemp */

#include "config.h"
#include "test_util.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond))                                                                               \
            test_fail(__VA_ARGS__);                                                                \
    } while (0)

static char tmpdir[256];

static const char *write_file(const char *name, const char *text)
{
    static char path[8][512];
    static int next;
    char *p = path[next++ % 8];
    snprintf(p, 512, "%s/%s", tmpdir, name);
    FILE *f = fopen(p, "w");
    if (!f) {
        test_fail("cannot write %s", p);
        return p;
    }
    fputs(text, f);
    fclose(f);
    return p;
}

/* Name of the first field that differs (floats bit for bit), or NULL. */
static const char *first_difference(const struct run_config *a, const struct run_config *b)
{
#define SAME(f)                                                                                    \
    if (memcmp(&a->f, &b->f, sizeof a->f))                                                         \
        return #f;
#define SAME_STR(f)                                                                                \
    if (strcmp(a->f, b->f))                                                                        \
        return #f;
    SAME_STR(data_path) SAME(dataset_repetitions) SAME_STR(resident);
    SAME(model.image_size) SAME(model.num_levels) SAME(model.widths) SAME(model.block_depth);
    SAME(model.embedding_dims) SAME(model.embedding_min_frequency);
    SAME(model.embedding_max_frequency) SAME(model.bn_momentum) SAME(model.bn_epsilon);
    SAME(diffusion.min_signal_rate) SAME(diffusion.max_signal_rate) SAME(diffusion.loss);
    SAME(diffusion.learning_rate) SAME(diffusion.weight_decay) SAME(diffusion.adam_beta1);
    SAME(diffusion.adam_beta2) SAME(diffusion.adam_epsilon) SAME(diffusion.ema);
    SAME(diffusion.seed) SAME(num_epochs) SAME(batch_size) SAME(max_steps);
    SAME(kid_image_size) SAME(kid_diffusion_steps) SAME(plot_diffusion_steps);
    SAME(plot_rows) SAME(plot_cols) SAME_STR(inception_weights) SAME_STR(run_dir);
    SAME_STR(backend) SAME(progress_seconds) SAME_STR(cuda_graph) SAME(allreduce_bucket_mib);
    return NULL;
#undef SAME
#undef SAME_STR
}

static void test_defaults(void)
{
    struct run_config c;
    config_defaults(&c);
    static const int widths[UNET_MAX_LEVELS] = {32, 64, 96, 128};
    CHECK(!strcmp(c.data_path, "data/flowers64.h5"), "data.path default %s", c.data_path);
    CHECK(c.dataset_repetitions == 5 && c.model.image_size == 64 && c.model.num_levels == 4 &&
              !memcmp(c.model.widths, widths, sizeof widths) && c.model.block_depth == 2 &&
              c.model.embedding_dims == 32,
          "model shape defaults");
    CHECK(c.model.embedding_min_frequency == 1.0f && c.model.embedding_max_frequency == 1000.0f &&
              c.model.bn_momentum == 0.99f && c.model.bn_epsilon == 0.001f,
          "model float defaults");
    CHECK(c.diffusion.min_signal_rate == 0.02f && c.diffusion.max_signal_rate == 0.95f,
          "signal rate defaults");
    CHECK(c.num_epochs == 1 && c.batch_size == 64 && c.max_steps == 0, "train count defaults");
    CHECK(c.diffusion.learning_rate == 1e-3f && c.diffusion.weight_decay == 1e-4f &&
              c.diffusion.adam_beta1 == 0.9f && c.diffusion.adam_beta2 == 0.999f &&
              c.diffusion.adam_epsilon == 1e-7f && c.diffusion.ema == 0.999f &&
              c.diffusion.loss == LOSS_MAE && c.diffusion.seed == 42,
          "optimizer defaults");
    CHECK(c.kid_image_size == 75 && c.kid_diffusion_steps == 5 && c.plot_diffusion_steps == 20 &&
              c.plot_rows == 3 && c.plot_cols == 6 && !strcmp(c.inception_weights, ""),
          "eval defaults");
    CHECK(!strcmp(c.run_dir, "runs/ddim") && !strcmp(c.backend, "auto") &&
              c.progress_seconds == 5.0,
          "run defaults");
    char err[1024];
    CHECK(config_check(&c, err, sizeof err) == 0, "defaults fail the check: %s", err);
}

static void test_shipped(void)
{
    struct run_config c, d;
    char err[1024] = "";
    config_defaults(&c);
    int rc = config_load_yaml(&c, "configs/flowers64.yaml", err, sizeof err);
    CHECK(rc == 0, "configs/flowers64.yaml: %s", err);
    CHECK(rc || config_check(&c, err, sizeof err) == 0, "flowers64 check: %s", err);
    /* the seed's run: the defaults except 50 epochs and its own run directory */
    config_defaults(&d);
    d.num_epochs = 50;
    snprintf(d.run_dir, sizeof d.run_dir, "runs/flowers64");
    const char *diff = first_difference(&c, &d);
    CHECK(!diff, "flowers64.yaml differs from the seed's values in %s", diff);

    config_defaults(&c);
    rc = config_load_yaml(&c, "configs/quickstart.yaml", err, sizeof err);
    CHECK(rc == 0, "configs/quickstart.yaml: %s", err);
    CHECK(rc || config_check(&c, err, sizeof err) == 0, "quickstart check: %s", err);
    CHECK(c.model.image_size == 32 && c.model.num_levels == 3 && c.model.widths[2] == 48 &&
              c.model.widths[3] == 0 && !strcmp(c.data_path, "data/synthetic.h5"),
          "quickstart values");
}

struct bad_file {
    const char *text;
    int line;           /* expected in the message as ":line:" (0: no line) */
    const char *key;    /* expected in the message */
    const char *expect; /* expected in the message */
};

static const struct bad_file bad_files[] = {
    {"train:\n  batchsize: 32\n", 2, "train.batchsize", "did you mean train.batch_size?"},
    {"# moved\nmodel:\n  batch_size: 3\n", 3, "model.batch_size", "did you mean train.batch_size?"},
    {"train:\n  epochs: 3\n", 2, "train.epochs", "did you mean train.num_epochs?"},
    {"train:\n  lr: 3\n", 2, "train.lr", "keys in train: num_epochs, batch_size"},
    {"data:\n  path: x\ntrian:\n  seed: 3\n", 3, "trian", "did you mean \"train\"?"},
    {"batch_size: 3\n", 1, "batch_size", "did you mean train.batch_size"},
    {"train:\n  batch_size: sixty-four\n", 2, "train.batch_size",
     "expected an integer in [1, 1048576], got \"sixty-four\""},
    {"train:\n  batch_size: 64.5\n", 2, "train.batch_size", "expected an integer"},
    {"train:\n  batch_size: \"64\"\n", 2, "train.batch_size", "remove the quotes"},
    {"train:\n  batch_size: [64]\n", 2, "train.batch_size", "got a list"},
    {"train:\n  batch_size:\n", 2, "train.batch_size", "got nothing"},
    {"train:\n  learning_rate: fast\n", 2, "train.learning_rate", "expected a number in (0, 10]"},
    {"model:\n  widths: 32\n", 2, "model.widths", "expected a list of 2 to 8 integers"},
    {"model:\n  widths:\n    - 32\n    - x\n", 4, "model.widths[1]", "got \"x\""},
    {"model:\n  widths: [1,2,3,4,5,6,7,8,9]\n", 2, "model.widths", "got a list of 9"},
    {"train:\n  loss: huber\n", 2, "train.loss", "expected one of mae, mse, got \"huber\""},
    {"run:\n  backend: tpu\n", 2, "run.backend", "one of auto, cpu, cuda"},
    {"run:\n  cuda_graph: yes\n", 2, "run.cuda_graph", "one of auto, on, off"},
    {"train:\n  seed: -1\n", 2, "train.seed", "expected an integer in [0, 1844"},
    {"eval:\n  kid_image_size: 64\n", 2, "eval.kid_image_size", "in [75, 1024], got \"64\""},
    {"model:\n  bn_momentum: 1.0\n", 2, "model.bn_momentum", "in [0, 1), got \"1.0\""},
    {"diffusion:\n  min_signal_rate: 0\n", 2, "diffusion.min_signal_rate", "in (0, 1)"},
    {"run:\n  progress_seconds: .nan\n", 2, "run.progress_seconds", "a number in [0, 86400]"},
    {"data:\n  path: \"\"\n", 2, "data.path", "a non-empty string"},
    {"train:\n  batch_size: 32\n  seed: 1\n  batch_size: 16\n", 4, "train.batch_size",
     "duplicate key (first given on line 2)"},
    {"train:\n  seed: 1\neval:\n  plot_rows: 2\ntrain:\n  seed: 2\n", 5, "train",
     "duplicate section (first given on line 1)"},
    {"train: 5\n", 1, "train", "expected a mapping of keys"},
    {"- train\n", 1, "", "expected a mapping of sections"},
    {"train:\n  batch_size: 32\n  seed: 1: 2\n", 3, "", "YAML syntax error"},
    {"train:\n  batch_size: [32, 64\n", 3, "", "YAML syntax error"},
    {"train:\n\tseed: 1\n", 2, "", "YAML syntax error"},
    {"train:\n  seed: 1\n---\ntrain:\n  seed: 2\n", 4, "", "found a second one"},
};

static void test_bad_files(void)
{
    char name[64], want_line[600], err[2048];
    int n = (int)(sizeof bad_files / sizeof bad_files[0]);
    for (int i = 0; i < n; i++) {
        const struct bad_file *b = &bad_files[i];
        snprintf(name, sizeof name, "bad%02d.yaml", i);
        const char *path = write_file(name, b->text);
        struct run_config c, before;
        config_defaults(&c);
        before = c;
        err[0] = 0;
        int rc = config_load_yaml(&c, path, err, sizeof err);
        snprintf(want_line, sizeof want_line, "%s:%d: ", path, b->line);
        CHECK(rc == -1, "case %d (%s): loads (rc %d)", i, b->key, rc);
        CHECK(strstr(err, want_line) && strstr(err, b->key) && strstr(err, b->expect),
              "case %d: message \"%s\" lacks \"%s\", \"%s\" or \"%s\"", i, err, want_line, b->key,
              b->expect);
        const char *diff = first_difference(&c, &before);
        CHECK(!diff, "case %d: a failed load changed %s", i, diff);
        printf("  %s\n", err);
    }
    /* a missing file */
    char missing[600];
    snprintf(missing, sizeof missing, "%s/no-such.yaml", tmpdir);
    struct run_config c;
    config_defaults(&c);
    CHECK(config_load_yaml(&c, missing, err, sizeof err) == -1 && strstr(err, missing) &&
              strstr(err, "No such file"),
          "missing file: \"%s\"", err);
    CHECK(config_load_yaml(&c, tmpdir, err, sizeof err) == -1 && strstr(err, tmpdir),
          "a directory: \"%s\"", err);
    /* files without a setting are refused, naming the file (a wrong file, or one cut off) */
    const char *empty[] = {"", "# only a comment\n", "\n\n", "---\n"};
    for (int i = 0; i < 4; i++) {
        snprintf(name, sizeof name, "empty%d.yaml", i);
        const char *path = write_file(name, empty[i]);
        CHECK(config_load_yaml(&c, path, err, sizeof err) == -1 && strstr(err, path) &&
                  strstr(err, "the configuration file is empty"),
              "empty file %d: \"%s\"", i, err);
    }
    /* sections without a key change nothing */
    const char *bare[] = {"eval:\n", "eval: ~\nrun:\n"};
    for (int i = 0; i < 2; i++) {
        struct run_config d;
        config_defaults(&d);
        snprintf(name, sizeof name, "bare%d.yaml", i);
        CHECK(config_load_yaml(&c, write_file(name, bare[i]), err, sizeof err) == 0,
              "bare sections %d: %s", i, err);
        CHECK(!first_difference(&c, &d), "bare sections %d changed the config", i);
    }
}

static void test_set(void)
{
    struct run_config c;
    char err[2048] = "";
    config_defaults(&c);
    CHECK(config_set(&c, "train.batch_size=32", err, sizeof err) == 0 && c.batch_size == 32,
          "--set batch_size: %s", err);
    CHECK(config_set(&c, " model.widths = [8,16]", err, sizeof err) == 0 &&
              c.model.num_levels == 2 && c.model.widths[0] == 8 && c.model.widths[1] == 16 &&
              c.model.widths[2] == 0,
          "--set widths: %s", err);
    CHECK(config_set(&c, "train.loss=mse", err, sizeof err) == 0 && c.diffusion.loss == LOSS_MSE,
          "--set loss: %s", err);
    CHECK(config_set(&c, "train.seed=18446744073709551615", err, sizeof err) == 0 &&
              c.diffusion.seed == UINT64_MAX,
          "--set seed: %s", err);
    CHECK(config_set(&c, "train.learning_rate=2e-4", err, sizeof err) == 0 &&
              c.diffusion.learning_rate == 2e-4f,
          "--set learning_rate: %s", err);
    CHECK(config_set(&c, "run.dir=runs/a=b", err, sizeof err) == 0 &&
              !strcmp(c.run_dir, "runs/a=b"),
          "--set run.dir: %s", err);
    CHECK(config_set(&c, "eval.inception_weights=w.h5", err, sizeof err) == 0 &&
              config_set(&c, "eval.inception_weights=", err, sizeof err) == 0 &&
              !strcmp(c.inception_weights, ""),
          "--set inception_weights empty: %s", err);

    char long_path[CONFIG_PATH_MAX + 32] = "data.path=";
    memset(long_path + 10, 'a', CONFIG_PATH_MAX);
    CHECK(config_set(&c, long_path, err, sizeof err) == -1 &&
              strstr(err, "data.path: expected a non-empty string of at most 1023 bytes"),
          "--set a path too long: \"%s\"", err);

    static const char *bad[][3] = {
        {"train.batch_size=abc", "train.batch_size", "expected an integer in [1, 1048576]"},
        {"train.batchsize=3", "train.batchsize", "did you mean train.batch_size?"},
        {"batch_size=3", "batch_size", "did you mean train.batch_size?"},
        {"model.widths=7", "model.widths", "expected a list"},
        {"eval.kid_image_size=10", "eval.kid_image_size", "[75, 1024]"},
        {"train.seed=[1, 2", "train.seed", "YAML syntax error"},
        {"train.seed=1\n---\n2", "train.seed", "found a second one"},
        {"train.batch_size", "train.batch_size", "expected section.key=value"},
    };
    for (int i = 0; i < (int)(sizeof bad / sizeof bad[0]); i++) {
        struct run_config before = c;
        int rc = config_set(&c, bad[i][0], err, sizeof err);
        CHECK(rc == -1 && !strncmp(err, "--set: ", 7) && strstr(err, bad[i][1]) &&
                  strstr(err, bad[i][2]),
              "--set %s: rc %d, message \"%s\"", bad[i][0], rc, err);
        CHECK(!first_difference(&c, &before), "a failed --set %s changed the config", bad[i][0]);
        printf("  %s\n", err);
    }
}

/* write -> load must give back the identical struct; load onto defaults so that a key
 * the writer left out would show up as a difference. */
static void roundtrip(const struct run_config *c, const char *name)
{
    char path[600], err[2048] = "";
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "w");
    if (!f) {
        test_fail("cannot write %s", path);
        return;
    }
    config_write_yaml(c, f);
    fclose(f);
    struct run_config back;
    config_defaults(&back);
    CHECK(config_load_yaml(&back, path, err, sizeof err) == 0, "%s does not load: %s", path, err);
    const char *diff = first_difference(c, &back);
    CHECK(!diff, "%s: write -> load changed %s", path, diff);

    /* every key line carries a comment */
    f = fopen(path, "r");
    char line[8192];
    int keys = 0;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "  ", 2)) {
            keys++;
            CHECK(strstr(line, " # ") != NULL, "%s: key without a comment: %s", path, line);
        }
    if (f)
        fclose(f);
    CHECK(keys == 40, "%s: %d keys written, expected 40", path, keys);
}

static void test_roundtrip(void)
{
    struct run_config c;
    config_defaults(&c);
    roundtrip(&c, "defaults.yaml");

    /* every field away from its default, with values that are hard to print exactly */
    snprintf(c.data_path, sizeof c.data_path, "d/a \"q\" #x: y\\z\t[1].h5");
    c.dataset_repetitions = 2;
    snprintf(c.resident, sizeof c.resident, "off");
    c.model.image_size = 48;
    c.model.num_levels = 5;
    memcpy(c.model.widths, (int[]){8, 16, 24, 40, 48}, 5 * sizeof(int));
    c.model.block_depth = 3;
    c.model.embedding_dims = 18;
    c.model.embedding_min_frequency = 0.1f;
    c.model.embedding_max_frequency = 1234.5678f;
    c.model.bn_momentum = nextafterf(1.0f, 0.0f);
    c.model.bn_epsilon = 1e-5f / 3;
    c.diffusion.min_signal_rate = 1.0f / 3;
    c.diffusion.max_signal_rate = 0.9f;
    c.diffusion.learning_rate = 3e-4f;
    c.diffusion.weight_decay = 0;
    c.diffusion.adam_beta1 = 0.8f;
    c.diffusion.adam_beta2 = 0.99f;
    c.diffusion.adam_epsilon = 1e-8f;
    c.diffusion.ema = 1.0f;
    c.diffusion.loss = LOSS_MSE;
    c.diffusion.seed = UINT64_MAX;
    c.num_epochs = 7;
    c.batch_size = 5;
    c.max_steps = 123456789012L;
    c.kid_image_size = 299;
    c.kid_diffusion_steps = 9;
    c.plot_diffusion_steps = 11;
    c.plot_rows = 1;
    c.plot_cols = 64;
    snprintf(c.inception_weights, sizeof c.inception_weights, "w/inception.h5");
    snprintf(c.run_dir, sizeof c.run_dir, "runs/ümlaut & 'x'");
    snprintf(c.backend, sizeof c.backend, "cuda");
    c.progress_seconds = 0.1 + 0.2;
    c.resume = RESUME_FORCE;
    c.divergence_factor = 1.0 / 3;
    c.collective_timeout_s = 0.5;
    snprintf(c.cuda_graph, sizeof c.cuda_graph, "off");
    c.allreduce_bucket_mib = 0.25;
    char err[1024];
    CHECK(config_check(&c, err, sizeof err) == 0, "modified config fails the check: %s", err);
    roundtrip(&c, "modified.yaml");
}

static void expect_check_error(const struct run_config *c, const char *what, const char *want)
{
    char err[1024] = "";
    int rc = config_check(c, err, sizeof err);
    CHECK(rc == -1 && strstr(err, want), "check %s: rc %d, message \"%s\" lacks \"%s\"", what, rc,
          err, want);
}

static void test_check(void)
{
    struct run_config d, c;
    config_defaults(&d);
    c = d, c.model.image_size = 60;
    expect_check_error(&c, "image_size vs widths", "model.image_size: 60 must be");
    c = d, c.model.embedding_dims = 33;
    expect_check_error(&c, "odd embedding", "model.embedding_dims");
    c = d, c.diffusion.min_signal_rate = 0.9f, c.diffusion.max_signal_rate = 0.5f;
    expect_check_error(&c, "signal rates", "diffusion: signal rates");
    c = d, c.batch_size = 0;
    expect_check_error(&c, "batch_size 0",
                       "train.batch_size: expected an integer in [1, 1048576], "
                       "got 0");
    c = d, c.diffusion.loss = (enum loss_kind)7;
    expect_check_error(&c, "loss", "train.loss: expected one of mae, mse, got 7");
    c = d, snprintf(c.backend, sizeof c.backend, "tpu");
    expect_check_error(&c, "backend", "run.backend: expected one of auto, cpu, cuda");
    c = d, c.data_path[0] = 0;
    expect_check_error(&c, "empty data path", "data.path");
    c = d, c.kid_image_size = 64;
    expect_check_error(&c, "kid_image_size", "eval.kid_image_size");
    c = d, c.model.num_levels = 1;
    expect_check_error(&c, "one level", "model.widths");
    c = d, c.model.embedding_min_frequency = 2000;
    expect_check_error(&c, "frequency order", "model.embedding_min_frequency");
    c = d, c.plot_rows = 0;
    expect_check_error(&c, "plot rows", "eval.plot_rows");
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/test_config_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_defaults();
    test_shipped();
    test_bad_files();
    test_set();
    test_roundtrip();
    test_check();
    if (!test_failures()) { /* keep the files of a failed run for a look */
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", tmpdir);
    } else {
        fprintf(stderr, "test files kept in %s\n", tmpdir);
    }
    return test_finish("test_config");
}
