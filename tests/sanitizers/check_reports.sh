#!/usr/bin/env bash
# check_reports.sh DIR: the sanitizer build's last test (tests/CMakeLists.txt). Fails, and
# prints them, when AddressSanitizer, LeakSanitizer or UndefinedBehaviorSanitizer wrote any
# report into DIR during the test run.
set -u
dir=$1
shopt -s nullglob
reports=("$dir"/report*)
if ((${#reports[@]} == 0)); then
    echo "sanitizers: no reports"
    exit 0
fi
for r in "${reports[@]}"; do
    echo "=== $r"
    cat "$r"
done
echo "FAIL: ${#reports[@]} sanitizer report(s) above"
exit 1
