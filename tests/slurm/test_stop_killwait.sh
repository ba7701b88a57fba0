#!/usr/bin/env bash
# test_stop_killwait.sh: a cancelled Slurm job of two ranks saves its checkpoint within
# KillWait (docs/slurm.md, "Time limit, signals and requeueing").
#
#   tests/slurm/test_stop_killwait.sh PATH/TO/ddim-dist PATH/TO/ddim-prep   (CTest: test_slurm_killwait)
#
# Starts the private one-node cluster of tests/slurm/mini_cluster.sh, whose slurm.conf has
# KillWait=5 (Slurm's default is 30), and runs slurm/train.sh with 2 CPU ranks on steps of
# about half a second or more (64 px, widths 32,64, batch 48, one core per rank): slow enough
# that eight of them take longer than the 2 s bound on the agreement. Right after a step whose number is 1 more than a
# multiple of 8 it cancels the job (scancel: SIGTERM to every rank, SIGKILL 5 s later). The
# ranks must agree on the stop at once (their agreement is bounded in time as well as in
# steps: with steps this slow they agree after every step), write the checkpoint of the
# step they stopped at and say so, before the SIGKILL. Agreeing only every 8 steps, they
# would need 7 more steps first and be killed without a checkpoint.
# Exits 77 (skipped) without slurm-wlm and munge or when not root, as run_slurm_test.sh, and
# in a sanitizer build (its steps are too slow for the timing);
# DDIM_SLURM_TEST_KEEP=1 keeps its temp dir (job output, daemon logs).
set -uo pipefail

if (($# != 2)); then
    echo "usage: $0 PATH/TO/ddim-dist PATH/TO/ddim-prep" >&2
    exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
dist=$(realpath "$1")
prep=$(realpath "$2")
source "$here/slurm_lib.sh"
if [[ -n ${ASAN_OPTIONS:-} ]]; then # steps 3 to 5 times slower: no test of a 5 s KillWait
    echo "test_slurm_killwait: SKIP: a sanitizer build's steps are too slow for KillWait=5 s"
    exit 77
fi
slurm_require test_slurm_killwait munged mungekey slurmctld slurmd sbatch squeue scontrol \
    scancel srun h5dump
slurm_clean_env
slurm_test_init ddim_killwait
cleanup() {
    local rc=$?
    slurm_stop_cluster || rc=1
    if [[ ${DDIM_SLURM_TEST_KEEP:-0} == 1 ]]; then echo "kept $tmp"; else rm -rf "$tmp"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# slurm_lib.sh's fail counts; this test ends at its first failure
fail() {
    echo "FAIL $*"
    [[ -f $tmp/killwait.out ]] && grep -v '^  ' "$tmp/killwait.out" | tail -15
    exit 1
}

"$here/mini_cluster.sh" start "$cluster" >/dev/null || fail "the one-node cluster did not start"
export SLURM_CONF=$cluster/etc/slurm.conf
killwait=$(sed -n 's/^KillWait=//p' "$SLURM_CONF")
"$prep" --synthetic 600 --size 64 --seed 5 --output "$tmp/data.h5" >/dev/null 2>&1 || fail "ddim-prep"
run=$tmp/run
id=$(DDIM_BIN=$dist DDIM_CONFIG=configs/quickstart.yaml DDIM_RUN_DIR=$run \
    DDIM_ARGS="--set data.path='$tmp/data.h5' --set model.image_size=64 \
--set model.widths=[32,64] --set model.block_depth=1 --set model.embedding_dims=8 \
--set train.batch_size=48 --set train.num_epochs=1000 --set data.dataset_repetitions=10 --set eval.plot_diffusion_steps=2 \
--set eval.plot_rows=1 --set eval.plot_cols=2 --set eval.kid_every=0 \
--set run.progress_seconds=0 --set run.backend=cpu" \
    submit killwait --time=00:10:00 --nodes=1 --ntasks-per-node=2 --gpus-per-node=0 \
    --cpus-per-task=1)
[[ -n $id ]] || fail "sbatch refused the job"

# a step line 8k + 1 (k >= 1) in metrics.jsonl: 7 steps before an every-8-steps agreement
deadline=$((SECONDS + 240))
step=""
while ((SECONDS < deadline)); do
    step=$(jq -r 'select(.type == "step") | .step' "$run/metrics.jsonl" 2>/dev/null | tail -1)
    [[ -n $step ]] && ((step >= 9 && step % 8 == 1)) && break
    sleep 0.05
done
[[ -n $step ]] && ((step % 8 == 1)) || fail "no step 8k + 1 within 240 s (last: '$step')"
t_cancel=$SECONDS
scancel "$id"
deadline=$((SECONDS + 60))
while ((SECONDS < deadline)); do
    state=$(job_field "$id" JobState)
    [[ $state == RUNNING || $state == COMPLETING || $state == CONFIGURING ]] || break
    sleep 0.2
done
took=$((SECONDS - t_cancel))
grep -q 'stopped by signal at step [0-9]*; checkpoint written' "$tmp/killwait.out" ||
    fail "cancelled after step $step with KillWait=$killwait s: the ranks did not stop with a checkpoint (killed?)"
grep -q ' 2 rank(s), cpu backend' "$tmp/killwait.out" || fail "the job did not run one job of 2 ranks"
stopped=$(grep -o 'stopped by signal at step [0-9]*' "$tmp/killwait.out" | grep -o '[0-9]*$')
on_disk=$(h5dump -a global_step "$run/checkpoint.h5" 2>/dev/null | awk '/\(0\):/ { print $2 }')
[[ $on_disk == "$stopped" ]] || fail "the checkpoint on disk is of step '$on_disk', not $stopped"
((stopped - step <= 3)) || fail "cancelled after step $step, the ranks agreed only at step $stopped"
echo "ok   cancelled after step $step (KillWait=$killwait s): 2 ranks stopped at step $stopped" \
    "with its checkpoint, the job ended $took s later"
