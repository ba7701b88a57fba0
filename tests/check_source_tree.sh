#!/usr/bin/env bash
# check_source_tree.sh: nothing stray. The suite's first test notes the untracked files of
# the source tree (git status); its last one fails when a test left any that were not
# there before, and names them: a test writes under the build folder or a temporary one.
# usage: check_source_tree.sh before|after SRC_DIR LIST_FILE   (when SRC_DIR is not a git
# checkout or git is missing: "before" passes, so that the tests that need it still run, and
# "after" exits 77, skipped)
set -uo pipefail
mode=${1:?usage: check_source_tree.sh before|after SRC_DIR LIST_FILE} src=${2:?} list=${3:?}
if ! command -v git >/dev/null || ! git -C "$src" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    echo "check_source_tree: $src is not a git checkout (or git is missing): not checked"
    [[ "$mode" == before ]] && exit 0
    exit 77
fi
untracked() {
    git -C "$src" status --porcelain --untracked-files=all | sed -n 's/^?? //p' | sort
}
if [[ "$mode" == before ]]; then
    untracked >"$list"
    echo "check_source_tree: $(wc -l <"$list") untracked file(s) before the tests"
    exit 0
fi
[[ -f "$list" ]] || : >"$list"
new=$(comm -13 "$list" <(untracked))
if [[ -n "$new" ]]; then
    echo "check_source_tree: the tests left these untracked files in $src (write under the" \
         "build folder or a temporary one; remove what a test makes):"
    printf '  %s\n' $new
    exit 1
fi
echo "check_source_tree: no test left a file in $src"
