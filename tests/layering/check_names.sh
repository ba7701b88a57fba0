#!/usr/bin/env bash
# check_names.sh: names say where things live. Every symbol a source file exports (a global
# function or variable of the project's static libraries, libddim_*.a, read with nm) starts
# with its file's name or with the first word(s) of it, then "_": cpu_conv.c exports cpu_*,
# trainer_state.c trainer_state_* or trainer_*, config_keys.c config_*. So sampler.c cannot
# define trainer_sample, nor run_log.c a bare make_dirs. Names that begin with "_" are the
# compilers' (C++ and CUDA runtime registration) and are left alone.
# The exceptions, each with its reason:
#   h5_util.c  h5u_*   short for h5_util: it wraps every HDF5 call of io/
# usage: check_names.sh BUILD_DIR [EXTRA.o]...   (an extra object is checked as well: the
# test's case of a misnamed function). Exits 0, or 1 with one line per misnamed symbol.
set -uo pipefail
build=${1:?usage: check_names.sh BUILD_DIR [EXTRA.o]...}
shift
libs=("$build"/libddim_*.a)
[[ -e "${libs[0]}" ]] || { echo "check_names: no libddim_*.a in $build" >&2; exit 2; }
nm -A -P -g --defined-only "${libs[@]}" "$@" 2>/dev/null | awk '
BEGIN { exception["h5_util"] = "h5u" }
{
    obj = $1; sub(/\]?:$/, "", obj); sub(/^.*[\[\/]/, "", obj)
    sym = $2; type = $3
    if (type !~ /^[TDBRCGS]$/ || sym ~ /^_/) next
    stem = obj; sub(/\.(c|cu|cc)\.o$/, "", stem); sub(/\.o$/, "", stem)
    n = split(stem, w, "_")
    ok = 0; prefix = ""
    for (i = 1; i <= n && !ok; i++) {
        prefix = prefix (i > 1 ? "_" : "") w[i]
        ok = sym == prefix || index(sym, prefix "_") == 1
    }
    if (!ok && (stem in exception))
        ok = index(sym, exception[stem] "_") == 1
    if (!ok) {
        printf "%s: exports %s, which does not start with %s_ (or the first word(s) of it)\n", obj, sym, stem
        bad++
    }
    count++
}
END {
    if (!bad) printf "check_names: %d exported symbols, each named after its file\n", count
    exit bad > 0
}'
