/* path_check.c: see path_check.h. */
#define _XOPEN_SOURCE 700 /* realpath */
#include "path_check.h"
#include "util.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* The absolute path of `path` with its folder resolved (realpath) and its last component
 * kept as written: the file need not exist, its folder should. Falls back to the path as
 * given when the folder cannot be resolved. */
static void resolve(const char *path, char *out, size_t len)
{
    char dir[PATH_MAX], real[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    const char *base = path;
    if (slash) {
        base = path + (slash - dir) + 1;
        if (slash == dir)
            slash[1] = '\0'; /* "/x": the folder is "/" */
        else
            *slash = '\0';
    } else {
        snprintf(dir, sizeof dir, ".");
    }
    if (realpath(dir, real))
        snprintf(out, len, "%s%s%s", real, strcmp(real, "/") ? "/" : "", base);
    else
        snprintf(out, len, "%s", path);
}

/* Whether a and b name the same file, as path_check.h says. */
static int same_file(const char *a, const char *b)
{
    struct stat sa, sb;
    int ha = stat(a, &sa) == 0, hb = stat(b, &sb) == 0;
    if (ha && hb)
        return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
    if (ha != hb) /* one exists and the other does not: two files */
        return 0;
    char ra[PATH_MAX + 256], rb[PATH_MAX + 256];
    resolve(a, ra, sizeof ra);
    resolve(b, rb, sizeof rb);
    return !strcmp(ra, rb);
}

static int given(const struct path_use *u)
{
    return u->path && u->path[0];
}

int path_check_outputs(const struct path_use *outputs, int num_outputs,
                       const struct path_use *inputs, int num_inputs, char *err, size_t errlen)
{
    for (int i = 0; i < num_outputs; i++) {
        const struct path_use *o = &outputs[i];
        if (!given(o))
            continue;
        for (int j = 0; j < num_inputs; j++)
            if (given(&inputs[j]) && same_file(o->path, inputs[j].path))
                return util_error(err, errlen,
                                  "%s '%s' is the same file as %s '%s': writing it would destroy "
                                  "an input; give the output another name",
                                  o->what, o->path, inputs[j].what, inputs[j].path);
        for (int j = 0; j < i; j++)
            if (given(&outputs[j]) && same_file(o->path, outputs[j].path))
                return util_error(err, errlen,
                                  "%s '%s' is the same file as %s '%s': each output needs a "
                                  "name of its own",
                                  o->what, o->path, outputs[j].what, outputs[j].path);
    }
    return 0;
}
