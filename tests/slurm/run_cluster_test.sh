#!/usr/bin/env bash
# run_cluster_test.sh: ddim-dist on a simulated cluster of three nodes (label cluster).
#
#   tests/slurm/run_cluster_test.sh CASE DDIM_DIST DDIM_PREP CKPT_DIFF MPIEXEC
#
# Each case starts its own cluster with tests/slurm/mini_cluster.sh (MINI_CLUSTER_NODES=3:
# network namespaces on a private bridge, each node with its own hostname, address,
# /dev/shm and slurmd, two stand-in GPUs each; one slurmctld and munged), trains a tiny
# model (16x16 synthetic images, widths [8, 16]) on the CPU backend, and stops the cluster
# on exit, even when killed (MINI_CLUSTER_OWNER: a guard stops it after a SIGKILL), checking
# that no namespace, link or process of it is left. Cases:
#   train        `sbatch -N 2 --ntasks-per-node=2 --gpus-per-node=0 slurm/train.sh` (4 ranks on 2
#                nodes: TCP between them, shared memory inside each) and mpirun across the
#                namespaces (a host list, sim_nodes.sh's rsh agent playing ssh) both end with
#                the weights of 1 rank (within TOL_RANKS); every node runs local ranks 0 and 1
#                (ddim-dist's own placement line) and, with the stand-in GPUs, each rank sees
#                its node's two GPUs and has the local rank that picks its own;
#   lost         a --requeue job of a node range (-N 2-3) on 6 ranks loses its third node
#                mid-epoch (link down): ddim-dist ends within run.collective_timeout_s +
#                LOST_MARGIN_S naming the node and its ranks, with status 75; the checkpoint
#                stays that of the epoch before; Slurm sets the node DOWN and requeues the
#                job, which resumes on the 2 nodes left (4 ranks) and finishes with the
#                weights of 1 rank (TOL_RANKS); the job's log tells it in that order;
#   preempt      `scontrol requeue` of a running 2-node job: the ranks stop at one agreed step
#                with one checkpoint, the job comes back and ends with the weights of an
#                uninterrupted run on the same ranks, bit for bit;
#   mpirun_lost  mpirun across the namespaces (with the oob keepalive docs/slurm.md
#                advises), the second node's link down mid-epoch: every rank on both nodes and
#                mpirun itself end within the bound, the output naming the lost node.
# Exits 77 (skipped) without root, Slurm, munge, Open MPI or network namespaces.
# DDIM_CLUSTER_TEST_KEEP=1 keeps the temporary folder (job outputs, daemon logs).
set -uo pipefail

if (($# != 5)); then
    echo "usage: $0 train|lost|preempt|mpirun_lost DDIM_DIST DDIM_PREP CKPT_DIFF MPIEXEC" >&2
    exit 2
fi
case_name=$1
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
dist=$(realpath "$2") prep=$(realpath "$3") ckpt_diff=$(realpath "$4") mpiexec=$5
sim=$here/sim_nodes.sh
TOL_RANKS=1e-4    # README: the weights of N ranks against 1 rank's
LOST_MARGIN_S=45  # comm/comm_mpi_exit.h: notes (<= 30 s), 3 s, abort grace 10 s

skip() {
    echo "cluster_$case_name: SKIP: $*"
    exit 77
}
[[ $(id -u) == 0 ]] || skip "needs root (network namespaces, the cluster's daemons)"
for c in ip unshare nsenter setsid tc munged mungekey slurmctld slurmd sbatch scontrol srun \
    "$mpiexec"; do
    command -v "$c" >/dev/null || skip "$c not found (tools/setup.sh installs what is needed)"
done
probe=ddim-probe-$$
if ! ip netns add "$probe" 2>/dev/null; then
    skip "cannot make a network namespace here (ip netns add: a container without CAP_SYS_ADMIN?)"
fi
ip netns del "$probe"
unshare --uts --mount true 2>/dev/null || skip "cannot make UTS and mount namespaces (unshare)"

source "$here/../test_lib.sh" # status_problem; slurm_lib.sh redefines fail and ok
source "$here/slurm_lib.sh"
slurm_clean_env
export OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE
slurm_test_init ddim_cluster
die() {
    fail "$*"
    exit 1
}

cleanup() {
    local rc=$? tag
    tag=$(cat "$cluster/nodes/tag" 2>/dev/null)
    slurm_stop_cluster || rc=1
    if [[ -n "$tag" ]]; then
        if ip netns list | grep -q "^ddim-$tag" || ip link show | grep -q "ddim-$tag"; then
            echo "FAIL namespaces or links of cluster $tag are left:"
            ip netns list | grep "^ddim-$tag"
            ip -br link show | grep "ddim-$tag"
            rc=1
        fi
    fi
    if [[ "${DDIM_CLUSTER_TEST_KEEP:-0}" == 1 ]]; then
        echo "cluster_$case_name: kept $tmp"
    else
        rm -rf "$tmp"
    fi
    echo "cluster_$case_name: $((SECONDS - t0)) s in all"
    ((rc == 0 && failures)) && rc=1
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

remove=$tmp
[[ "${DDIM_CLUSTER_TEST_KEEP:-0}" == 1 ]] && remove=""
MINI_CLUSTER_NODES=3 MINI_CLUSTER_GPUS=2 MINI_CLUSTER_SLURMD_TIMEOUT=10 MINI_CLUSTER_OWNER=$$ \
    MINI_CLUSTER_REMOVE=$remove "$here/mini_cluster.sh" start "$cluster" >"$tmp/cluster.log" 2>&1 || {
    cat "$tmp/cluster.log"
    die "the cluster did not start"
}
export SLURM_CONF=$cluster/etc/slurm.conf
mapfile -t nodes < <("$sim" names "$cluster")
echo "cluster_$case_name: nodes ${nodes[*]} up after $((SECONDS - t0)) s"
"$prep" --synthetic 200 --size 16 --seed 5 --output "$tmp/data.h5" >"$tmp/prep.log" 2>&1 ||
    die "ddim-prep --synthetic: $(tail -n 3 "$tmp/prep.log")"

# write_cfg NAME EPOCHS BATCH TIMEOUT: $tmp/NAME.yaml, the tiny run (160 training images)
write_cfg() {
    cat >"$tmp/$1.yaml" <<EOF
data: {path: "$tmp/data.h5", dataset_repetitions: 1}
model: {image_size: 16, widths: [8, 16], block_depth: 1, embedding_dims: 8}
train: {num_epochs: $2, batch_size: $3}
eval: {plot_diffusion_steps: 2, plot_rows: 1, plot_cols: 2, kid_every: 0}
run: {dir: "$tmp/run_$1", backend: cpu, progress_seconds: 1, collective_timeout_s: $4}
EOF
}

# reference NAME: the run of $tmp/NAME.yaml on 1 rank, in $tmp/ref_NAME (marked as one of the
# cluster's processes, so that a guard that stops the cluster ends it too)
reference() {
    DDIM_MINI_CLUSTER=$cluster "$dist" --config "$tmp/$1.yaml" --run-dir "$tmp/ref_$1" \
        >"$tmp/ref_$1.out" 2>&1 ||
        die "the 1-rank reference run failed: $(tail -n 3 "$tmp/ref_$1.out")"
}

# same_weights WHAT RUN_DIR REF_DIR TOL: the final checkpoints agree (TOL 0: bit for bit)
same_weights() {
    local out
    out=$("$ckpt_diff" "$2/checkpoint.h5" "$3/checkpoint.h5" "$4" 2>&1)
    if [[ $? == 0 ]]; then ok "$1: $out"; else fail "$1 (tolerance $4): $out"; fi
}

# ranks_left NODE...: how many ddim-dist processes run (not zombies) inside the nodes
ranks_left() {
    local n pids
    pids=$(for n in "$@"; do ip netns pids "ddim-$n"; done | tr '\n' ',')
    [[ -n "${pids%,}" ]] || {
        echo 0
        return
    }
    ps -o stat=,comm= -p "${pids%,}" 2>/dev/null | awk '$2 == "ddim-dist" && $1 !~ /^Z/' | wc -l
}

# in_order FILE REGEX...: each REGEX matches a line of FILE after the previous one's
in_order() {
    local file=$1 from=1 n
    shift
    for re in "$@"; do
        n=$(tail -n +"$from" "$file" | grep -nE -m1 -- "$re" | cut -d: -f1)
        [[ -n "$n" ]] || {
            fail "the log $file lacks, after line $from, a line matching '$re'"
            return 1
        }
        from=$((from + n))
    done
    ok "the log tells it in order: $*"
}

# placement FILE NODE...: ddim-dist's placement line shows local ranks 0 and 1 on each NODE
placement() {
    local line n
    line=$(grep -m1 'ddim-dist: [0-9]* ranks on' "$1")
    for n in "${@:2}"; do
        [[ "$line" =~ $n:\ rank\(s\)\ [0-9]+\ \(local\ 0\),\ [0-9]+\ \(local\ 1\) ]] ||
            fail "no local ranks 0 and 1 on $n in '$line'"
    done
    ok "placement: ${line#ddim-dist: }"
}

source "$here/cluster_cases.sh"
declare -F "case_$case_name" >/dev/null || die "unknown case $case_name"
"case_$case_name"
echo "cluster_$case_name: $failures check(s) failed ($((SECONDS - t0)) s before stopping the cluster)"
exit $((failures > 0))
