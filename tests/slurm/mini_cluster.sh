#!/usr/bin/env bash
# mini_cluster.sh: a throwaway Slurm cluster (Debian's slurm-wlm 22.05 + munge) that lives
# entirely in one private directory, for the tests in tests/slurm/ and for trying
# slurm/train.sh by hand. Runs as root; touches nothing under /etc, /run or /var.
#
#   tests/slurm/mini_cluster.sh start DIR   # write DIR/slurm.conf, start munged, slurmctld and
#                                           # slurmd, wait (bounded) until the node is idle
#   export SLURM_CONF=DIR/slurm.conf        # then sbatch / srun / squeue / scontrol use it
#   tests/slurm/mini_cluster.sh stop DIR    # cancel its jobs, stop its daemons (pid files,
#                                           # TERM then KILL, bounded) and its job steps
#
# One node by default: the machine itself, on 127.0.0.1. MINI_CLUSTER_NODES=N (N >= 1) makes
# N simulated nodes instead (tests/slurm/sim_nodes.sh: network namespaces on a private
# bridge, each with its own hostname, address, /dev/shm and slurmd, named e.g. qkz1..qkzN;
# `sim_nodes.sh names DIR` lists them); slurmctld then listens on the bridge's address.
# Settings for both (environment of `start`):
#   MINI_CLUSTER_GPUS=G              stand-in GPUs per node (device files linked to /dev/null)
#   MINI_CLUSTER_SLURMD_TIMEOUT=S    slurm.conf's SlurmdTimeout: a node that does not answer
#                                    for S s is set DOWN and its jobs requeued or ended [60]
#   MINI_CLUSTER_OWNER=PID           stop the cluster (as `stop` does) once process PID has
#                                    ended, even by SIGKILL: a guard process watches it;
#   MINI_CLUSTER_REMOVE=PATH         and then remove PATH (the owner's temporary folder)
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

# A TCP port on 127.0.0.1 that nothing listens on (and the next one, for slurmd), below the
# kernel's ephemeral range (ip_local_port_range): a port in that range can be taken at any
# moment as the local end of some outgoing connection (MPI's, srun's), and slurmctld's bind
# then fails with "Address already in use" although nothing listened when it was chosen.
free_port_pair() {
    local p i low=32768
    read -r low _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || low=32768
    ((low > 12000)) || low=32768
    for ((i = 0; i < 50; i++)); do
        p=$((10000 + (RANDOM % ((low - 10002) / 2)) * 2))
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

# write_conf DIR CTLD_HOST CTLD_ADDR PORT MPI GPUS NODE_LINES: slurm.conf and cgroup.conf.
# NODE_LINES: the NodeName lines, without Gres and State. On simulated nodes the slurmd
# files are per node (Slurm's %n: the node's name).
write_conf() {
    local dir=$1 host=$2 addr=$3 port=$4 mpi=$5 gpus=$6 nodes=$7 gresline="" gresnode=""
    local per="" per2="" spool=spool what="one-node" authextra="" schedextra=""
    if [[ -n "${MINI_CLUSTER_NODES:-}" ]]; then
        # (per node also TmpFS: Slurm's pmix plugin makes its folders there, named by job)
        per=.%n per2=/%n spool=spool/%n what="multi-node (simulated nodes)"
        # a requeued job waits the credential's lifetime before it starts again (22.05:
        # 120 s by default); 10 s keeps the requeue tests short
        authextra=,cred_expire=10
        # and is started by the scheduler's next pass (60 s apart by default)
        schedextra="SchedulerParameters=sched_interval=2,bf_interval=2"
    fi
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
# Written by tests/slurm/mini_cluster.sh: a private $what cluster.
ClusterName=ddimtest
SlurmctldHost=$host($addr)
SlurmctldPort=$port
SlurmdPort=$((port + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/socket/munge.socket$authextra
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/$spool
SlurmctldPidFile=$dir/run/slurmctld.pid
SlurmdPidFile=$dir/run/slurmd$per.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd$per.log
SlurmctldDebug=info
SlurmdDebug=info
TmpFS=$dir/tmp$per2
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
$schedextra
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=$mpi
ReturnToService=2
# keep finished jobs in scontrol's view long enough for the test to read their state
MinJobAge=600
MailProg=/bin/true
KillWait=5
InactiveLimit=0
SlurmdTimeout=${MINI_CLUSTER_SLURMD_TIMEOUT:-60}
$gresline
$(sed "s/\$/$gresnode State=UNKNOWN/" <<<"$nodes")
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
    cat >"$dir/etc/cgroup.conf" <<EOF
CgroupPlugin=autodetect
IgnoreSystemd=yes
EOF
}

# start_munge DIR: checks DIR and the tools, makes DIR's folders and starts munged.
start_munge() {
    local dir=$1 d=$1
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
}

# start_guard DIR PID: a detached process that stops the cluster once PID has ended (a test
# killed with SIGKILL runs no trap), then removes MINI_CLUSTER_REMOVE. `stop` ends the guard
# first.
start_guard() {
    local dir=$1 owner=$2
    [[ "$owner" =~ ^[0-9]+$ ]] || die "MINI_CLUSTER_OWNER must be a pid, got '$owner'"
    # not one of the cluster's processes (no DDIM_MINI_CLUSTER): stop must not kill it early
    env -u DDIM_MINI_CLUSTER setsid bash -c 'while kill -0 "$1" 2>/dev/null; do sleep 1; done
        echo "mini_cluster guard: $1 ended: stopping the cluster in $2"
        "$3" stop "$2" && [[ -n "$4" ]] && rm -rf "$4"' guard "$owner" "$dir" \
        "$(realpath "$0")" "${MINI_CLUSTER_REMOVE:-}" </dev/null >>"$dir/log/guard.log" 2>&1 &
    echo $! >"$dir/run/guard.pid"
}

# pmix when Slurm's mpi_pmix plugin is installed, else none.
mpi_plugin() {
    local plugdir
    for plugdir in /usr/lib/x86_64-linux-gnu/slurm-wlm /usr/lib/*/slurm-wlm /usr/lib/slurm \
        /usr/lib64/slurm; do
        [[ -f "$plugdir/mpi_pmix.so" ]] && echo pmix && return
    done
    echo none
}

start() {
    local dir=$1
    [[ -e "$dir" && -n "$(ls -A "$dir" 2>/dev/null)" ]] && die "$dir is not empty"
    mkdir -p "$dir" || die "cannot create $dir"
    dir=$(cd "$dir" && pwd)
    export DDIM_MINI_CLUSTER=$dir
    start_munge "$dir"
    [[ -n "${MINI_CLUSTER_OWNER:-}" ]] && start_guard "$dir" "$MINI_CLUSTER_OWNER"

    local nodeline port mpi host addr nodes="" n sim
    sim=$(dirname "$(realpath "$0")")/sim_nodes.sh
    local -a names run=()
    nodeline=$(slurmd -C | head -n 1)
    [[ "$nodeline" == NodeName=* ]] || die "slurmd -C printed '$nodeline'"
    host=${nodeline%% *}
    host=${host#NodeName=}
    if [[ -n "${MINI_CLUSTER_NODES:-}" ]]; then
        # each simulated node has the machine's CPUs and memory; slurmctld on the bridge
        "$sim" up "$dir" "$MINI_CLUSTER_NODES" || die "the simulated nodes did not start"
        mapfile -t names < <("$sim" names "$dir")
        addr=$(cat "$dir/nodes/subnet").1
        host=$(hostname -s)
        for n in "${names[@]}"; do
            nodes+="NodeName=$n ${nodeline#* } NodeAddr=$("$sim" addr "$dir" "$n")"$'\n'
        done
        nodes=${nodes%$'\n'}
        run=("$sim" exec "$dir")
    else
        names=("$host")
        addr=127.0.0.1
        nodes="$nodeline NodeAddr=127.0.0.1"
    fi
    port=$(free_port_pair) || die "no free port pair found"
    mpi=$(mpi_plugin)
    write_conf "$dir" "$host" "$addr" "$port" "$mpi" "${MINI_CLUSTER_GPUS:-0}" "$nodes"
    export SLURM_CONF=$dir/etc/slurm.conf

    slurmctld -f "$SLURM_CONF" || {
        show_logs "$dir"
        die "slurmctld did not start"
    }
    wait_for 20 scontrol ping || {
        show_logs "$dir"
        die "slurmctld does not answer scontrol ping"
    }
    for n in "${names[@]}"; do
        [[ -n "${MINI_CLUSTER_NODES:-}" ]] && mkdir -p "$dir/spool/$n" "$dir/tmp/$n"
        # a simulated node's slurmd runs inside its namespaces (sim_nodes.sh exec DIR NODE)
        "${run[@]}" ${run[0]:+"$n"} slurmd -f "$SLURM_CONF" -N "$n" || {
            show_logs "$dir"
            die "slurmd of $n did not start"
        }
    done
    # idle: the nodes registered and can take jobs
    for n in "${names[@]}"; do
        if ! wait_for 60 node_idle "$n"; then
            scontrol show node "$n" >&2
            show_logs "$dir"
            die "node $n did not become idle within 60 s"
        fi
    done
    echo "mini_cluster: node(s) ${names[*]} idle (ports $port-$((port + 1)), MpiDefault=$mpi);" \
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
    local pid_ctld pid_munge pid_guard f p rc=0
    # the guard first, unless it is the guard that is stopping the cluster (our parent)
    pid_guard=$(cat "$dir/run/guard.pid" 2>/dev/null)
    [[ -n "$pid_guard" && "$pid_guard" != "$PPID" && "$pid_guard" != "$$" ]] &&
        kill -KILL "$pid_guard" 2>/dev/null
    pid_ctld=$(cat "$dir/run/slurmctld.pid" 2>/dev/null)
    pid_munge=$(cat "$dir/run/munged.pid" 2>/dev/null)
    # jobs first, while the daemons can still end them cleanly
    if pid_alive "$pid_ctld" && [[ -f "$SLURM_CONF" ]]; then
        timeout 10 scancel --full --user=root >/dev/null 2>&1
        wait_for 15 no_jobs
    fi
    # simulated nodes: every process inside them (slurmd, job steps: TERM, 3 s, KILL; a node
    # cut off would wait for slurmctld), then the namespaces, links and bridge
    if [[ -d "$dir/nodes" ]]; then
        "$(dirname "$(realpath "$0")")/sim_nodes.sh" down "$dir" || rc=1
    fi
    for f in "$dir"/run/slurmd*.pid "$dir/run/slurmctld.pid"; do
        p=$(cat "$f" 2>/dev/null)
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
    return $rc
}

no_jobs() { [[ -z "$(squeue -h -o %i 2>/dev/null)" ]]; }

case "${1:-}" in
start) [[ $# == 2 ]] || die "usage: $0 start DIR" && start "$2" ;;
stop) [[ $# == 2 ]] || die "usage: $0 stop DIR" && stop "$2" ;;
*) die "usage: $0 start|stop DIR" ;;
esac
