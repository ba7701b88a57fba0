#!/usr/bin/env bash
# expect_exit.sh: runs one program for a CTest test and checks both its exit status (the
# rules of test_lib.sh: a signal never passes) and that its output holds a message.
# usage: expect_exit.sh WANT PATTERN COMMAND...   (WANT: a number, "error" or "clean";
# PATTERN: an extended regular expression the output must match)
set -u
# shellcheck source=tests/test_lib.sh
source "$(dirname "$0")/test_lib.sh"
want=$1 pattern=$2
shift 2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
run_expect "$(basename "$1")" "$want" "$@"
grep -Eq "$pattern" "$tmp/out" || fail "$(basename "$1"): no line matching '$pattern' in its output"
ok "$(basename "$1"): exit status as expected ($want), '$pattern' in its output"
