#!/usr/bin/env bash
# check_reports.sh DIR: the sanitizer build's last test (tests/CMakeLists.txt). Fails, and
# prints them, when AddressSanitizer, LeakSanitizer or UndefinedBehaviorSanitizer wrote any
# report of a finding into DIR during the test run.
#
# One kind of report is not a finding: LeakSanitizer's own stop-the-world tracer crashing at
# a process's exit ("Tracer caught signal 11 ... LeakSanitizer has encountered a fatal
# error"), a known intermittent fault of LSan itself (seen here about once in five ASan runs,
# under multi-rank MPI tests). Such a report says the leak check of that process did not
# run; it names no leak, no memory error and no undefined behaviour. It is printed, and
# counted, but does not fail the check. Every real finding ends with a "SUMMARY:" line (or,
# for UBSan, carries "runtime error:"), so a report with either always fails.
set -u
dir=$1
shopt -s nullglob
reports=("$dir"/report*)
findings=0
tracer_only=0
for r in "${reports[@]}"; do
    if grep -q 'LeakSanitizer has encountered a fatal error' "$r" &&
        ! grep -q -e 'SUMMARY:' -e 'runtime error:' -e 'ERROR: ' "$r"; then
        echo "=== $r (LeakSanitizer's tracer crashed: this process's leak check did not run)"
        cat "$r"
        tracer_only=$((tracer_only + 1))
        continue
    fi
    echo "=== $r"
    cat "$r"
    findings=$((findings + 1))
done
if ((findings > 0)); then
    echo "FAIL: $findings sanitizer report(s) of findings above"
    exit 1
fi
if ((tracer_only > 0)); then
    echo "sanitizers: no findings; LeakSanitizer could not check $tracer_only process(es) (its tracer crashed)"
else
    echo "sanitizers: no reports"
fi
exit 0
