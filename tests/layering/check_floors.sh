#!/usr/bin/env bash
# check_floors.sh: the floors of the house hold (tests/layering/floors.txt, docs/design.md
# "The house"), in two ways that a hand-written line cannot get around:
#   includes  no #include names a path with "..", no quoted #include names a directory (a
#             header is found by name, in the include directories of its floor), and no file
#             includes a header of a floor above its own or beside it;
#   links     (with --build) every undefined symbol of an object in a floor's library
#             (libddim_*.a, read with nm) is defined by its own floor, by a floor below, or
#             by no library of the project (a system library): a hand-written `extern`
#             prototype of a function of a higher floor compiles, but is caught here.
# usage: check_floors.sh SRC_DIR [--build BUILD_DIR] [--source FLOOR:FILE]... [--object FLOOR:FILE.o]...
#   --source / --object add a file to a floor (tests/layering's cases: a file that must fail).
# Exits 0 when the floors hold, 1 with one line per breach, 2 on bad usage.
set -uo pipefail
src=${1:?usage: check_floors.sh SRC_DIR [--build BUILD_DIR] [--source FLOOR:FILE]... [--object FLOOR:FILE.o]...}
shift
build="" sources=() objects=()
while (($#)); do
    case $1 in
    --build) build=$2 ;;
    --source) sources+=("$2") ;;
    --object) objects+=("$2") ;;
    *) echo "check_floors: unknown argument '$1'" >&2; exit 2 ;;
    esac
    shift 2 || { echo "check_floors: $1 needs a value" >&2; exit 2; }
done
cd "$src" || exit 2
floors=tests/layering/floors.txt
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# every source file of the floors (tests/layering/cases holds the cases that must fail)
find src/base kernels comm io src/model src/programs tests -type f \
    \( -name '*.c' -o -name '*.h' -o -name '*.cu' -o -name '*.cuh' -o -name '*.cc' \) \
    -not -path 'tests/layering/cases/*' | sort >"$tmp/files"
: >"$tmp/extra"
for s in ${sources[@]+"${sources[@]}"}; do
    echo "${s#*:} ${s%%:*}" >>"$tmp/extra"
    echo "${s#*:}" >>"$tmp/files"
done
# file:line:#include ... of every file
xargs grep -HnE '^[[:space:]]*#[[:space:]]*include[[:space:]]*["<][^">]*[">]' <"$tmp/files" \
    >"$tmp/includes" || true

# The floors' awk functions: floor_of(path) for a source file, from floors.txt and the
# extra files' floors.
cat >"$tmp/floors.awk" <<'AWK'
FILENAME == FLOORS && !/^#/ && NF >= 3 {
    level[$2] = $1
    for (i = 3; i <= NF; i++)
        if ($i ~ /\/$/) folder[$i] = $2; else unit[$i] = $2
    next
}
FILENAME == EXTRA { extra[$1] = $2; next }
function floor_of(path,   u, f, best) {
    if (path in extra) return extra[path]
    u = path; sub(/\.[^.\/]*$/, "", u)
    if (u in unit) return unit[u]
    best = ""
    for (f in folder)
        if (index(path, f) == 1 && length(f) > length(best)) best = f
    return best == "" ? "" : folder[best]
}
# "up" when floor a may not use floor b: b lies higher, or beside a on the same level
function breach(a, b) {
    if (level[b] + 0 > level[a] + 0) return "above"
    if (level[b] + 0 == level[a] + 0 && a != b) return "beside"
    return ""
}
AWK

cat >"$tmp/includes.awk" <<'AWK'
FILENAME == FILES { path[++n] = $0; exists[$0] = 1; b = $0; sub(/.*\//, "", b); by_name[b] = by_name[b] ? by_name[b] : $0; next }
{
    # file:line:#include "name"  or  <name>
    file = $0; sub(/:.*/, "", file)
    rest = substr($0, length(file) + 2); ln = rest; sub(/:.*/, "", ln)
    text = substr(rest, length(ln) + 2)
    quoted = text ~ /include[[:space:]]*"/
    name = text; sub(/^[^"<]*["<]/, "", name); sub(/[">].*/, "", name)
    if (name ~ /\.\./) {
        printf "%s:%s: #include of \"%s\": a path through \"..\" reaches around the floors; include a header by its name, from a floor below\n", file, ln, name
        bad++; next
    }
    if (!quoted) next
    if (name ~ /\//) {
        printf "%s:%s: #include \"%s\" names a directory; include a header by its name (the include directories are the floors's)\n", file, ln, name
        bad++; next
    }
    dir = file; sub(/[^\/]*$/, "", dir)
    target = (dir name) in exists ? dir name : by_name[name]
    if (target == "") next   # not the project's: a system header
    a = floor_of(file); b = floor_of(target)
    if (a == "" || b == "") next  # reported below
    why = breach(a, b)
    if (why != "") {
        printf "%s:%s: includes %s, of floor %s (level %s), %s its own floor %s (level %s)\n", file, ln, target, b, level[b], why, a, level[a]
        bad++
    }
}
END {
    for (i = 1; i <= n; i++)
        if (floor_of(path[i]) == "") {
            printf "%s: on no floor: add it to %s\n", path[i], FLOORS
            bad++
        }
    exit bad > 0
}
AWK
awk -v FLOORS="$floors" -v EXTRA="$tmp/extra" -v FILES="$tmp/files" -f "$tmp/floors.awk" \
    -f "$tmp/includes.awk" "$floors" "$tmp/extra" "$tmp/files" "$tmp/includes"
rc=$?

if [[ -n "$build" ]]; then
    # object -> floor: the library's floor, or (src/model) the object's unit
    : >"$tmp/objects"
    for lib in "$build"/libddim_*.a; do
        [[ -e "$lib" ]] || continue
        case $(basename "$lib") in
        libddim_base.a) floor=ground ;;
        libddim_kernels.a | libddim_cuda.a) floor=kernels ;;
        libddim_comm.a) floor=comm ;;
        libddim_io.a) floor=io ;;
        libddim_model.a) floor=MODEL ;;
        *) continue ;;
        esac
        nm -A -P "$lib" 2>/dev/null | awk -v floor="$floor" '{
            obj = $1; sub(/^.*\[/, "", obj); sub(/\]:$/, "", obj)
            f = floor
            if (f == "MODEL") { u = obj; sub(/\.[^.]*\.o$/, "", u); f = "unit:src/model/" u }
            print f, obj, $2, $3 }' >>"$tmp/objects"
    done
    for o in ${objects[@]+"${objects[@]}"}; do
        nm -A -P "${o#*:}" 2>/dev/null | awk -v floor="${o%%:*}" '{
            obj = $1; sub(/:$/, "", obj); sub(/.*\//, "", obj); print floor, obj, $2, $3 }' >>"$tmp/objects"
    done
    cat >"$tmp/links.awk" <<'AWK'
FILENAME == OBJECTS {
        # floor object symbol type
        f = $1
        if (f ~ /^unit:/) f = floor_of(substr(f, 6) ".c")
        if ($4 == "U" || $4 == "w") { need[++n] = f SUBSEP $2 SUBSEP $3; next }
        if ($4 !~ /^[TDBRCWVGSiu]$/) next
        # a symbol defined on several floors (a weak one): the highest counts
        if (!($3 in def) || breach(def[$3], f) == "above") { def[$3] = f; where[$3] = $2 }
        next
    }
    END {
        for (i = 1; i <= n; i++) {
            split(need[i], p, SUBSEP)
            if (!(p[3] in def)) continue   # a system library's
            why = breach(p[1], def[p[3]])
            if (why != "") {
                printf "%s (floor %s, level %s) calls %s, defined by %s of floor %s (level %s), %s its own\n", p[2], p[1], level[p[1]], p[3], where[p[3]], def[p[3]], level[def[p[3]]], why
                bad++
            }
        }
        exit bad > 0
    }
AWK
    awk -v FLOORS="$floors" -v EXTRA="$tmp/extra" -v OBJECTS="$tmp/objects" \
        -f "$tmp/floors.awk" -f "$tmp/links.awk" "$floors" "$tmp/extra" "$tmp/objects" || rc=1
fi
if ((rc == 0)); then
    echo "check_floors: every include${build:+ and every call} of $(wc -l <"$tmp/files") files looks down or within its floor"
fi
exit "$rc"
