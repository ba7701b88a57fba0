#!/usr/bin/env bash
# config_docs.sh: the key list of docs/config.md, from the key table itself
# (src/model/config_keys.c, written out by `ddim-dist --list-keys`).
#   tools/config_docs.sh build/ddim-dist           rewrite the list in docs/config.md
#   tools/config_docs.sh build/ddim-dist --check   fail when the list there is stale (ctest:
#                                                  test_config_docs)
set -euo pipefail
dist=${1:?usage: tools/config_docs.sh PATH/TO/ddim-dist [--check]}
mode=${2:-write}
doc="$(cd "$(dirname "$0")/.." && pwd)/docs/config.md"
begin='<!-- keys: written by tools/config_docs.sh from ddim-dist --list-keys; do not edit -->'
end='<!-- end of keys -->'
grep -qxF "$begin" "$doc" && grep -qxF "$end" "$doc" || {
    echo "config_docs: $doc lacks the lines '$begin' and '$end'" >&2
    exit 1
}
keys=$("$dist" --list-keys)
# the document with the lines between the markers replaced by the table
wanted=$(awk -v begin="$begin" -v end="$end" -v keys="$keys" '
    $0 == begin { print; print keys; skip = 1; next }
    $0 == end { skip = 0 }
    !skip { print }' "$doc")
if [[ "$mode" == --check ]]; then
    if ! diff -u "$doc" <(printf '%s\n' "$wanted") >&2; then
        echo "config_docs: the key list in $doc differs from the key table (above: - is the" \
             "document, + the table); run tools/config_docs.sh $dist" >&2
        exit 1
    fi
    echo "config_docs: $doc lists the key table's $(printf '%s\n' "$keys" | grep -c '^| `') keys"
else
    printf '%s\n' "$wanted" >"$doc.tmp" && mv "$doc.tmp" "$doc"
    echo "config_docs: $doc rewritten"
fi
