# shellcheck shell=bash
# slurm_lib.sh: what the Slurm tests share (sourced by run_slurm_test.sh and
# run_cluster_test.sh, not run, after test_lib.sh): a temporary folder and failures that are
# counted, a clean environment, submitting slurm/train.sh, waiting for
# a job or a line of its output, and stopping the private cluster with the check that
# nothing of it is left. Expects $repo (the repository root), $tmp (the test's temporary
# folder, where each job's output goes) and $cluster (the cluster's directory).

# slurm_test_init NAME: $t0, $tmp (a new /tmp/NAME_XXXXXX, searchable by all, as munged
# wants its socket's parents), $cluster in it, and fail / ok that count failures in
# $failures (they replace test_lib.sh's, which end the test at the first failure)
slurm_test_init() {
    t0=$SECONDS
    tmp=$(mktemp -d "/tmp/$1_XXXXXX") || exit 1
    chmod 755 "$tmp"
    cluster=$tmp/cluster
    failures=0
}
fail() {
    echo "FAIL $*"
    failures=$((failures + 1))
}
ok() { echo "ok   $*"; }

# a Slurm job around us (or a real cluster's settings) must not leak into ours
slurm_clean_env() {
    local v
    while read -r v; do unset "$v"; done < <(env | sed -n 's/^\(SLURM_[A-Za-z0-9_]*\)=.*/\1/p')
    unset DDIM_BIN DDIM_CONFIG DDIM_RUN_DIR DDIM_ARGS DDIM_SRUN_MPI DDIM_SRUN_ARGS \
        DDIM_SRUN_GPU_ARGS DDIM_FORWARD_SIGNAL
}

# submit NAME [sbatch options...]: submits slurm/train.sh from the repository root with the
# output in $tmp/NAME.out and the arguments "${post_args[@]}" after the script; prints the
# job id.
post_args=()
submit() {
    local name=$1
    shift
    (cd "$repo" && sbatch --parsable --job-name="$name" --output="$tmp/$name.out" \
        --time=00:05:00 "$@" slurm/train.sh "${post_args[@]}") | cut -d';' -f1
}

job_field() { scontrol show job -o "$1" 2>/dev/null | tr ' ' '\n' | sed -n "s/^$2=//p"; }

# wait_job ID SECONDS: waits until the job has ended; prints its state and exit code.
wait_job() {
    local id=$1 deadline=$((SECONDS + $2)) state
    while :; do
        state=$(job_field "$id" JobState)
        case "$state" in
        PENDING | RUNNING | CONFIGURING | COMPLETING | SUSPENDED | REQUEUED | "") ;;
        *) break ;;
        esac
        if ((SECONDS >= deadline)); then
            scancel "$id" 2>/dev/null
            state="$state(timed-out-waiting)"
            break
        fi
        sleep 0.5
    done
    echo "$state $(job_field "$id" ExitCode)"
}

# wait_line FILE REGEX SECONDS: waits until FILE has a line matching REGEX.
wait_line() {
    local deadline=$((SECONDS + $3))
    until grep -qE "$2" "$1" 2>/dev/null; do
        ((SECONDS >= deadline)) && return 1
        sleep 0.2
    done
}

show_output() {
    echo "---- $1"
    sed 's/^/    /' "$1" 2>/dev/null | grep -v '^      ' | tail -n 40
}

# slurm_stop_cluster: stops the cluster (tests/slurm/mini_cluster.sh stop) and checks that
# the processes of its pid files are gone; 1 (with FAIL lines) if anything is left.
slurm_stop_cluster() {
    local rc=0 f p
    "$repo/tests/slurm/mini_cluster.sh" stop "$cluster" || {
        echo "FAIL the cluster's processes did not all stop"
        rc=1
    }
    for f in "$cluster"/run/*.pid; do
        [[ -f "$f" ]] || continue
        p=$(cat "$f")
        if [[ -n "$p" ]] && kill -0 "$p" 2>/dev/null; then
            echo "FAIL $(basename "$f" .pid) (pid $p) is still running"
            rc=1
        fi
    done
    return $rc
}
