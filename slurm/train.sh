#!/bin/bash
# slurm/train.sh: trains ddim-dist on a Slurm cluster, one MPI rank per GPU, started by srun.
#
# Submit from the repository root (paths below are relative to the directory you submit
# from), after building ddim-dist there (tools/setup.sh). This script builds nothing.
#
#   sbatch slurm/train.sh                                   # defaults below: 1 node, 1 GPU,
#                                                           # configs/flowers64.yaml
#   sbatch -N 2 --gpus-per-node=8 --ntasks-per-node=8 slurm/train.sh      # 16 ranks, 16 GPUs
#   DDIM_CONFIG=configs/quickstart.yaml sbatch --time=00:20:00 slurm/train.sh
#   sbatch --gpus-per-node=0 --ntasks-per-node=4 --cpus-per-task=8 slurm/train.sh  # CPU only
#   sbatch slurm/train.sh --set train.num_epochs=100        # arguments go to ddim-dist
#
# Resources: sbatch options on the command line override the #SBATCH lines below (Slurm
# reads those only for options the command line did not give). One rank per GPU: with GPUs,
# give --ntasks-per-node equal to --gpus-per-node (the script refuses a mismatch), or no
# task count at all: then each node runs one rank per GPU, which needs the node's CPUs
# (--exclusive); that is also what lets a requeued job of a node range (-N 2-4) start again
# on fewer nodes (a job that gave --ntasks-per-node keeps its task count when requeued). With
# --gpus-per-node=0 every task is a CPU rank using --cpus-per-task OpenMP threads; give it on
# a cluster without GPUs, where the default below makes sbatch answer "Invalid generic
# resource (gres) specification".
#   -N/--nodes, --ntasks-per-node, --gpus-per-node, --cpus-per-task, --time, --partition,
#   --account, --output, --job-name: as usual.
#
# Environment (exported when you run sbatch; sbatch passes your environment to the job):
#   DDIM_BIN        the built trainer        [$SLURM_SUBMIT_DIR/build/ddim-dist]
#   DDIM_CONFIG     YAML configuration       [configs/flowers64.yaml]
#   DDIM_RUN_DIR    run directory (--run-dir) [empty: the config's run.dir]
#   DDIM_ARGS       more ddim-dist arguments, split like a shell line, e.g.
#                   DDIM_ARGS='--set train.batch_size=32 --set model.widths=[16,32]'
#                   (arguments after the script name on the sbatch line are added after these)
#   DDIM_SRUN_MPI   srun --mpi plugin        [pmix: what Debian's Open MPI 4.1 starts with;
#                   under pmi2 or none its ranks abort in MPI_Init]
#   DDIM_SRUN_GPU_ARGS  srun's GPU options when there are GPUs [--gpus-per-node=G: every rank
#                   of a node sees the node's G GPUs and takes the one of its local rank,
#                   which is how ddim-dist picks its GPU]
#   DDIM_SRUN_ARGS  more srun options, e.g. '--cpu-bind=cores'
#   DDIM_FORWARD_SIGNAL  1: pass the time-limit warning (SIGUSR1) on to the ranks, which
#                   write a checkpoint and exit 0; 0: only log it [1]
#   OMP_NUM_THREADS is set to --cpus-per-task (1 when not given).
#
# Time limit, signal and requeue: Slurm sends SIGUSR1 to this batch script 300 s before the
# time limit (--signal=B:USR1@300; change it with e.g. sbatch --signal=B:USR1@600). The trap
# below logs it and passes it on to the ranks (DDIM_FORWARD_SIGNAL=0: only logs it): they
# agree on a step, rank 0 writes run.dir/checkpoint.h5 and the job exits 0 ("stopped by
# signal at step N"). ddim-dist also writes that checkpoint after every epoch, and started
# again on the same run directory it resumes from it (train.resume=auto), so:
#   sbatch --requeue slurm/train.sh          # let Slurm requeue the job (node failure,
#                                            # preemption, or scontrol requeue)
#   scontrol requeue JOBID                   # put a running job back in the queue: it
#                                            # starts again with the same job id, arguments,
#                                            # environment and run directory
# and the requeued job resumes where the checkpoint left off; or simply submit the same job
# again (same config and run directory) after one stopped at its time limit. The output file
# is opened in append mode so that a requeued job adds to it.
#
#SBATCH --job-name=ddim-dist
#SBATCH --nodes=1
#SBATCH --gpus-per-node=1
#SBATCH --cpus-per-task=8
#SBATCH --time=02:00:00
#SBATCH --signal=B:USR1@300
#SBATCH --output=ddim-dist-%j.out
#SBATCH --open-mode=append
set -uo pipefail

log() { echo "train.sh: $*"; }
fail() {
    echo "train.sh: error: $*" >&2
    exit 1
}

[[ -n "${SLURM_JOB_ID:-}" ]] || fail "not inside a Slurm job: submit with sbatch slurm/train.sh"
submit_dir=${SLURM_SUBMIT_DIR:-$PWD}
bin=${DDIM_BIN:-$submit_dir/build/ddim-dist}
config=${DDIM_CONFIG:-configs/flowers64.yaml}
mpi=${DDIM_SRUN_MPI:-pmix}

[[ -f "$bin" && -x "$bin" ]] ||
    fail "DDIM_BIN=$bin is not an executable file. Build ddim-dist first (tools/setup.sh, or" \
        "cmake -S . -B build && cmake --build build) outside the job, then submit from the" \
        "repository root or set DDIM_BIN to the built ddim-dist. This script builds nothing."
[[ -f "$config" ]] ||
    fail "DDIM_CONFIG=$config: no such file (relative paths start at $PWD)"

# --- ranks and GPUs ------------------------------------------------------------------------
nodes=${SLURM_JOB_NUM_NODES:-1}
cpus=${SLURM_CPUS_PER_TASK:-1}
# GPUs on each node: SLURM_GPUS_ON_NODE when Slurm set it, else the count in
# --gpus-per-node (which may be TYPE:COUNT), else none.
gpus=${SLURM_GPUS_ON_NODE:-}
if [[ -z "$gpus" && -n "${SLURM_GPUS_PER_NODE:-}" ]]; then
    gpus=${SLURM_GPUS_PER_NODE##*:}
fi
[[ "$gpus" =~ ^[0-9]+$ ]] || gpus=0
# no task count given (neither -n nor --ntasks-per-node): one rank per GPU on every node
ntasks=${SLURM_NTASKS:-}
[[ -z "$ntasks" ]] && ntasks=$((nodes * (gpus > 0 ? gpus : 1)))
tasks_per_node=$((ntasks / nodes))

srun_args=(--mpi="$mpi" --nodes="$nodes" --ntasks="$ntasks" --cpus-per-task="$cpus"
    --kill-on-bad-exit=1)
((ntasks % nodes == 0)) && srun_args+=(--ntasks-per-node="$tasks_per_node")
# (22.05 no longer passes --cpus-per-task from sbatch to srun: it is given explicitly above.)
if ((gpus > 0)); then
    ((ntasks == nodes * gpus)) ||
        fail "$ntasks task(s) on $nodes node(s) with $gpus GPU(s) each: ddim-dist runs one" \
            "rank per GPU, so give --ntasks-per-node=$gpus (or --gpus-per-node=$tasks_per_node)"
    # every rank of a node sees the node's GPUs (CUDA_VISIBLE_DEVICES lists them all) and
    # takes the one of its local rank: that is how ddim-dist picks its GPU. (With
    # --gpus-per-task=1 each rank would see only its own GPU, as device 0.)
    gpu_opts=${DDIM_SRUN_GPU_ARGS:---gpus-per-node=$gpus}
fi
if [[ -n "${gpu_opts:-}${DDIM_SRUN_ARGS:-}" ]]; then
    set -f
    eval "more_srun=(${gpu_opts:-} ${DDIM_SRUN_ARGS:-})"
    set +f
    srun_args+=("${more_srun[@]}")
fi

export OMP_NUM_THREADS=$cpus

# --- ddim-dist's arguments -----------------------------------------------------------------
args=(--config "$config")
[[ -n "${DDIM_RUN_DIR:-}" ]] && args+=(--run-dir "$DDIM_RUN_DIR")
if [[ -n "${DDIM_ARGS:-}" ]]; then
    set -f # model.widths=[16,32] is a glob pattern: keep it a word
    eval "more_args=(${DDIM_ARGS})"
    set +f
    args+=("${more_args[@]}")
fi
args+=("$@")

# --- the time-limit warning ----------------------------------------------------------------
srun_pid=""
on_usr1() {
    log "$(date '+%F %T'): SIGUSR1: the time limit is near (job $SLURM_JOB_ID)."
    if [[ "${DDIM_FORWARD_SIGNAL:-1}" == 1 && -n "$srun_pid" ]]; then
        log "forwarding SIGUSR1 to the ranks (srun pid $srun_pid): they write a checkpoint" \
            "and stop"
        kill -USR1 "$srun_pid" 2>/dev/null
    else
        log "not forwarded (DDIM_FORWARD_SIGNAL=${DDIM_FORWARD_SIGNAL:-}): the run ends at the" \
            "time limit; its last checkpoint is the last epoch's"
    fi
}
trap on_usr1 USR1

log "job $SLURM_JOB_ID${SLURM_RESTART_COUNT:+ (restart $SLURM_RESTART_COUNT)}: $ntasks rank(s)" \
    "on $nodes node(s) [${SLURM_JOB_NODELIST:-?}], $gpus GPU(s) per node, $cpus CPU(s) per" \
    "rank, OMP_NUM_THREADS=$OMP_NUM_THREADS"
log "srun ${srun_args[*]} $bin ${args[*]}"

# srun runs in the background so that the trap runs as soon as the signal comes (bash runs
# traps between commands, and `wait` returns early for them); wait again until srun ends.
srun "${srun_args[@]}" "$bin" "${args[@]}" &
srun_pid=$!
while :; do
    wait "$srun_pid"
    rc=$?
    if ((rc > 128)) && kill -0 "$srun_pid" 2>/dev/null; then
        continue # a trapped signal interrupted wait; srun is still running
    fi
    break
done
log "ddim-dist exited with status $rc"
if ((rc == 75)); then
    # 75: a rank or node did not reach a collective within run.collective_timeout_s (the
    # message above names the ranks and their hosts). Slurm requeues a --requeue job on a node
    # failure only while the job still runs: wait for it to set the lost node DOWN.
    wait_s=$(scontrol show config 2>/dev/null | sed -n 's/^SlurmdTimeout *= *\([0-9]*\) sec.*/\1/p')
    wait_s=$((${wait_s:-300} + 60))
    if scontrol show job "$SLURM_JOB_ID" 2>/dev/null | grep -q 'Requeue=1'; then
        log "$(date '+%F %T'): a rank or node was lost (named above); waiting up to $wait_s s" \
            "(SlurmdTimeout + 60) for Slurm to set the node DOWN and requeue this job"
        sleep "$wait_s"
        log "$(date '+%F %T'): Slurm did not requeue the job within $wait_s s (no node DOWN: a" \
            "hung rank?); exiting with status 75"
    else
        log "a rank or node was lost (named above); the job is not requeueable (sbatch" \
            "--requeue makes Slurm start it again on the nodes left)"
    fi
fi
exit "$rc"
