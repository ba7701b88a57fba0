/* config_keys.h: the table of configuration keys (config_keys.c), used by config.c
 * (defaults, checks, writing, suggestions) and config_yaml.c (YAML loading and --set).
 * Private to the configuration's files: everything else goes through config.h. */
#ifndef DDIM_CONFIG_KEYS_H
#define DDIM_CONFIG_KEYS_H

#include "config.h"

#include <stddef.h>

enum config_key_type {
    KEY_INT,      /* int */
    KEY_LONG,     /* long */
    KEY_U64,      /* uint64_t, any value */
    KEY_FLOAT,    /* float; bounds apply after rounding to float */
    KEY_DOUBLE,   /* double */
    KEY_BOOL,     /* int, 0 or 1, written true / false */
    KEY_STRING,   /* char[cap], NUL-terminated; choices restrict it if set */
    KEY_ENUM,     /* int (or an enum of int size): the index of the value in choices */
    KEY_INT_LIST, /* int[cap] with the count in an int at count_off; unused entries 0 */
};

enum { KEY_MIN_OPEN = 1, KEY_MAX_OPEN = 2 }; /* bounds that are excluded */

struct config_key {
    const char *name; /* "section.key", as in the YAML file */
    enum config_key_type type;
    size_t off;          /* offsetof the value in struct run_config */
    size_t cap;          /* KEY_STRING: buffer bytes; KEY_INT_LIST: most elements */
    size_t count_off;    /* KEY_INT_LIST: offsetof the element count */
    int min_count;       /* KEY_INT_LIST: fewest elements */
    const char *def;     /* the default, as the YAML file writes it */
    double min, max;     /* numbers and list elements: bounds; KEY_STRING: min = least length */
    int open;            /* KEY_MIN_OPEN | KEY_MAX_OPEN */
    const char *choices; /* KEY_ENUM, or KEY_STRING if restricted: "a|b|c" */
    const char *help;    /* one line, written as the key's comment */
};

extern const struct config_key config_keys[];
extern const int config_num_keys;

/* The key named "section.key", or NULL. */
const struct config_key *config_key_find(const char *name);

/* Sets k in c from YAML text (a value as in the file or after --set's "="): 0, or -1 with
 * a message naming the key. */
int config_key_set_text(struct run_config *c, const struct config_key *k, const char *text,
                        char *err, size_t errlen);

/* 1 if some key lives in this section. */
int config_section_known(const char *section);

/* 1 if v lies within k's bounds (numbers and list elements). */
int config_key_in_bounds(const struct config_key *k, double v);

/* Index of text in "a|b|c", or -1. */
int config_choice_index(const char *choices, const char *text);

/* What k accepts, e.g. "an integer in [1, 1048576]". */
void config_key_expected(const struct config_key *k, char *buf, size_t len);

/* Text to append to "unknown key": "; did you mean train.batch_size?" or the section's
 * keys. For unknown sections: a close section name, or a key that belongs in a section. */
void config_suggest(const char *name, char *hint, size_t len);
void config_suggest_section(const char *section, char *hint, size_t len);

#endif
