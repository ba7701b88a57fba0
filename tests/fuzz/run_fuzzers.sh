#!/usr/bin/env bash
# run_fuzzers.sh BUILD_DIR [SECONDS] [TARGET...]: runs each libFuzzer target of a
# DDIM_FUZZ build (README "Sanitizers and fuzzing") for SECONDS (default 20) on a copy of
# its seed corpus tests/fuzz/corpus/<target>, then sorts what it found.
#
# libFuzzer runs in fork mode and goes on after a finding (-ignore_crashes etc.), so that
# every target gets its whole time. Each finding (crash, sanitizer report, leak, timeout,
# out-of-memory) is replayed alone with whole stacks and judged by the first stack frame
# that is either in this repository's sources or in a library:
#   - ours (a frame in src/, io/, tools/, ...; or a UBSan "runtime error" in our file, or a
#     refusal without a message): printed in full; the script fails;
#   - third-party (the fault, hang or allocation is inside libhdf5, libjpeg, libpng,
#     libyaml, zlib): listed with its top frames, not a failure. HDF5 1.10 (Debian 12)
#     crashes, hangs and leaks on some corrupt files inside its own parser (e.g. H5HG_read
#     on a garbled variable-length string): nothing this project can fix or guard against,
#     so it must not turn CI red; the list says how often it happened.
# A finding that does not reproduce alone is listed as such. The findings are kept in
# BUILD_DIR/fuzz-findings/<target>/ (a crash of ours: add it to tests/fuzz/regressions/,
# see README). Exit 0 when no finding is ours.
set -uo pipefail
build=$(realpath "$1")
secs=${2:-20}
shift $(($# >= 2 ? 2 : $#))
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
targets=("$@")
if ((${#targets[@]} == 0)); then
    targets=(config dataset checkpoint ema_weights image dataset_edit checkpoint_edit ema_weights_edit)
    # a build without protobuf-c or ISA-L has no event files to read
    [[ -x $build/tests/fuzz_tb_events ]] && targets+=(tb_events)
fi
out=$build/fuzz-findings
rm -rf "$out"
export OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE
limits=(-timeout=5 -rss_limit_mb=2048)

# judge REPORT_FILE: prints "ours", "third-party LIB: frames" or "none"
judge() {
    awk -v repo="$repo/" '
    function lib(loc) { if (match(loc, /lib(hdf5|jpeg|png|yaml|z|sz|aec)[^\/ ]*\.so/))
                          return substr(loc, RSTART, RLENGTH); return "" }
    /runtime error:/ { if (index($0, repo) == 1 && !verdict) verdict = "ours" }
    /refused the input without a message/ { if (!verdict) verdict = "ours" }
    /ERROR: |leak of|ALARM:|out-of-memory/ { decided = 0 }
    /^ *#[0-9]+ 0x/ {
        if (decided) next
        if (index($0, repo) && $0 ~ /\.c:[0-9]+/) { decided = 1; if (!verdict) verdict = "ours"; next }
        l = lib($0)
        if (l != "") { decided = 1; if (!third) { third = l; fn = ($3 == "in") ? $4 : "?" } }
    }
    END {
        if (verdict) print verdict
        else if (third) print "third-party " third " (" fn ")"
        else print "none"
    }' "$1"
}

failed=0
for t in "${targets[@]}"; do
    bin=$build/tests/fuzz_$t
    [[ -x $bin ]] || { echo "run_fuzzers: $bin missing (build with -DDDIM_FUZZ=ON, target fuzzers)"; exit 2; }
    work=$out/$t
    mkdir -p "$work/corpus" "$work/found"
    cp "$here/corpus/$t"/* "$work/corpus/"
    start=$SECONDS
    "$bin" -fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1 -max_total_time="$secs" \
        "${limits[@]}" -artifact_prefix="$work/found/" "$work/corpus" >"$work/log" 2>&1
    runs=$(grep -o '^#[0-9]*' "$work/log" | tail -1)
    echo "fuzz_$t: ${secs} s, ${runs:-#0} runs, $(ls "$work/found" | wc -l) finding(s) ($((SECONDS - start)) s wall)"
    for f in "$work/found"/*; do
        [[ -e $f ]] || continue
        ASAN_OPTIONS=fast_unwind_on_malloc=0 timeout 120 "$bin" "${limits[@]}" "$f" >"$f.report" 2>&1
        rc=$?
        verdict=$(judge "$f.report")
        if ((rc == 0)); then
            echo "  $(basename "$f"): does not reproduce alone"
        elif [[ $verdict == ours ]]; then
            echo "  $(basename "$f"): OURS, the loader's fault:"
            sed 's/^/    /' "$f.report" | grep -v '^    INFO:' | head -80
            failed=1
        else
            echo "  $(basename "$f"): $verdict"
        fi
    done
done
((failed)) && echo "run_fuzzers: FAIL: a loader crashed, hung or leaked (inputs in $out)"
exit $failed
