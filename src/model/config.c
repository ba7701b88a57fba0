/* config.c: what the key table (config_keys.c) gives: the defaults, the range checks and
 * the few cross-field rules, did-you-mean suggestions, the YAML writer, the differences
 * between two configurations and the key list of --help and docs/config.md. Reading YAML
 * lives in config_yaml.c and uses the same table. */
#include "config_keys.h"

#include "util.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define OFF(f) offsetof(struct run_config, f)
#define SIZE(f) sizeof(((struct run_config *)0)->f)

/* --- defaults, from the table ------------------------------------------------------- */

void config_defaults(struct run_config *c)
{
    memset(c, 0, sizeof *c);
    char err[512];
    for (int i = 0; i < config_num_keys; i++)
        if (config_key_set_text(c, &config_keys[i], config_keys[i].def, err, sizeof err) != 0)
            DDIM_FATAL("the key table's default of %s does not load: %s", config_keys[i].name, err);
}

struct unet_config config_default_model(void)
{
    struct run_config c;
    config_defaults(&c);
    return c.model;
}

struct diffusion_config config_default_diffusion(void)
{
    struct run_config c;
    config_defaults(&c);
    return c.diffusion;
}

/* --- the table's helpers ------------------------------------------------------------- */

static size_t section_len(const char *name)
{
    const char *dot = strchr(name, '.');
    return dot ? (size_t)(dot - name) : 0;
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

int config_value_text(const struct run_config *c, const char *name, char *buf, size_t len)
{
    const struct config_key *k = config_key_find(name);
    if (!k)
        return -1;
    format_value(k, c, buf, len);
    return 0;
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

/* The key list: for --help (text) and docs/config.md (markdown, ddim-dist --list-keys). */
void config_write_keys(FILE *out, int markdown)
{
    struct run_config d;
    config_defaults(&d);
    if (markdown)
        fprintf(out, "| key | default | accepts | what it sets |\n| --- | --- | --- | --- |\n");
    for (int i = 0; i < config_num_keys; i++) {
        const struct config_key *k = &config_keys[i];
        char value[4 * CONFIG_PATH_MAX + 8], want[256];
        format_value(k, &d, value, sizeof value);
        config_key_expected(k, want, sizeof want);
        if (markdown)
            fprintf(out, "| `%s` | `%s` | %s | %s |\n", k->name, value, want, k->help);
        else
            fprintf(out, "  %s = %s\n      %s; %s\n", k->name, value, k->help, want);
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

/* The first key stored in [base, base + size) of c whose value the loader would refuse, as
 * "key: expected ..., got ..."; 0 when there is none. */
static int check_keys(const struct run_config *c, size_t base, size_t size, char *err,
                      size_t errlen)
{
    char want[512], value[512];
    for (int i = 0; i < config_num_keys; i++) {
        const struct config_key *k = &config_keys[i];
        if (k->off < base || k->off >= base + size || value_ok(k, c))
            continue;
        config_key_expected(k, want, sizeof want);
        format_value(k, c, value, sizeof value);
        return util_error(err, errlen, "%s: expected %s, got %s", k->name, want, value);
    }
    return 0;
}

int config_check_model(const struct unet_config *m, char *err, size_t errlen)
{
    struct run_config c;
    memset(&c, 0, sizeof c);
    c.model = *m;
    if (check_keys(&c, OFF(model), SIZE(model), err, errlen) != 0)
        return -1;
    int div = 1 << (m->num_levels - 1);
    if (m->image_size % div != 0)
        return util_error(err, errlen,
                          "model.image_size: %d must be a positive multiple of %d (2^(levels-1), "
                          "for %d levels of 2x2 pooling)",
                          m->image_size, div, m->num_levels);
    if (m->embedding_dims % 2 != 0)
        return util_error(err, errlen, "model.embedding_dims: expected an even number, got %d",
                          m->embedding_dims);
    if (m->embedding_min_frequency > m->embedding_max_frequency)
        return util_error(err, errlen,
                          "model.embedding_min_frequency: %g exceeds "
                          "model.embedding_max_frequency %g",
                          m->embedding_min_frequency, m->embedding_max_frequency);
    return 0;
}

int config_check_diffusion(const struct diffusion_config *d, char *err, size_t errlen)
{
    struct run_config c;
    memset(&c, 0, sizeof c);
    c.diffusion = *d;
    if (check_keys(&c, OFF(diffusion), SIZE(diffusion), err, errlen) != 0)
        return -1;
    if (!(d->min_signal_rate < d->max_signal_rate))
        return util_error(err, errlen,
                          "diffusion: signal rates: expected min_signal_rate < max_signal_rate, "
                          "got %g and %g",
                          d->min_signal_rate, d->max_signal_rate);
    return 0;
}

int config_check(const struct run_config *c, char *err, size_t errlen)
{
    if (check_keys(c, 0, sizeof *c, err, errlen) != 0)
        return -1;
    if (config_check_model(&c->model, err, errlen) != 0 ||
        config_check_diffusion(&c->diffusion, err, errlen) != 0)
        return -1;
    return 0;
}
