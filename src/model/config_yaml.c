/* config_yaml.c: config.h's YAML loading (libyaml's document API, for line numbers) and
 * --set overrides, driven by the one table of keys (config_keys.c: a key's YAML name, type,
 * place in struct run_config, default, bounds and doc line). The defaults are loaded the
 * same way (config_key_set_text).
 *
 * Loading checks the type and bounds of each value as it is read (so errors carry the
 * line); config_check (config.c) checks the same bounds again on the struct, then the
 * cross-field rules. */
#include "config_keys.h"

#include "util.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

enum { MAX_FILE_BYTES = 1 << 20 };

/* Where values come from, for error messages: "file:line: key: ..."; --set has no line. */
struct src {
    const char *file;
    const char *key; /* for syntax errors: the key a --set value is for */
    int no_lines;
    char *err;
    size_t errlen;
};

DDIM_PRINTF(4, 5)
static int fail(const struct src *s, int line, const char *key, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    char where[CONFIG_PATH_MAX + 32];
    if (line > 0 && !s->no_lines)
        snprintf(where, sizeof where, "%s:%d", s->file, line);
    else
        snprintf(where, sizeof where, "%s", s->file);
    return util_error(s->err, s->errlen, "%s: %s%s%s", where, key ? key : "", key ? ": " : "", msg);
}

static int node_line(const yaml_node_t *n)
{
    return n ? (int)n->start_mark.line + 1 : 0;
}

static int is_plain(const yaml_node_t *n)
{
    return !n || n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE ||
           n->data.scalar.style == YAML_ANY_SCALAR_STYLE;
}

/* An absent value, an empty plain scalar or YAML's null. */
static int is_null(const yaml_node_t *n)
{
    if (!n)
        return 1;
    if (n->type != YAML_SCALAR_NODE || !is_plain(n))
        return 0;
    const char *v = (const char *)n->data.scalar.value;
    return !*v || !strcmp(v, "~") || !strcmp(v, "null") || !strcmp(v, "Null") || !strcmp(v, "NULL");
}

/* What a node holds, for "got ..." in messages. */
static void describe_node(const yaml_node_t *n, char *buf, size_t len)
{
    if (is_null(n))
        snprintf(buf, len, "nothing");
    else if (n->type == YAML_SEQUENCE_NODE)
        snprintf(buf, len, "a list");
    else if (n->type == YAML_MAPPING_NODE)
        snprintf(buf, len, "a mapping");
    else
        snprintf(buf, len, "%s\"%.80s%s\"", is_plain(n) ? "" : "the quoted string ",
                 (const char *)n->data.scalar.value, n->data.scalar.length > 80 ? "..." : "");
}

static int parse_integer(const char *s, long long *v)
{
    char *end;
    errno = 0;
    long long x = strtoll(s, &end, 10);
    if (end == s || *end || errno)
        return -1;
    *v = x;
    return 0;
}

static int parse_number(const char *s, double *v)
{
    char *end;
    double x = strtod(s, &end);
    if (end == s || *end || !isfinite(x))
        return -1;
    *v = x;
    return 0;
}

/* Sets one scalar value of k from text; -1 if it is not of k's type or out of bounds. */
static int set_scalar(const struct config_key *k, struct run_config *c, const char *text,
                      size_t length, int plain)
{
    void *p = (char *)c + k->off;
    long long i;
    double d;
    switch (k->type) {
    case KEY_INT:
    case KEY_LONG:
        if (!plain || parse_integer(text, &i) || !config_key_in_bounds(k, (double)i))
            return -1;
        if (k->type == KEY_INT)
            *(int *)p = (int)i;
        else
            *(long *)p = (long)i;
        return 0;
    case KEY_U64: {
        char *end;
        errno = 0;
        unsigned long long u = strtoull(text, &end, 10);
        if (!plain || end == text || *end || errno || strchr(text, '-'))
            return -1;
        *(uint64_t *)p = (uint64_t)u;
        return 0;
    }
    case KEY_FLOAT:
        /* the bounds apply to the value stored, after rounding to float */
        if (!plain || parse_number(text, &d) || !config_key_in_bounds(k, (double)(float)d))
            return -1;
        *(float *)p = (float)d;
        return 0;
    case KEY_DOUBLE:
        if (!plain || parse_number(text, &d) || !config_key_in_bounds(k, d))
            return -1;
        *(double *)p = d;
        return 0;
    case KEY_BOOL:
        if (!plain || (strcmp(text, "true") && strcmp(text, "false")))
            return -1;
        *(int *)p = !strcmp(text, "true");
        return 0;
    case KEY_ENUM:
        if ((i = config_choice_index(k->choices, text)) < 0)
            return -1;
        *(int *)p = (int)i;
        return 0;
    case KEY_STRING:
        if (length != strlen(text) || length + 1 > k->cap || (double)length < k->min ||
            (k->choices && config_choice_index(k->choices, text) < 0))
            return -1;
        memset(p, 0, k->cap);
        memcpy(p, text, length);
        return 0;
    case KEY_INT_LIST:
        break;
    }
    return -1;
}

static int apply_list(const struct config_key *k, yaml_document_t *doc, yaml_node_t *n,
                      struct run_config *c, const struct src *s)
{
    char want[160], got[128];
    config_key_expected(k, want, sizeof want);
    if (!n || n->type != YAML_SEQUENCE_NODE) {
        describe_node(n, got, sizeof got);
        return fail(s, node_line(n), k->name, "expected %s, got %s", want, got);
    }
    long count = (long)(n->data.sequence.items.top - n->data.sequence.items.start);
    int values[UNET_MAX_LEVELS] = {0}; /* the one list key; grow this with a longer one */
    if (count < k->min_count || count > (long)k->cap || k->cap > UNET_MAX_LEVELS)
        return fail(s, node_line(n), k->name, "expected %s, got a list of %ld", want, count);
    for (long j = 0; j < count; j++) {
        yaml_node_t *item = yaml_document_get_node(doc, n->data.sequence.items.start[j]);
        long long v = 0;
        if (!item || item->type != YAML_SCALAR_NODE || !is_plain(item) ||
            parse_integer((const char *)item->data.scalar.value, &v) ||
            !config_key_in_bounds(k, (double)v)) {
            char name[80];
            snprintf(name, sizeof name, "%s[%ld]", k->name, j);
            describe_node(item, got, sizeof got);
            return fail(s, node_line(item ? item : n), name,
                        "expected an integer in [%.0f, %.0f], got %s", k->min, k->max, got);
        }
        values[j] = (int)v;
    }
    memcpy((char *)c + k->off, values, k->cap * sizeof(int));
    *(int *)((char *)c + k->count_off) = (int)count;
    return 0;
}

/* Sets k from node n (NULL: an empty value, as in "--set eval.inception_weights="). */
static int apply_value(const struct config_key *k, yaml_document_t *doc, yaml_node_t *n,
                       struct run_config *c, const struct src *s)
{
    if (k->type == KEY_INT_LIST)
        return apply_list(k, doc, n, c, s);
    int ok = 0;
    if (is_null(n) && k->type == KEY_STRING)
        ok = set_scalar(k, c, "", 0, 1) == 0;
    else if (n && n->type == YAML_SCALAR_NODE)
        ok = set_scalar(k, c, (const char *)n->data.scalar.value, n->data.scalar.length,
                        is_plain(n)) == 0;
    if (ok)
        return 0;
    char want[160], got[128];
    config_key_expected(k, want, sizeof want);
    describe_node(n, got, sizeof got);
    return fail(s, node_line(n), k->name, "expected %s, got %s%s", want, got,
                n && n->type == YAML_SCALAR_NODE && !is_plain(n) && k->type != KEY_STRING &&
                        k->type != KEY_ENUM
                    ? " (remove the quotes)"
                    : "");
}

static const char *scalar_text(const yaml_node_t *n)
{
    return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

/* -1 with a message if pair i of mapping m repeats an earlier key. */
static int check_duplicate(yaml_document_t *doc, yaml_node_t *m, yaml_node_pair_t *pair,
                           const char *name, const struct src *s)
{
    const char *key = scalar_text(yaml_document_get_node(doc, pair->key));
    for (yaml_node_pair_t *q = m->data.mapping.pairs.start; q < pair; q++) {
        yaml_node_t *qk = yaml_document_get_node(doc, q->key);
        const char *other = scalar_text(qk);
        if (other && !strcmp(other, key))
            return fail(s, node_line(yaml_document_get_node(doc, pair->key)), name,
                        "duplicate %s (first given on line %d)",
                        strchr(name, '.') ? "key" : "section", node_line(qk));
    }
    return 0;
}

static int apply_section(yaml_document_t *doc, const char *section, yaml_node_t *m,
                         struct run_config *c, const struct src *s)
{
    if (is_null(m))
        return 0; /* "eval:" with nothing under it */
    if (m->type != YAML_MAPPING_NODE) {
        char got[128];
        describe_node(m, got, sizeof got);
        return fail(s, node_line(m), section, "expected a mapping of keys (key: value), got %s",
                    got);
    }
    for (yaml_node_pair_t *pair = m->data.mapping.pairs.start; pair < m->data.mapping.pairs.top;
         pair++) {
        yaml_node_t *kn = yaml_document_get_node(doc, pair->key);
        const char *key = scalar_text(kn);
        if (!key)
            return fail(s, node_line(kn), section, "expected key names, got a list or mapping");
        char name[256], hint[512];
        snprintf(name, sizeof name, "%s.%s", section, key);
        const struct config_key *k = config_key_find(name);
        if (!k) {
            config_suggest(name, hint, sizeof hint);
            return fail(s, node_line(kn), name, "unknown key%s", hint);
        }
        if (check_duplicate(doc, m, pair, name, s) ||
            apply_value(k, doc, yaml_document_get_node(doc, pair->value), c, s))
            return -1;
    }
    return 0;
}

static int apply_document(yaml_document_t *doc, struct run_config *c, const struct src *s)
{
    yaml_node_t *root = yaml_document_get_root_node(doc);
    if (is_null(root))
        return 0; /* empty YAML text changes nothing (an empty --config file is refused above) */
    if (root->type != YAML_MAPPING_NODE)
        return fail(s, node_line(root), NULL,
                    "expected a mapping of sections (data:, model:, diffusion:, train:, eval:, "
                    "run:) at the top level");
    for (yaml_node_pair_t *pair = root->data.mapping.pairs.start;
         pair < root->data.mapping.pairs.top; pair++) {
        yaml_node_t *kn = yaml_document_get_node(doc, pair->key);
        const char *section = scalar_text(kn);
        if (!section)
            return fail(s, node_line(kn), NULL, "expected section names, got a list or mapping");
        if (!config_section_known(section)) {
            char hint[512];
            config_suggest_section(section, hint, sizeof hint);
            return fail(s, node_line(kn), section, "unknown section%s", hint);
        }
        if (check_duplicate(doc, root, pair, section, s) ||
            apply_section(doc, section, yaml_document_get_node(doc, pair->value), c, s))
            return -1;
    }
    return 0;
}

static int syntax_error(const yaml_parser_t *p, const struct src *s)
{
    if (p->error == YAML_MEMORY_ERROR)
        return fail(s, 0, NULL, "out of memory parsing YAML");
    if (p->error == YAML_READER_ERROR)
        return fail(s, 0, s->key, "YAML error: %s at byte %zu (is the file UTF-8 text?)",
                    p->problem ? p->problem : "unreadable input", p->problem_offset);
    char context[160] = "";
    if (p->context)
        snprintf(context, sizeof context, " (%s on line %d)", p->context,
                 (int)p->context_mark.line + 1);
    return fail(s, (int)p->problem_mark.line + 1, s->key, "YAML syntax error: %s at column %d%s",
                p->problem ? p->problem : "malformed input", (int)p->problem_mark.column + 1,
                context);
}

/* Parses text as one YAML document and applies it with `apply`. */
static int parse_and_apply(const char *text, size_t length, const struct src *s,
                           int (*apply)(yaml_document_t *, void *), void *arg)
{
    yaml_parser_t parser;
    yaml_document_t doc;
    if (!yaml_parser_initialize(&parser))
        return fail(s, 0, NULL, "cannot initialize the YAML parser");
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, length);
    int rc = -1;
    if (!yaml_parser_load(&parser, &doc)) {
        syntax_error(&parser, s);
    } else {
        rc = apply(&doc, arg);
        yaml_document_delete(&doc);
        if (rc == 0 && !yaml_parser_load(&parser, &doc)) {
            rc = syntax_error(&parser, s);
        } else if (rc == 0) {
            yaml_node_t *second = yaml_document_get_root_node(&doc);
            if (second)
                rc = fail(s, node_line(second), s->key,
                          "expected one YAML document, found a second one (remove the '---')");
            yaml_document_delete(&doc);
        }
    }
    yaml_parser_delete(&parser);
    return rc;
}

struct file_job {
    struct run_config *c;
    const struct src *s;
    int refuse_empty; /* a file given with --config that holds no settings is a mistake */
};

static int apply_file_doc(yaml_document_t *doc, void *arg)
{
    struct file_job *job = arg;
    if (job->refuse_empty && is_null(yaml_document_get_root_node(doc)))
        return fail(job->s, 0, NULL,
                    "the configuration file is empty (no settings): give it its settings "
                    "(configs/ has examples), or leave --config out to run with the defaults");
    return apply_document(doc, job->c, job->s);
}

/* Reads the whole file; NULL with a message on failure. */
static char *read_text(const struct src *s, size_t *length)
{
    FILE *f = fopen(s->file, "rb");
    if (!f) {
        fail(s, 0, NULL, "cannot open the configuration file: %s", strerror(errno));
        return NULL;
    }
    char *buf = util_xmalloc(MAX_FILE_BYTES + 1);
    size_t n = fread(buf, 1, MAX_FILE_BYTES + 1, f);
    int bad = ferror(f);
    int saved = errno;
    fclose(f);
    if (bad || n > MAX_FILE_BYTES) {
        if (bad)
            fail(s, 0, NULL, "cannot read the configuration file: %s", strerror(saved));
        else
            fail(s, 0, NULL, "larger than %d bytes: not a configuration file?", MAX_FILE_BYTES);
        free(buf);
        return NULL;
    }
    buf[n] = 0;
    *length = n;
    return buf;
}

int config_load_yaml(struct run_config *c, const char *path, char *err, size_t errlen)
{
    struct src s = {.file = path, .err = err, .errlen = errlen};
    size_t length;
    char *text = read_text(&s, &length);
    if (!text)
        return -1;
    /* apply to a copy: a file with an error changes nothing */
    struct run_config tmp = *c;
    struct file_job job = {&tmp, &s, 1};
    int rc = parse_and_apply(text, length, &s, apply_file_doc, &job);
    free(text);
    if (rc == 0)
        *c = tmp;
    return rc;
}

int config_load_yaml_text(struct run_config *c, const char *label, const char *text, char *err,
                          size_t errlen)
{
    struct src s = {.file = label, .err = err, .errlen = errlen};
    struct run_config tmp = *c;
    struct file_job job = {&tmp, &s, 0};
    if (parse_and_apply(text, strlen(text), &s, apply_file_doc, &job) != 0)
        return -1;
    *c = tmp;
    return 0;
}

struct set_job {
    const struct config_key *k;
    struct run_config *c;
    const struct src *s;
};

static int apply_set_doc(yaml_document_t *doc, void *arg)
{
    struct set_job *job = arg;
    return apply_value(job->k, doc, yaml_document_get_root_node(doc), job->c, job->s);
}

int config_key_set_text(struct run_config *c, const struct config_key *k, const char *text,
                        char *err, size_t errlen)
{
    struct src s = {
        .file = "the key table", .key = k->name, .no_lines = 1, .err = err, .errlen = errlen};
    struct set_job job = {k, c, &s};
    return parse_and_apply(text, strlen(text), &s, apply_set_doc, &job);
}

int config_set(struct run_config *c, const char *assignment, char *err, size_t errlen)
{
    struct src s = {.file = "--set", .no_lines = 1, .err = err, .errlen = errlen};
    const char *eq = strchr(assignment, '=');
    if (!eq)
        return fail(&s, 0, NULL,
                    "expected section.key=value (e.g. train.batch_size=32), got \"%s\"",
                    assignment);
    const char *a = assignment, *b = eq;
    while (a < b && (*a == ' ' || *a == '\t'))
        a++;
    while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
        b--;
    char name[256], hint[512];
    snprintf(name, sizeof name, "%.*s", (int)(b - a), a);
    const struct config_key *k = config_key_find(name);
    if (!k) {
        config_suggest(name, hint, sizeof hint);
        return fail(&s, 0, name, "unknown key%s", hint);
    }
    s.key = k->name;
    struct run_config tmp = *c;
    struct set_job job = {k, &tmp, &s};
    if (parse_and_apply(eq + 1, strlen(eq + 1), &s, apply_set_doc, &job))
        return -1;
    *c = tmp;
    return 0;
}
