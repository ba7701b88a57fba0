#!/usr/bin/env bash
# run_slurm_test.sh: slurm/train.sh on a real (one-node, throwaway) Slurm cluster.
#
#   tests/slurm/run_slurm_test.sh PATH/TO/ddim-dist PATH/TO/ddim-prep     (CTest: test_slurm)
#
# Starts a private one-node cluster with tests/slurm/mini_cluster.sh (munged, slurmctld and
# slurmd as root, everything in a temp dir, two stand-in GPUs), then submits with sbatch:
#   1. training: slurm/train.sh with configs/quickstart.yaml made tiny through DDIM_ARGS and
#      arguments after the script (16x16, widths [8,16], batch 8, 1 epoch, a few steps) on
#      the CPU backend, --gpus-per-node=0 --ntasks-per-node=2: the job must be COMPLETED
#      with exit code 0:0, its output must show ONE job of 2 ranks ("2 rank(s)"), and the
#      run directory must hold metrics.jsonl, samples/epoch_0001.png, loss.png, config.yaml;
#   2. GPUs and the time-limit signal, with tests/slurm/stub_rank.sh as DDIM_BIN:
#      --gpus-per-node=2 --ntasks-per-node=2 gives 2 ranks that each see both GPUs
#      (CUDA_VISIBLE_DEVICES=0,1) with local ranks 0 and 1; a SIGUSR1 sent to the batch
#      script (what --signal=B:USR1@300 does before the time limit) is logged by its trap
#      and not passed to the ranks; with DDIM_FORWARD_SIGNAL=1 it is passed on;
#   3. refusals: a DDIM_BIN that is not an executable, and more GPUs than tasks, each end
#      the job FAILED with a clear message.
# The daemons are always stopped (trap on EXIT; pid files, TERM then KILL, bounded) and the
# temp dir removed; the test fails if any of their processes is left. Exits 77 (CTest's
# skip) when slurm-wlm or munge is not installed (tools/setup.sh installs them) or when not
# root. Needs no GPU. Set DDIM_SLURM_TEST_KEEP=1 to keep the temp dir (daemons still stop).
set -uo pipefail

if (($# != 2)); then
    echo "usage: $0 PATH/TO/ddim-dist PATH/TO/ddim-prep" >&2
    exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
dist=$(realpath "$1")
prep=$(realpath "$2")

for c in munged mungekey slurmctld slurmd sbatch squeue scontrol scancel srun; do
    if ! command -v "$c" >/dev/null; then
        echo "test_slurm: SKIP: $c not found; install Debian's slurm-wlm and munge (tools/setup.sh does)"
        exit 77
    fi
done
if [[ $(id -u) != 0 ]]; then
    echo "test_slurm: SKIP: needs root (the private cluster runs its daemons as SlurmUser=root)"
    exit 77
fi

source "$(dirname "$0")/../test_lib.sh" # status_problem; slurm_lib.sh redefines fail and ok
source "$(dirname "$0")/slurm_lib.sh"
slurm_clean_env
slurm_test_init ddim_slurm

cleanup() {
    local rc=$?
    slurm_stop_cluster || rc=1
    if [[ "${DDIM_SLURM_TEST_KEEP:-0}" == 1 ]]; then
        echo "test_slurm: kept $tmp"
    else
        rm -rf "$tmp"
    fi
    echo "test_slurm: $((SECONDS - t0)) s in all"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

MINI_CLUSTER_GPUS=2 "$here/mini_cluster.sh" start "$cluster" || {
    echo "FAIL the one-node cluster did not start"
    exit 1
}
export SLURM_CONF=$cluster/etc/slurm.conf
echo "test_slurm: cluster up after $((SECONDS - t0)) s"

# --- 1. training: 2 CPU ranks, one job ------------------------------------------------------
"$prep" --synthetic 64 --size 16 --seed 5 --output "$tmp/data.h5" >"$tmp/prep.log" 2>&1 || {
    cat "$tmp/prep.log"
    fail "ddim-prep --synthetic"
    exit 1
}
run=$tmp/run
post_args=(--set train.max_steps=4 --set run.backend=cpu)
id=$(DDIM_BIN=$dist DDIM_CONFIG=configs/quickstart.yaml DDIM_RUN_DIR=$run \
    DDIM_ARGS="--set data.path='$tmp/data.h5' --set model.image_size=16 \
--set model.widths=[8,16] --set model.block_depth=1 --set model.embedding_dims=8 \
--set train.batch_size=8 --set train.num_epochs=1 --set eval.plot_diffusion_steps=2 \
--set eval.plot_rows=2 --set eval.plot_cols=2" \
    submit train --nodes=1 --ntasks-per-node=2 --gpus-per-node=0 --cpus-per-task=1)
post_args=()
[[ -n "$id" ]] || {
    fail "sbatch slurm/train.sh (training job) was refused"
    exit 1
}
result=$(wait_job "$id" 300)
out=$tmp/train.out
if [[ "$result" == "COMPLETED 0:0" ]]; then
    ok "training job $id: $result"
else
    fail "training job $id: $result (expected COMPLETED 0:0)"
    show_output "$out"
fi
if grep -q ' 2 rank(s), cpu backend' "$out"; then
    ok "one job of 2 ranks: $(grep -o '[0-9]* rank(s), [a-z]* backend' "$out")"
else
    fail "no '2 rank(s), cpu backend' line in $out (were the ranks two 1-rank jobs?)"
fi
n_started=$(grep -c 'training and .* validation images' "$out")
[[ "$n_started" == 1 ]] || fail "$n_started 'training and validation images' lines, expected 1 (rank 0 only)"
grep -q 'OMP_NUM_THREADS=1' "$out" || fail "train.sh did not set OMP_NUM_THREADS=1 from --cpus-per-task"
for f in metrics.jsonl samples/epoch_0001.png loss.png config.yaml; do
    if [[ -s "$run/$f" ]]; then ok "run dir has $f"; else fail "run dir lacks $f"; fi
done
grep -q '"type":"step"' "$run/metrics.jsonl" 2>/dev/null || fail "metrics.jsonl has no step line"
grep -q 'image_size: 16' "$run/config.yaml" 2>/dev/null ||
    fail "config.yaml does not show the --set overrides (image_size: 16)"
grep -q 'max_steps: 4' "$run/config.yaml" 2>/dev/null ||
    fail "config.yaml does not show the arguments after the script (max_steps: 4)"

# --- 2. GPUs and the time-limit signal (stub ranks) ----------------------------------------
# signal_job NAME FORWARD NRANKS [sbatch options...]: runs the stub under train.sh, sends
# SIGUSR1 to the batch script once the ranks are up, then releases them.
signal_job() {
    local name=$1 forward=$2 nranks=$3
    shift 3
    local release=$tmp/$name.release out=$tmp/$name.out id result
    id=$(DDIM_BIN=$here/stub_rank.sh DDIM_CONFIG=configs/quickstart.yaml \
        DDIM_FORWARD_SIGNAL=$forward STUB_RELEASE=$release submit "$name" "$@")
    [[ -n "$id" ]] || {
        fail "sbatch slurm/train.sh ($name) was refused"
        return
    }
    if wait_line "$out" "stub rank $((nranks - 1)) of" 60; then
        # every rank started, so train.sh's trap is set and srun runs
        wait_line "$out" "stub rank 0 of" 10
        scancel --batch --signal=USR1 "$id" || fail "scancel --batch --signal=USR1 $id"
        wait_line "$out" 'SIGUSR1: the time limit is near' 20 ||
            fail "$name: train.sh's trap did not log the SIGUSR1"
        [[ "$forward" == 1 ]] && wait_line "$out" 'got SIGUSR1' 20
        sleep 0.5
    else
        fail "$name: the stub ranks did not start"
    fi
    : >"$release"
    result=$(wait_job "$id" 60)
    if [[ "$result" == "COMPLETED 0:0" ]]; then
        ok "$name job $id: $result"
    else
        fail "$name job $id: $result (expected COMPLETED 0:0)"
        show_output "$out"
    fi
}

signal_job gpus 0 2 --nodes=1 --ntasks-per-node=2 --gpus-per-node=2 --cpus-per-task=1
out=$tmp/gpus.out
for r in 0 1; do
    if grep -q "stub rank $r of 2: local $r cvd=0,1 omp=1 args: --config configs/quickstart.yaml" \
        "$out"; then
        ok "GPU rank $r: local rank $r, sees GPUs 0,1"
    else
        fail "GPU rank $r: expected 'stub rank $r of 2: local $r cvd=0,1 omp=1 ...' in $out"
    fi
done
if grep -q 'got SIGUSR1' "$out"; then
    fail "SIGUSR1 reached the ranks without DDIM_FORWARD_SIGNAL=1"
elif grep -q 'SIGUSR1: the time limit is near' "$out"; then
    ok "the trap logged SIGUSR1 and did not pass it to the ranks"
fi

signal_job forward 1 1 --nodes=1 --ntasks-per-node=1 --gpus-per-node=0 --cpus-per-task=2
if grep -q 'stub rank 0: got SIGUSR1' "$tmp/forward.out"; then
    ok "DDIM_FORWARD_SIGNAL=1 passed SIGUSR1 on to the rank"
else
    fail "DDIM_FORWARD_SIGNAL=1: SIGUSR1 did not reach the rank"
fi
grep -q 'omp=2 ' "$tmp/forward.out" || fail "--cpus-per-task=2 did not give OMP_NUM_THREADS=2"

# --- 3. refusals ---------------------------------------------------------------------------
# refused NAME MESSAGE [env...] -- [sbatch options...]
refused() {
    local name=$1 msg=$2 envs=() id result
    shift 2
    while [[ "$1" != -- ]]; do
        envs+=("$1")
        shift
    done
    shift
    id=$(
        export "${envs[@]}" DDIM_CONFIG=configs/quickstart.yaml
        submit "$name" "$@"
    )
    result=$(wait_job "$id" 60)
    # FAILED with an error exit (1..127) and no signal: Slurm's ExitCode is "status:signal"
    local exit_code=${result#FAILED } clean=0
    [[ "$result" == FAILED\ *:0 ]] && status_problem "${exit_code%:0}" error >/dev/null && clean=1
    if ((clean)) && grep -qF "$msg" "$tmp/$name.out"; then
        ok "$name: refused ($result): $(grep -oF "$msg" "$tmp/$name.out" | head -n 1)"
    else
        fail "$name job $id: $result; expected FAILED N:0 (N in 1..127) and '$msg' in its output"
        show_output "$tmp/$name.out"
    fi
}
refused nobin "is not an executable file" DDIM_BIN="$tmp/no-such-ddim-dist" -- \
    --ntasks-per-node=1 --gpus-per-node=0 --cpus-per-task=1
refused mismatch "ddim-dist runs one rank per GPU" DDIM_BIN="$dist" -- \
    --ntasks-per-node=1 --gpus-per-node=2 --cpus-per-task=1

if ((failures)); then
    echo "test_slurm: $failures check(s) failed"
    for f in "$cluster"/log/*.log; do
        echo "---- last lines of $f"
        tail -n 15 "$f"
    done
    exit 1
fi
echo "test_slurm: all checks passed ($((SECONDS - t0)) s before stopping the cluster)"
exit 0
