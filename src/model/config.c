/* config.c: the table of configuration keys (the one place a key is declared), the Keras
 * example's defaults, the range and cross-field checks, did-you-mean suggestions and the
 * YAML writer. Reading YAML lives in src/model/config_yaml.c and uses the same table. */
#include "config_keys.h"

#include "util.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(sizeof(enum loss_kind) == sizeof(int), "KEY_ENUM stores enums as int");
_Static_assert(sizeof(enum resume_mode) == sizeof(int), "KEY_ENUM stores enums as int");

#define OFF(f) offsetof(struct run_config, f)
#define SIZE(f) sizeof(((struct run_config *)0)->f)
#define K_INT(n, f, lo, hi, h)                                                                     \
    {                                                                                              \
        .name = n, .type = KEY_INT, .off = OFF(f), .min = lo, .max = hi, .help = h                 \
    }
#define K_NUM(n, t, f, lo, hi, o, h)                                                               \
    {                                                                                              \
        .name = n, .type = t, .off = OFF(f), .min = lo, .max = hi, .open = o, .help = h            \
    }
#define K_STR(n, f, least, ch, h)                                                                  \
    {                                                                                              \
        .name = n, .type = KEY_STRING, .off = OFF(f), .cap = SIZE(f), .min = least, .choices = ch, \
        .help = h                                                                                  \
    }

enum { OPEN_LO = KEY_MIN_OPEN, OPEN_HI = KEY_MAX_OPEN, OPEN_BOTH = KEY_MIN_OPEN | KEY_MAX_OPEN };

/* Sections appear in this order when written; keys within a section in table order. */
const struct config_key config_keys[] = {
    K_STR("data.path", data_path, 1, NULL, "HDF5 dataset made by ddim-prep"),
    K_INT("data.dataset_repetitions", dataset_repetitions, 1, 1000,
          "passes over the training split per epoch"),
    K_STR("data.resident", resident, 0, "auto|on|off",
          "keep the training and validation images in backend memory (auto: on with the CUDA "
          "backend)"),

    K_INT("model.image_size", model.image_size, 1, 4096,
          "square images; a multiple of 2^(levels-1)"),
    {.name = "model.widths",
     .type = KEY_INT_LIST,
     .off = OFF(model.widths),
     .cap = UNET_MAX_LEVELS,
     .count_off = OFF(model.num_levels),
     .min_count = 2,
     .min = 1,
     .max = 4096,
     .help = "channels per U-Net level; the last is the middle"},
    K_INT("model.block_depth", model.block_depth, 1, 16, "residual blocks per level"),
    K_INT("model.embedding_dims", model.embedding_dims, 2, 4096,
          "sinusoidal noise-variance embedding size (even)"),
    K_NUM("model.embedding_min_frequency", KEY_FLOAT, model.embedding_min_frequency, 0, 1e6,
          OPEN_LO, "lowest embedding frequency"),
    K_NUM("model.embedding_max_frequency", KEY_FLOAT, model.embedding_max_frequency, 0, 1e6,
          OPEN_LO, "highest embedding frequency"),
    K_NUM("model.bn_momentum", KEY_FLOAT, model.bn_momentum, 0, 1, OPEN_HI,
          "BatchNormalization moving-average momentum"),
    K_NUM("model.bn_epsilon", KEY_FLOAT, model.bn_epsilon, 0, 1, OPEN_LO,
          "BatchNormalization epsilon"),

    K_NUM("diffusion.min_signal_rate", KEY_FLOAT, diffusion.min_signal_rate, 0, 1, OPEN_BOTH,
          "signal rate at diffusion time 1 (pure noise end)"),
    K_NUM("diffusion.max_signal_rate", KEY_FLOAT, diffusion.max_signal_rate, 0, 1, OPEN_BOTH,
          "signal rate at diffusion time 0 (image end)"),

    K_INT("train.num_epochs", num_epochs, 1, 1000000,
          "epochs; the example: at least 50 for good results"),
    K_INT("train.batch_size", batch_size, 1, 1048576, "global batch, split across ranks"),
    K_NUM("train.learning_rate", KEY_FLOAT, diffusion.learning_rate, 0, 10, OPEN_LO,
          "AdamW learning rate"),
    K_NUM("train.weight_decay", KEY_FLOAT, diffusion.weight_decay, 0, 1, 0,
          "AdamW decoupled weight decay (scaled by the learning rate)"),
    K_NUM("train.adam_beta_1", KEY_FLOAT, diffusion.adam_beta1, 0, 1, OPEN_HI,
          "Adam first-moment decay"),
    K_NUM("train.adam_beta_2", KEY_FLOAT, diffusion.adam_beta2, 0, 1, OPEN_HI,
          "Adam second-moment decay"),
    K_NUM("train.adam_epsilon", KEY_FLOAT, diffusion.adam_epsilon, 0, 1, OPEN_LO,
          "Adam epsilon (Keras: 1e-7)"),
    K_NUM("train.ema", KEY_FLOAT, diffusion.ema, 0, 1, 0, "EMA momentum of the sampling network"),
    {.name = "train.loss",
     .type = KEY_ENUM,
     .off = OFF(diffusion.loss),
     .choices = "mae|mse", /* the order of enum loss_kind */
     .help = "noise loss: mean absolute or mean squared error"},
    {.name = "train.seed",
     .type = KEY_U64,
     .off = OFF(diffusion.seed),
     .help = "keys every random stream"},
    K_NUM("train.max_steps", KEY_LONG, max_steps, 0, 1e15, 0,
          "stop after this many steps in total (0: no limit)"),
    {.name = "train.resume",
     .type = KEY_ENUM,
     .off = OFF(resume),
     .choices = "auto|never|force", /* the order of enum resume_mode */
     .help = "auto: continue from run.dir/checkpoint.h5 if any; never: refuse if one exists; "
             "force: continue even with settings that change the training"},
    K_NUM("train.divergence_factor", KEY_DOUBLE, divergence_factor, 0, 1e12, 0,
          "stop when the noise loss exceeds this times the median of the last 50 steps (0: off)"),

    K_INT("eval.kid_image_size", kid_image_size, 75, 1024,
          "KID resizes images to this (InceptionV3 needs >= 75)"),
    K_INT("eval.kid_diffusion_steps", kid_diffusion_steps, 1, 10000,
          "sampling steps for KID images"),
    K_INT("eval.kid_every", kid_every, 0, 1000000,
          "validation KID every this many epochs; 0: never"),
    K_INT("eval.plot_diffusion_steps", plot_diffusion_steps, 1, 10000,
          "sampling steps for image grids"),
    K_INT("eval.plot_rows", plot_rows, 1, 64, "rows of the image grid"),
    K_INT("eval.plot_cols", plot_cols, 1, 64, "columns of the image grid"),
    K_STR("eval.inception_weights", inception_weights, 0, NULL,
          "Keras InceptionV3 notop .h5; empty: no KID"),

    K_STR("run.dir", run_dir, 1, NULL, "everything a run writes goes here"),
    K_STR("run.backend", backend, 0, "auto|cpu|cuda", "auto: CUDA if a GPU works, else CPU"),
    K_STR("run.cuda_graph", cuda_graph, 0, "auto|on|off",
          "capture the whole training step once as a CUDA graph and replay it (auto: on where "
          "it works: the CUDA backend, one rank or several over NCCL)"),
    K_NUM("run.progress_seconds", KEY_DOUBLE, progress_seconds, 0, 86400, 0,
          "seconds between progress lines"),
    K_NUM("run.collective_timeout_s", KEY_DOUBLE, collective_timeout_s, 0, 604800, 0,
          "end the job when a rank does not reach a collective within this (0: wait forever)"),
    K_NUM("run.allreduce_bucket_mib", KEY_DOUBLE, allreduce_bucket_mib, 0, 65536, 0,
          "several ranks: all-reduce the gradient in buckets of this many MiB while the backward "
          "pass runs (0: in one piece after it); the same bits either way"),
};
const int config_num_keys = (int)(sizeof config_keys / sizeof config_keys[0]);

void run_config_defaults(struct run_config *c)
{
    memset(c, 0, sizeof *c);
    snprintf(c->data_path, sizeof c->data_path, "data/flowers64.h5");
    c->dataset_repetitions = 5;
    snprintf(c->resident, sizeof c->resident, "auto");
    snprintf(c->cuda_graph, sizeof c->cuda_graph, "auto");
    c->model = unet_config_default();
    c->diffusion = diffusion_config_default();
    c->num_epochs = 1; /* the example's value; its comment asks for at least 50 */
    c->batch_size = 64;
    c->max_steps = 0;
    c->kid_image_size = 75;
    c->kid_diffusion_steps = 5;
    c->kid_every = 1;
    c->plot_diffusion_steps = 20;
    c->plot_rows = 3;
    c->plot_cols = 6;
    snprintf(c->run_dir, sizeof c->run_dir, "runs/ddim");
    snprintf(c->backend, sizeof c->backend, "auto");
    c->progress_seconds = 5.0;
    c->divergence_factor = 20.0;
    c->collective_timeout_s = 600.0;
    c->allreduce_bucket_mib = 1.0; /* docs/perf.md, "Scaling model": the bucket size */
}

/* --- the table's helpers ------------------------------------------------------------- */

static size_t section_len(const char *name)
{
    const char *dot = strchr(name, '.');
    return dot ? (size_t)(dot - name) : 0;
}

const struct config_key *config_key_find(const char *name)
{
    for (int i = 0; i < config_num_keys; i++)
        if (!strcmp(config_keys[i].name, name))
            return &config_keys[i];
    return NULL;
}

int config_section_known(const char *section)
{
    size_t n = strlen(section);
    for (int i = 0; i < config_num_keys; i++)
        if (section_len(config_keys[i].name) == n && !strncmp(config_keys[i].name, section, n))
            return 1;
    return 0;
}

int config_key_in_bounds(const struct config_key *k, double v)
{
    int lo = k->open & KEY_MIN_OPEN ? v > k->min : v >= k->min;
    int hi = k->open & KEY_MAX_OPEN ? v < k->max : v <= k->max;
    return lo && hi;
}

int config_choice_index(const char *choices, const char *text)
{
    size_t n = strlen(text);
    int index = 0;
    for (const char *p = choices; p; index++) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == n && !strncmp(p, text, n))
            return index;
        p = bar ? bar + 1 : NULL;
    }
    return -1;
}

/* "a|b|c" -> "a, b, c" */
static void list_choices(const char *choices, char *buf, size_t len)
{
    size_t j = 0;
    for (const char *p = choices; *p && j + 3 < len; p++) {
        if (*p == '|') {
            buf[j++] = ',';
            buf[j++] = ' ';
        } else {
            buf[j++] = *p;
        }
    }
    buf[j] = 0;
}

void config_key_expected(const struct config_key *k, char *buf, size_t len)
{
    char choices[128];
    switch (k->type) {
    case KEY_INT:
    case KEY_LONG:
        snprintf(buf, len, "an integer in [%.0f, %.0f]", k->min, k->max);
        break;
    case KEY_U64:
        snprintf(buf, len, "an integer in [0, %" PRIu64 "]", UINT64_MAX);
        break;
    case KEY_FLOAT:
    case KEY_DOUBLE:
        snprintf(buf, len, "a number in %c%.10g, %.10g%c", k->open & KEY_MIN_OPEN ? '(' : '[',
                 k->min, k->max, k->open & KEY_MAX_OPEN ? ')' : ']');
        break;
    case KEY_BOOL:
        snprintf(buf, len, "true or false");
        break;
    case KEY_ENUM:
        list_choices(k->choices, choices, sizeof choices);
        snprintf(buf, len, "one of %s", choices);
        break;
    case KEY_STRING:
        if (k->choices) {
            list_choices(k->choices, choices, sizeof choices);
            snprintf(buf, len, "one of %s", choices);
        } else {
            snprintf(buf, len, "a %sstring of at most %zu bytes", k->min > 0 ? "non-empty " : "",
                     k->cap - 1);
        }
        break;
    case KEY_INT_LIST:
        snprintf(buf, len, "a list of %d to %zu integers in [%.0f, %.0f], e.g. [32, 64, 96]",
                 k->min_count, k->cap, k->min, k->max);
        break;
    }
}

/* --- did you mean -------------------------------------------------------------------- */

static int edit_distance(const char *a, const char *b)
{
    enum { N = 64 };
    size_t la = strlen(a) < N ? strlen(a) : N, lb = strlen(b) < N ? strlen(b) : N;
    int row[N + 1];
    for (size_t j = 0; j <= lb; j++)
        row[j] = (int)j;
    for (size_t i = 1; i <= la; i++) {
        int diag = row[0];
        row[0] = (int)i;
        for (size_t j = 1; j <= lb; j++) {
            int up = row[j];
            int best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

static int close_enough(int distance, const char *word)
{
    int limit = (int)strlen(word) / 3;
    return distance <= (limit > 2 ? limit : 2);
}

/* The key closest to "section.key" (or to a bare key), by edit distance over full names
 * and over key names (a key from another section counts one more), or NULL. */
static const struct config_key *closest_key(const char *section, const char *key)
{
    char full[256];
    snprintf(full, sizeof full, "%s.%s", section, key);
    const struct config_key *best = NULL;
    int best_d = 1 << 30;
    for (int i = 0; i < config_num_keys; i++) {
        const char *name = config_keys[i].name;
        size_t sl = section_len(name);
        int other = !(strlen(section) == sl && !strncmp(name, section, sl));
        int d = edit_distance(full, name);
        int dk = edit_distance(key, name + sl + 1) + other;
        if (dk < d)
            d = dk;
        if (strlen(key) >= 3 && (strstr(name + sl + 1, key) || strstr(key, name + sl + 1)) &&
            2 + other < d)
            d = 2 + other; /* "epochs" -> num_epochs */
        if (d < best_d) {
            best_d = d;
            best = &config_keys[i];
        }
    }
    return best && close_enough(best_d, key) ? best : NULL;
}

static void list_sections(char *buf, size_t len)
{
    size_t j = 0;
    buf[0] = 0;
    for (int i = 0; i < config_num_keys && j < len; i++) {
        size_t sl = section_len(config_keys[i].name);
        if (i > 0 && !strncmp(config_keys[i - 1].name, config_keys[i].name, sl + 1))
            continue;
        j += (size_t)snprintf(buf + j, len - j, "%s%.*s", j ? ", " : "", (int)sl,
                              config_keys[i].name);
    }
}

void config_suggest(const char *name, char *hint, size_t len)
{
    char section[128];
    const char *key = name;
    size_t sl = section_len(name);
    snprintf(section, sizeof section, "%.*s", (int)sl, name);
    if (sl)
        key = name + sl + 1;
    const struct config_key *k = closest_key(section, key);
    if (k) {
        snprintf(hint, len, "; did you mean %s?", k->name);
        return;
    }
    char list[1024];
    size_t j = 0;
    list[0] = 0;
    for (int i = 0; i < config_num_keys && j < sizeof list; i++)
        if (sl && section_len(config_keys[i].name) == sl &&
            !strncmp(config_keys[i].name, name, sl + 1))
            j += (size_t)snprintf(list + j, sizeof list - j, "%s%s", j ? ", " : "",
                                  config_keys[i].name + sl + 1);
    if (j)
        snprintf(hint, len, " (keys in %s: %s)", section, list);
    else {
        list_sections(list, sizeof list);
        snprintf(hint, len, " (keys are section.key; sections: %s)", list);
    }
}

void config_suggest_section(const char *section, char *hint, size_t len)
{
    char list[256];
    list_sections(list, sizeof list);
    const char *best = NULL;
    int best_d = 1 << 30;
    for (int i = 0; i < config_num_keys; i++) {
        char name[64];
        snprintf(name, sizeof name, "%.*s", (int)section_len(config_keys[i].name),
                 config_keys[i].name);
        int d = edit_distance(section, name);
        if (d < best_d) {
            best_d = d;
            best = config_keys[i].name;
        }
    }
    if (best && close_enough(best_d, section)) {
        snprintf(hint, len, "; did you mean \"%.*s\"? (sections: %s)", (int)section_len(best), best,
                 list);
        return;
    }
    const struct config_key *k = closest_key("", section); /* a key without its section */
    if (k)
        snprintf(hint, len, "; did you mean %s (under \"%.*s:\")?", k->name,
                 (int)section_len(k->name), k->name);
    else
        snprintf(hint, len, " (sections: %s)", list);
}

/* --- values as text ------------------------------------------------------------------ */

/* Shortest text that reads back (as the loader reads it) to exactly v; "1.0", not "1". */
static void format_real(double v, int is_float, char *buf, size_t len)
{
    for (int digits = 1; digits <= 17; digits++) {
        snprintf(buf, len, "%.*g", digits, v);
        double back = strtod(buf, NULL);
        if (is_float ? (float)back == (float)v : back == v)
            break;
    }
    const char *e = strchr(buf, 'e');
    if (e && fabs(v) >= 1e-4 && fabs(v) < 1e16) { /* 1000.0, not 1e+03 */
        int decimals = (int)(strchr(buf, '.') ? e - strchr(buf, '.') - 1 : 0) - atoi(e + 1);
        snprintf(buf, len, "%.*f", decimals > 0 ? decimals : 0, v);
    }
    if (!strpbrk(buf, ".eEn") && strlen(buf) + 2 < len)
        strcat(buf, ".0");
}

/* A YAML double-quoted string that reads back to s byte for byte. */
static void format_quoted(const char *s, char *buf, size_t len)
{
    size_t j = 0;
    buf[j++] = '"';
    for (const unsigned char *p = (const unsigned char *)s; *p && j + 6 < len; p++) {
        if (*p == '"' || *p == '\\') {
            buf[j++] = '\\';
            buf[j++] = (char)*p;
        } else if (*p < 0x20 || *p == 0x7f) {
            j += (size_t)snprintf(buf + j, len - j, "\\x%02x", *p);
        } else {
            buf[j++] = (char)*p;
        }
    }
    buf[j++] = '"';
    buf[j] = 0;
}

static void format_value(const struct config_key *k, const struct run_config *c, char *buf,
                         size_t len)
{
    const void *p = (const char *)c + k->off;
    int index;
    switch (k->type) {
    case KEY_INT:
        snprintf(buf, len, "%d", *(const int *)p);
        break;
    case KEY_LONG:
        snprintf(buf, len, "%ld", *(const long *)p);
        break;
    case KEY_U64:
        snprintf(buf, len, "%" PRIu64, *(const uint64_t *)p);
        break;
    case KEY_FLOAT:
        format_real(*(const float *)p, 1, buf, len);
        break;
    case KEY_DOUBLE:
        format_real(*(const double *)p, 0, buf, len);
        break;
    case KEY_BOOL:
        snprintf(buf, len, "%s", *(const int *)p ? "true" : "false");
        break;
    case KEY_ENUM:
        index = *(const int *)p;
        snprintf(buf, len, "%d", index); /* not a choice: written as is, rejected on load */
        for (const char *q = k->choices; q && index >= 0; index--) {
            const char *bar = strchr(q, '|');
            if (index == 0)
                snprintf(buf, len, "%.*s", (int)(bar ? bar - q : (long)strlen(q)), q);
            q = bar ? bar + 1 : NULL;
        }
        break;
    case KEY_STRING:
        if (k->choices && config_choice_index(k->choices, (const char *)p) >= 0)
            snprintf(buf, len, "%s", (const char *)p);
        else
            format_quoted((const char *)p, buf, len);
        break;
    case KEY_INT_LIST: {
        int count = *(const int *)((const char *)c + k->count_off);
        size_t j = (size_t)snprintf(buf, len, "[");
        for (int i = 0; i < count && i < (int)k->cap && j < len; i++)
            j += (size_t)snprintf(buf + j, len - j, "%s%d", i ? ", " : "", ((const int *)p)[i]);
        if (j < len)
            snprintf(buf + j, len - j, "]");
        break;
    }
    }
}

void config_write_yaml(const struct run_config *c, FILE *out)
{
    fprintf(out, "# ddim-dist configuration, every key (load it with --config)\n");
    for (int i = 0; i < config_num_keys; i++) {
        const struct config_key *k = &config_keys[i];
        size_t sl = section_len(k->name);
        if (i == 0 || strncmp(config_keys[i - 1].name, k->name, sl + 1))
            fprintf(out, "%.*s:\n", (int)sl, k->name);
        char value[4 * CONFIG_PATH_MAX + 8], line[4 * CONFIG_PATH_MAX + 128];
        format_value(k, c, value, sizeof value);
        snprintf(line, sizeof line, "  %s: %s", k->name + sl + 1, value);
        fprintf(out, "%-44s # %s\n", line, k->help);
    }
}

int config_differences(const struct run_config *a, const struct run_config *b,
                       struct config_difference *out, int max)
{
    int n = 0;
    for (int i = 0; i < config_num_keys; i++) {
        char va[sizeof out->old_value], vb[sizeof out->new_value];
        format_value(&config_keys[i], a, va, sizeof va);
        format_value(&config_keys[i], b, vb, sizeof vb);
        if (!strcmp(va, vb))
            continue;
        if (n < max) {
            out[n].key = config_keys[i].name;
            snprintf(out[n].old_value, sizeof out[n].old_value, "%s", va);
            snprintf(out[n].new_value, sizeof out[n].new_value, "%s", vb);
        }
        n++;
    }
    return n;
}

/* --- checks -------------------------------------------------------------------------- */

/* 1 if the value of k in c is one the loader would accept. */
static int value_ok(const struct config_key *k, const struct run_config *c)
{
    const void *p = (const char *)c + k->off;
    switch (k->type) {
    case KEY_INT:
        return config_key_in_bounds(k, *(const int *)p);
    case KEY_LONG:
        return config_key_in_bounds(k, (double)*(const long *)p);
    case KEY_U64:
        return 1;
    case KEY_FLOAT:
        return config_key_in_bounds(k, *(const float *)p);
    case KEY_DOUBLE:
        return config_key_in_bounds(k, *(const double *)p);
    case KEY_BOOL:
        return *(const int *)p == 0 || *(const int *)p == 1;
    case KEY_ENUM: {
        char name[64];
        format_value(k, c, name, sizeof name);
        return config_choice_index(k->choices, name) >= 0;
    }
    case KEY_STRING: {
        const char *nul = memchr(p, 0, k->cap);
        size_t n = nul ? (size_t)(nul - (const char *)p) : k->cap;
        return n < k->cap && (double)n >= k->min &&
               (!k->choices || config_choice_index(k->choices, (const char *)p) >= 0);
    }
    case KEY_INT_LIST: {
        int count = *(const int *)((const char *)c + k->count_off);
        if (count < k->min_count || count > (int)k->cap)
            return 0;
        for (int i = 0; i < count; i++)
            if (!config_key_in_bounds(k, ((const int *)p)[i]))
                return 0;
        return 1;
    }
    }
    return 0;
}

/* Prefixes a sub-struct's message ("widths: ...") with the key's section ("model.widths:
 * ..."): the section of the key named by the message's first word among the keys stored in
 * [base, base + size), else fallback ("diffusion: signal rates: ..."). */
static int sub_error(char *err, size_t errlen, const char *msg, size_t base, size_t size,
                     const char *fallback)
{
    size_t word = strcspn(msg, ":[");
    for (int i = 0; i < config_num_keys; i++) {
        const struct config_key *k = &config_keys[i];
        const char *key = k->name + section_len(k->name) + 1;
        if (k->off >= base && k->off < base + size && strlen(key) == word &&
            !strncmp(key, msg, word))
            return util_error(err, errlen, "%.*s.%s", (int)section_len(k->name), k->name, msg);
    }
    return util_error(err, errlen, "%s: %s", fallback, msg);
}

int run_config_check(const struct run_config *c, char *err, size_t errlen)
{
    char msg[512], value[512];
    for (int i = 0; i < config_num_keys; i++) {
        const struct config_key *k = &config_keys[i];
        if (value_ok(k, c))
            continue;
        config_key_expected(k, msg, sizeof msg);
        format_value(k, c, value, sizeof value);
        return util_error(err, errlen, "%s: expected %s, got %s", k->name, msg, value);
    }
    if (unet_config_check(&c->model, msg, sizeof msg))
        return sub_error(err, errlen, msg, OFF(model), SIZE(model), "model");
    if (diffusion_config_check(&c->diffusion, msg, sizeof msg))
        return sub_error(err, errlen, msg, OFF(diffusion), SIZE(diffusion), "diffusion");
    if (c->model.embedding_min_frequency > c->model.embedding_max_frequency)
        return util_error(err, errlen,
                          "model.embedding_min_frequency: %g exceeds "
                          "model.embedding_max_frequency %g",
                          c->model.embedding_min_frequency, c->model.embedding_max_frequency);
    return 0;
}
