#!/usr/bin/env bash
# A rank that dies makes the whole job exit, with an error naming the rank, within a
# bounded time (label mpi). Three ways to die:
#  1. rank 1 of a real ddim-dist run is killed with SIGKILL mid-training;
#  2. rank 1 of test_mpi_fault fails through DDIM_FATAL while rank 0 waits in all-reduce;
#  3. the same, with mpirun stopped (SIGSTOP) first, so that MPI_Abort cannot end the job (as
#     when the launcher cannot reach a lost node): rank 1 must exit by itself within the
#     grace of comm/comm_mpi_exit.h (10 s), with its status and a last line saying so.
# usage: test_rank_dies.sh MPIEXEC DDIM_DIST DDIM_PREP TEST_MPI_FAULT
set -u
# shellcheck source=tests/test_lib.sh
source "$(dirname "$0")/../test_lib.sh"
mpiexec=$1 dist=$2 prep=$3 fault=$4
limit=60 # seconds a job may take to notice and exit
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
run=("$mpiexec" --allow-run-as-root --oversubscribe -np 2)

# await_job PID SECONDS PATTERN WHAT: waits for the background job PID, its status into
# $rc; after SECONDS it kills it and the processes matching PATTERN, and fails with WHAT
await_job() {
    local end=$(($(date +%s) + $2))
    while kill -0 "$1" 2>/dev/null && (($(date +%s) < end)); do
        sleep 0.2
    done
    if kill -0 "$1" 2>/dev/null; then
        pkill -9 -f "$3"
        kill -9 "$1"
        fail "$4"
    fi
    wait "$1"
    rc=$?
}

# rank1 PATTERN: the pid of rank 1 among the processes whose command line matches PATTERN
rank1() {
    local pid
    for pid in $(pgrep -f "$1"); do
        tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -qx 'OMPI_COMM_WORLD_RANK=1' &&
            echo "$pid"
    done
}

# --- 1. SIGKILL of rank 1 of ddim-dist -------------------------------------------------
run_expect "ddim-prep" 0 "$prep" --synthetic 48 --size 16 --output "$tmp/data.h5"
cat >"$tmp/cfg.yaml" <<YAML
data: {path: "$tmp/data.h5", dataset_repetitions: 1}
model: {image_size: 16, widths: [8, 16], block_depth: 1, embedding_dims: 8}
train: {num_epochs: 100000, batch_size: 8}
eval: {plot_diffusion_steps: 2}
run: {dir: "$tmp/run", backend: cpu, progress_seconds: 1000}
YAML
"${run[@]}" "$dist" --config "$tmp/cfg.yaml" >"$tmp/out" 2>&1 &
job=$!
for _ in $(seq 300); do # wait until training has started (the metrics log has a step; 60 s:
    # the sanitizer build under load starts slowly)
    grep -q '"type":"step"' "$tmp/run/metrics.jsonl" 2>/dev/null && break
    sleep 0.2
done
victim=$(rank1 "$dist --config $tmp/cfg.yaml")
[[ -n $victim ]] || { kill "$job"; fail "could not find rank 1 of the training job"; }
start=$(date +%s)
kill -9 "$victim"
await_job "$job" "$limit" "$dist --config $tmp/cfg.yaml" \
    "the job still ran $limit s after its rank 1 was killed"
elapsed=$(($(date +%s) - start))
# mpirun reports the SIGKILL it saw (137); any other signal is a crash of the survivor
((rc == 128 + 9)) || check_status "the job after its rank 1 was killed" $rc error
grep -Eiq "rank 1|process rank 1" "$tmp/out" || fail "the job's output does not name rank 1"
echo "ok   SIGKILL of rank 1: job exited with $rc after ${elapsed}s, naming rank 1"

# --- 2. DDIM_FATAL on rank 1 ------------------------------------------------------------
start=$(date +%s)
timeout $limit "${run[@]}" "$fault" >"$tmp/out" 2>&1
rc=$?
elapsed=$(($(date +%s) - start))
((rc != 124)) || fail "test_mpi_fault hung: still running after $limit s"
check_status "test_mpi_fault (DDIM_FATAL on rank 1)" $rc error
grep -q "error (rank 1 on" "$tmp/out" || fail "the error does not name rank 1"
echo "ok   DDIM_FATAL on rank 1: job exited with $rc after ${elapsed}s, naming rank 1"

# --- 3. DDIM_FATAL on rank 1 while the launcher cannot act ------------------------------
"${run[@]}" "$fault" --fail-when "$tmp/go" >"$tmp/out" 2>&1 &
job=$!
for _ in $(seq 300); do # rank 1 says it waits once it is past start-up
    grep -q "rank 1 waits for" "$tmp/out" 2>/dev/null && break
    sleep 0.1
done
victim=$(rank1 "$fault --fail-when $tmp/go")
[[ -n $victim ]] || { kill "$job"; fail "could not find rank 1 of test_mpi_fault --fail-when"; }
kill -STOP "$job"
start=$(date +%s)
: >"$tmp/go"
# running: alive and not a zombie (mpirun, stopped, cannot reap it)
running() { [[ -r /proc/$1/stat && $(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null) != Z ]]; }
while running "$victim" && (($(date +%s) - start < 30)); do
    sleep 0.2
done
elapsed=$(($(date +%s) - start))
running "$victim" && gone=0 || gone=1
kill -CONT "$job"
await_job "$job" 60 "$fault --fail-when $tmp/go" "mpirun still ran 60 s after it was resumed"
((gone)) || { kill -9 "$victim"; fail "rank 1 was still in MPI_Abort 30 s after it failed"; }
((elapsed <= 20)) || fail "rank 1 took ${elapsed}s to exit by itself (grace 10 s)"
check_status "test_mpi_fault --fail-when (mpirun stopped)" $rc error
grep -q "ddim-dist: rank 1 on [^:]*: MPI_Abort has not ended the job within 10 s; exiting by itself with status 1" "$tmp/out" ||
    fail "rank 1 did not say it exits by itself"
echo "ok   DDIM_FATAL on rank 1 with mpirun stopped: rank 1 exited by itself after ${elapsed}s; job exited with $rc"
echo "test_rank_dies: 3 passed, 0 failed"
