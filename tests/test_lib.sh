# shellcheck shell=bash
# test_lib.sh: what the shell tests share (sourced, not run). Every program a test runs
# has its exit status checked here, the same way everywhere: a status of 128 or more is a
# death by a signal as the shell reports it (139: a segmentation fault) and never passes,
# whatever the test expected; a failure the test provokes must be a clean exit 1..127.
# Uses $tmp (the test's temporary folder): a failing check shows the end of $tmp/out.

fail() {
    echo "FAIL: $*"
    [[ -n "${tmp:-}" && -f $tmp/out ]] && tail -20 "$tmp/out"
    exit 1
}
ok() { echo "ok   $*"; }

# status_problem RC WANT: prints what is wrong with exit status RC (empty when nothing) and
# returns 1 when something is. WANT: a number (that exact status), "error" (1..127) or
# "clean" (any exit 0..127: the test checks the outcome some other way).
status_problem() {
    local rc=$1 want=$2
    if ((rc >= 128)); then
        echo "killed by signal $((rc - 128)) (exit status $rc)"
    elif [[ $want == clean ]]; then
        return 0
    elif [[ $want == error ]]; then
        ((rc != 0)) && return 0
        echo "exited 0, expected an error exit (1..127)"
    else
        ((rc == want)) && return 0
        echo "exit status $rc, expected $want"
    fi
    return 1
}

# check_status LABEL RC WANT: fails the test unless RC is as WANT (see status_problem).
check_status() {
    local problem
    problem=$(status_problem "$2" "$3") || fail "$1: $problem"
}

# run_expect LABEL WANT COMMAND...: runs COMMAND (stdout and stderr into $tmp/out) and
# checks its exit status.
run_expect() {
    local label=$1 want=$2
    shift 2
    "$@" >"$tmp/out" 2>&1
    check_status "$label" $? "$want"
}
