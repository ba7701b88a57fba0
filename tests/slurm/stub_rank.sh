#!/usr/bin/env bash
# stub_rank.sh: stands in for ddim-dist (DDIM_BIN) in tests/slurm/run_slurm_test.sh where
# the test looks at what slurm/train.sh does around the ranks, not at training: it prints
# what each rank was given (rank, local rank, GPUs, threads, arguments; then its host, for
# the cluster tests), then waits until
# the file STUB_RELEASE exists (at most 60 s), and says so if SIGUSR1 reaches it.
got_usr1=0
trap 'got_usr1=1' USR1
echo "stub rank ${SLURM_PROCID:-?} of ${SLURM_NTASKS:-?}: local ${SLURM_LOCALID:-?}" \
    "cvd=${CUDA_VISIBLE_DEVICES:-none} omp=${OMP_NUM_THREADS:-unset} args: $*"
echo "stub rank ${SLURM_PROCID:-?} on host $(hostname): local ${SLURM_LOCALID:-?}" \
    "cvd=${CUDA_VISIBLE_DEVICES:-none}"
for ((i = 0; i < 600; i++)); do
    if ((got_usr1)); then
        echo "stub rank ${SLURM_PROCID:-?}: got SIGUSR1"
        got_usr1=0
    fi
    [[ -n "${STUB_RELEASE:-}" && -e "$STUB_RELEASE" ]] && exit 0
    sleep 0.1
done
echo "stub rank ${SLURM_PROCID:-?}: not released within 60 s" >&2
exit 3
