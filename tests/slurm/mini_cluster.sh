#!/usr/bin/env bash
# mini_cluster.sh: a throwaway one-node Slurm cluster (Debian's slurm-wlm 22.05 + munge) that
# lives entirely in one private directory, for tests/slurm/run_slurm_test.sh and for trying
# slurm/train.sh by hand. Runs as root; touches nothing under /etc, /run or /var.
#
#   tests/slurm/mini_cluster.sh start DIR   # write DIR/slurm.conf, start munged, slurmctld and
#                                           # slurmd, wait (bounded) until the node is idle
#   export SLURM_CONF=DIR/slurm.conf        # then sbatch / srun / squeue / scontrol use it
#   tests/slurm/mini_cluster.sh stop DIR    # cancel its jobs, stop its daemons (pid files,
#                                           # TERM then KILL, bounded) and its job steps
#
# DIR must be empty or absent, and its parents searchable by all (munged checks). Everything goes under it: munge key, socket, pid and log;
# slurm.conf and cgroup.conf; state, spool, pid and log files. Ports are free ones picked at
# random (not Slurm's 6817/6818), so a real Slurm on the machine is not disturbed. The node
# is described with the machine's real CPUs and memory (`slurmd -C`).
#
# What it takes to run here (checked with slurm-wlm 22.05.8 on Debian 12, in a container):
#   SlurmUser=root, ProctrackType=proctrack/linuxproc, TaskPlugin=task/none,
#   JobAcctGatherType=jobacct_gather/none: no cgroup plugin is loaded, so no cgroup
#   mounts or systemd are needed (cgroup.conf says CgroupPlugin=autodetect with
#   IgnoreSystemd=yes for any plugin that still reads it);
#   AuthInfo=socket=DIR/socket/munge.socket: daemons and clients talk to our munged;
#   MpiDefault=pmix when the mpi_pmix plugin is installed (slurm-wlm-basic-plugins has it;
#   it dlopens libpmix.so, which libpmix-dev provides).
# Every process it starts carries DDIM_MINI_CLUSTER=DIR in its environment (slurmstepd
# inherits it from slurmd); `stop` uses that to find job steps left behind, by pid.
set -uo pipefail

die() {
    echo "mini_cluster: $*" >&2
    exit 1
}

# A TCP port on 127.0.0.1 that nothing listens on (and the next one, for slurmd).
free_port_pair() {
    local p i
    for ((i = 0; i < 50; i++)); do
        p=$((20000 + (RANDOM % 20000) * 2))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null &&
            ! (exec 3<>"/dev/tcp/127.0.0.1/$((p + 1))") 2>/dev/null; then
            echo "$p"
            return 0
        fi
    done
    return 1
}

# wait_for SECONDS COMMAND...: polls every 0.5 s until COMMAND succeeds; 1 on timeout.
wait_for() {
    local deadline=$((SECONDS + $1))
    shift
    until "$@" >/dev/null 2>&1; do
        ((SECONDS >= deadline)) && return 1
        sleep 0.5
    done
}

pid_alive() { [[ -n "$1" ]] && kill -0 "$1" 2>/dev/null; }

show_logs() {
    local f
    for f in "$1"/log/*.log; do
        [[ -f "$f" ]] || continue
        echo "---- last lines of $f" >&2
        tail -n 25 "$f" >&2
    done
}

write_conf() {
    local dir=$1 node=$2 nodeline=$3 port=$4 mpi=$5 gpus=$6 gresline="" gresnode=""
    if ((gpus > 0)); then
        # stand-in GPUs: Slurm schedules and binds them like real ones (CUDA_VISIBLE_DEVICES);
        # the files only have to be character devices (links to /dev/null): no cgroup plugin
        # constrains devices
        mkdir -p "$dir/dev"
        local i
        for ((i = 0; i < gpus; i++)); do ln -s /dev/null "$dir/dev/fakegpu$i"; done
        echo "Name=gpu File=$dir/dev/fakegpu[0-$((gpus - 1))]" >"$dir/etc/gres.conf"
        gresline="GresTypes=gpu"
        gresnode=" Gres=gpu:$gpus"
    fi
    cat >"$dir/etc/slurm.conf" <<EOF
# Written by tests/slurm/mini_cluster.sh: a private one-node cluster.
ClusterName=ddimtest
SlurmctldHost=$node(127.0.0.1)
SlurmctldPort=$port
SlurmdPort=$((port + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/socket/munge.socket
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/run/slurmctld.pid
SlurmdPidFile=$dir/run/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
TmpFS=$dir/tmp
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=$mpi
ReturnToService=2
# keep finished jobs in scontrol's view long enough for the test to read their state
MinJobAge=600
MailProg=/bin/true
KillWait=5
InactiveLimit=0
SlurmdTimeout=60
$gresline
$nodeline$gresnode NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
    cat >"$dir/etc/cgroup.conf" <<EOF
CgroupPlugin=autodetect
IgnoreSystemd=yes
EOF
}

start() {
    local dir=$1
    [[ -e "$dir" && -n "$(ls -A "$dir" 2>/dev/null)" ]] && die "$dir is not empty"
    mkdir -p "$dir" || die "cannot create $dir"
    dir=$(cd "$dir" && pwd)
    local d=$dir
    while [[ "$d" != / ]]; do
        d=$(dirname "$d")
        [[ $(($(stat -c %a "$d") % 10 & 1)) == 1 ]] ||
            die "munged needs every parent of $dir searchable by all; $d is not (chmod o+x)"
    done
    [[ $(id -u) == 0 ]] || die "needs root (SlurmUser=root, slurmd runs jobs as their user)"
    local c
    for c in munged mungekey slurmctld slurmd sbatch scontrol; do
        command -v "$c" >/dev/null || die "$c not found (apt-get install slurm-wlm munge)"
    done
    # munged insists: its socket's directory (and every parent) open to all for search, its
    # key private
    if ! mkdir -p "$dir"/{munge,socket,etc,state,spool,run,log,tmp} ||
        ! chmod 755 "$dir" "$dir/socket" || ! chmod 700 "$dir/munge"; then
        die "cannot make directories under $dir"
    fi
    export DDIM_MINI_CLUSTER=$dir

    # munge: our own key, socket, pid, log and seed file
    mungekey --create --keyfile="$dir/munge/munge.key" || die "mungekey failed"
    chmod 600 "$dir/munge/munge.key"
    munged --key-file="$dir/munge/munge.key" --socket="$dir/socket/munge.socket" \
        --pid-file="$dir/run/munged.pid" --log-file="$dir/log/munged.log" \
        --seed-file="$dir/munge/munged.seed" ||
        {
            show_logs "$dir"
            die "munged did not start"
        }
    wait_for 10 test -S "$dir/socket/munge.socket" || die "munged made no socket"

    local nodeline node port mpi=none
    nodeline=$(slurmd -C | head -n 1)
    [[ "$nodeline" == NodeName=* ]] || die "slurmd -C printed '$nodeline'"
    node=${nodeline%% *}
    node=${node#NodeName=}
    port=$(free_port_pair) || die "no free port pair found"
    local plugdir
    for plugdir in /usr/lib/x86_64-linux-gnu/slurm-wlm /usr/lib/*/slurm-wlm /usr/lib/slurm \
        /usr/lib64/slurm; do
        [[ -f "$plugdir/mpi_pmix.so" ]] && mpi=pmix && break
    done
    write_conf "$dir" "$node" "$nodeline" "$port" "$mpi" "${MINI_CLUSTER_GPUS:-0}"
    export SLURM_CONF=$dir/etc/slurm.conf

    slurmctld -f "$SLURM_CONF" || {
        show_logs "$dir"
        die "slurmctld did not start"
    }
    wait_for 20 scontrol ping || {
        show_logs "$dir"
        die "slurmctld does not answer scontrol ping"
    }
    slurmd -f "$SLURM_CONF" -N "$node" || {
        show_logs "$dir"
        die "slurmd did not start"
    }
    # idle: the node registered and can take jobs
    if ! wait_for 60 node_idle "$node"; then
        scontrol show node "$node" >&2
        show_logs "$dir"
        die "node $node did not become idle within 60 s"
    fi
    echo "mini_cluster: node $node idle (ports $port-$((port + 1)), MpiDefault=$mpi);" \
        "export SLURM_CONF=$SLURM_CONF"
}

node_idle() {
    local s
    s=$(scontrol show node "$1" 2>/dev/null | sed -n 's/.*State=\([^ ]*\).*/\1/p')
    [[ "$s" == IDLE* ]]
}

# Pids of processes whose environment holds DDIM_MINI_CLUSTER=DIR (our daemons, slurmstepd
# and job processes).
cluster_pids() {
    local p
    for p in /proc/[0-9]*; do
        [[ "${p#/proc/}" == "$$" ]] && continue
        tr '\0' '\n' 2>/dev/null <"$p/environ" | grep -qxF "DDIM_MINI_CLUSTER=$1" &&
            echo "${p#/proc/}"
    done
}

# stop_pids SECONDS PID...: TERM, wait until gone (bounded), then KILL.
stop_pids() {
    local secs=$1 p left
    shift
    (($#)) || return 0
    kill -TERM "$@" 2>/dev/null
    local deadline=$((SECONDS + secs))
    while :; do
        left=()
        for p in "$@"; do pid_alive "$p" && left+=("$p"); done
        ((${#left[@]})) || return 0
        ((SECONDS >= deadline)) && break
        sleep 0.2
    done
    kill -KILL "${left[@]}" 2>/dev/null
    sleep 0.5
}

stop() {
    local dir=$1
    [[ -d "$dir" ]] || return 0
    dir=$(cd "$dir" && pwd)
    export SLURM_CONF=$dir/etc/slurm.conf
    local pid_ctld pid_d pid_munge
    pid_ctld=$(cat "$dir/run/slurmctld.pid" 2>/dev/null)
    pid_d=$(cat "$dir/run/slurmd.pid" 2>/dev/null)
    pid_munge=$(cat "$dir/run/munged.pid" 2>/dev/null)
    # jobs first, while the daemons can still end them cleanly
    if pid_alive "$pid_ctld" && [[ -f "$SLURM_CONF" ]]; then
        timeout 10 scancel --full --user=root >/dev/null 2>&1
        wait_for 15 no_jobs
    fi
    local p
    for p in "$pid_d" "$pid_ctld"; do
        pid_alive "$p" && stop_pids 15 "$p"
    done
    # job steps and tasks that outlived slurmd
    mapfile -t rest < <(cluster_pids "$dir" | grep -vxF "${pid_munge:-x}")
    ((${#rest[@]})) && stop_pids 5 "${rest[@]}"
    pid_alive "$pid_munge" && stop_pids 10 "$pid_munge"
    mapfile -t rest < <(cluster_pids "$dir")
    if ((${#rest[@]})); then
        echo "mini_cluster: processes still alive after stop: ${rest[*]}" >&2
        return 1
    fi
    return 0
}

no_jobs() { [[ -z "$(squeue -h -o %i 2>/dev/null)" ]]; }

case "${1:-}" in
start) [[ $# == 2 ]] || die "usage: $0 start DIR" && start "$2" ;;
stop) [[ $# == 2 ]] || die "usage: $0 stop DIR" && stop "$2" ;;
*) die "usage: $0 start|stop DIR" ;;
esac
