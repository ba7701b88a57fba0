#!/usr/bin/env bash
# sim_nodes.sh: simulated cluster nodes on one machine, for tests/slurm/mini_cluster.sh and
# the cluster tests. A node is a network namespace with its own address on a private
# bridge, its own hostname (a UTS namespace) and its own /dev/shm and /etc/hosts (a mount
# namespace): without the private /dev/shm, Open MPI's shared-memory transport of two
# "nodes" collides (SIGSEGV in mca_btl_vader_poll_handle_frag). Runs as root.
#
#   sim_nodes.sh up DIR N            # N nodes; names, addresses and state under DIR/nodes
#   sim_nodes.sh down DIR            # kills every process inside the nodes, removes the
#                                    # namespaces, links and bridge; safe to repeat
#   sim_nodes.sh names DIR           # the node names, one a line
#   sim_nodes.sh addr DIR NODE       # its address
#   sim_nodes.sh exec DIR NODE CMD.. # runs CMD inside NODE (net, uts and mount namespaces),
#                                    # in the current directory
#   sim_nodes.sh link DIR NODE up|down   # NODE's link to the bridge: down = node lost
#   sim_nodes.sh shape DIR RATE|off  # token-bucket shaper (tc tbf) on every link, both ways
#   sim_nodes.sh rsh DIR [-x] NODE CMD.. # mpirun's rsh agent: CMD inside NODE, as ssh would
#
# Addresses: a free 10.X.Y.0/24 chosen at `up` (X in 200..249; checked against every route of
# the machine), the bridge .1, node k .(10+k). Nothing is forwarded (the bridge is not
# routed), so the nodes reach each other and the bridge's address, nothing else. Names: a
# random three-letter tag plus the node number (e.g. qkz1, qkz2), so that two clusters on
# one machine never share a hostname (Open MPI's session directories in /tmp are named by
# host). A node's namespaces are held by a `sleep` process (DIR/nodes/NODE/holder.pid).
set -uo pipefail

sim_die() {
    echo "sim_nodes: $*" >&2
    exit 1
}

# The state of the nodes of DIR: $tag, $subnet (10.X.Y), $names (array).
sim_load() {
    local dir=$1
    [[ -f "$dir/nodes/tag" ]] || sim_die "$dir has no simulated nodes (sim_nodes.sh up)"
    tag=$(cat "$dir/nodes/tag")
    subnet=$(cat "$dir/nodes/subnet")
    mapfile -t names <"$dir/nodes/names"
}

sim_node_dir() {
    local dir=$1 node=$2
    [[ -f "$dir/nodes/$node/addr" ]] || sim_die "no node '$node' in $dir (nodes: $(tr '\n' ' ' <"$dir/nodes/names" 2>/dev/null))"
    echo "$dir/nodes/$node"
}

# A 10.X.Y prefix that no address or route of this machine uses.
sim_free_subnet() {
    local i s used
    used=$(ip -4 route show table all 2>/dev/null; ip -4 addr show 2>/dev/null)
    for ((i = 0; i < 100; i++)); do
        s=10.$((200 + RANDOM % 50)).$((RANDOM % 256))
        grep -qF "$s." <<<"$used" || {
            echo "$s"
            return 0
        }
    done
    return 1
}

sim_free_tag() {
    local i t letters=abcdefghijkmnpqrstuvwxyz
    for ((i = 0; i < 100; i++)); do
        t=${letters:RANDOM%24:1}${letters:RANDOM%24:1}${letters:RANDOM%24:1}
        ip netns list 2>/dev/null | grep -q "^ddim-$t" || ip link show "ddim-$t" >/dev/null 2>&1 ||
            {
                echo "$t"
                return 0
            }
    done
    return 1
}

# Starts NODE's holder: a process in the node's network namespace with its own hostname,
# /dev/shm and /etc/hosts; every later `exec` enters its namespaces.
sim_start_holder() {
    local dir=$1 node=$2 nd=$dir/nodes/$2
    # the holder lives until `down` kills it; it carries DDIM_MINI_CLUSTER like every
    # process of the cluster
    # (nsenter, not `ip netns exec`: that remounts /sys, which hides the cgroup file systems
    # slurmd needs)
    setsid nsenter --net="/run/netns/ddim-$node" unshare --uts --mount --propagation private -- \
        sh -c 'hostname "$1" && mount -t tmpfs -o mode=1777,size=2g tmpfs /dev/shm &&
               mount --bind "$2" /etc/hosts && echo $$ >"$3.new" && mv "$3.new" "$3" &&
               exec sleep infinity' sh "$node" "$dir/nodes/hosts" "$nd/holder.pid" \
        </dev/null >>"$nd/holder.log" 2>&1 &
    local i
    for ((i = 0; i < 50; i++)); do
        [[ -s "$nd/holder.pid" ]] && return 0
        sleep 0.1
    done
    cat "$nd/holder.log" >&2
    return 1
}

sim_up() {
    local dir=$1 n=$2 k
    [[ $(id -u) == 0 ]] || sim_die "needs root (network namespaces)"
    [[ "$n" =~ ^[1-9][0-9]?$ ]] || sim_die "N must be 1..99, got '$n'"
    for k in ip unshare nsenter setsid; do
        command -v "$k" >/dev/null || sim_die "$k not found (iproute2, util-linux)"
    done
    [[ -e "$dir/nodes" ]] && sim_die "$dir/nodes exists: nodes are up already (or left over: sim_nodes.sh down $dir)"
    mkdir -p "$dir/nodes" || sim_die "cannot create $dir/nodes"
    dir=$(cd "$dir" && pwd)
    export DDIM_MINI_CLUSTER=${DDIM_MINI_CLUSTER:-$dir}
    local tag subnet
    tag=$(sim_free_tag) || sim_die "no free name tag"
    subnet=$(sim_free_subnet) || sim_die "no free 10.X.Y.0/24 subnet"
    echo "$tag" >"$dir/nodes/tag"
    echo "$subnet" >"$dir/nodes/subnet"
    : >"$dir/nodes/names"
    {
        echo "127.0.0.1 localhost"
        echo "$subnet.1 $(hostname -s) ${tag}-bridge"
        for ((k = 1; k <= n; k++)); do echo "$subnet.$((10 + k)) $tag$k"; done
    } >"$dir/nodes/hosts"
    # the bridge: the nodes' switch, and the address of the head node (slurmctld) on it
    ip link add "ddim-$tag" type bridge || sim_die "cannot create bridge ddim-$tag"
    ip addr add "$subnet.1/24" dev "ddim-$tag" && ip link set "ddim-$tag" up ||
        sim_die "cannot configure bridge ddim-$tag"
    for ((k = 1; k <= n; k++)); do
        local node=$tag$k nd=$dir/nodes/$tag$k
        mkdir -p "$nd"
        echo "$node" >>"$dir/nodes/names"
        echo "$subnet.$((10 + k))" >"$nd/addr"
        ip netns add "ddim-$node" || sim_die "cannot create network namespace ddim-$node"
        ip link add "ddim-$node" type veth peer name eth0 netns "ddim-$node" ||
            sim_die "cannot create the link of $node"
        ip link set "ddim-$node" master "ddim-$tag" up &&
            ip -n "ddim-$node" addr add "$subnet.$((10 + k))/24" dev eth0 &&
            ip -n "ddim-$node" link set eth0 up && ip -n "ddim-$node" link set lo up ||
            sim_die "cannot configure the link of $node"
    done
    for ((k = 1; k <= n; k++)); do
        sim_start_holder "$dir" "$tag$k" || sim_die "node $tag$k did not start"
    done
    echo "sim_nodes: $n node(s) $tag[1-$n] on $subnet.0/24 (bridge ddim-$tag at $subnet.1)"
}

# Pids of the processes inside a node's network namespace.
sim_node_pids() { ip netns pids "ddim-$1" 2>/dev/null; }

sim_down() {
    local dir=$1 tag node p i left
    [[ -f "$dir/nodes/tag" ]] || return 0
    tag=$(cat "$dir/nodes/tag")
    mapfile -t names <"$dir/nodes/names"
    # every process in the nodes: TERM, then KILL (bounded)
    for sig in TERM KILL; do
        left=0
        for node in "${names[@]}"; do
            for p in $(sim_node_pids "$node"); do
                kill -"$sig" "$p" 2>/dev/null && left=1
            done
        done
        ((left)) || break
        for ((i = 0; i < 30; i++)); do
            left=0
            for node in "${names[@]}"; do [[ -n "$(sim_node_pids "$node")" ]] && left=1; done
            ((left)) || break
            sleep 0.1
        done
    done
    local rc=0
    for node in "${names[@]}"; do
        [[ -n "$(sim_node_pids "$node")" ]] && {
            echo "sim_nodes: processes left in $node: $(sim_node_pids "$node" | tr '\n' ' ')" >&2
            rc=1
        }
        ip link del "ddim-$node" 2>/dev/null
        ip netns del "ddim-$node" 2>/dev/null
    done
    ip link del "ddim-$tag" 2>/dev/null
    for node in "${names[@]}"; do
        ip netns list | grep -q "^ddim-$node\b" && {
            echo "sim_nodes: network namespace ddim-$node is left" >&2
            rc=1
        }
    done
    ip link show "ddim-$tag" >/dev/null 2>&1 && {
        echo "sim_nodes: bridge ddim-$tag is left" >&2
        rc=1
    }
    ((rc)) || rm -rf "$dir/nodes"
    return $rc
}

sim_exec() {
    local dir=$1 node=$2 nd pid
    shift 2
    nd=$(sim_node_dir "$dir" "$node") || exit 1
    pid=$(cat "$nd/holder.pid" 2>/dev/null)
    [[ -n "$pid" ]] || sim_die "node $node has no holder (sim_nodes.sh up)"
    exec nsenter -t "$pid" -n -u -m --wd="$PWD" -- "$@"
}

sim_link() {
    local dir=$1 node=$2 state=$3
    sim_node_dir "$dir" "$node" >/dev/null || exit 1
    [[ "$state" == up || "$state" == down ]] || sim_die "link state must be up or down"
    # the bridge's side: the node keeps its own address and sees its link still up, as a node
    # behind a failed switch port does
    ip link set "ddim-$node" "$state"
}

# tbf on both ends of every link: the node's eth0 (what it sends) and the bridge's port
# (what it receives). burst: one 64 KiB GSO segment at least, else tbf drops it.
sim_shape() {
    local dir=$1 rate=$2 node
    sim_load "$dir"
    for node in "${names[@]}"; do
        tc -n "ddim-$node" qdisc del dev eth0 root 2>/dev/null
        tc qdisc del dev "ddim-$node" root 2>/dev/null
        [[ "$rate" == off ]] && continue
        tc -n "ddim-$node" qdisc add dev eth0 root tbf rate "$rate" burst 256kb latency 50ms &&
            tc qdisc add dev "ddim-$node" root tbf rate "$rate" burst 256kb latency 50ms ||
            sim_die "tc tbf rate $rate on $node failed"
    done
}

# mpirun's rsh agent (plm_rsh_agent "sim_nodes.sh rsh DIR"): called as `AGENT [-x] NODE
# COMMAND...`, runs COMMAND (one shell line, as ssh passes it) inside NODE with a fresh
# environment, as ssh does. Like ssh without keepalives, it notices nothing when NODE drops
# off the network: mpirun's own keepalive on its daemons does (docs/slurm.md).
sim_rsh() {
    local dir=$1
    shift
    [[ "${1:-}" == -x ]] && shift
    local node=$1 nd
    shift
    nd=$(sim_node_dir "$dir" "$node") || exit 255
    exec env -i PATH="$PATH" HOME="${HOME:-/root}" USER=root LOGNAME=root SHELL=/bin/bash \
        LANG=C.UTF-8 DDIM_MINI_CLUSTER="${DDIM_MINI_CLUSTER:-$dir}" \
        nsenter -t "$(cat "$nd/holder.pid")" -n -u -m -- /bin/bash -c "$*"
}

case "${1:-}" in
up) (($# == 3)) || sim_die "usage: $0 up DIR N" && sim_up "$2" "$3" ;;
down) (($# == 2)) || sim_die "usage: $0 down DIR" && sim_down "$2" ;;
names) (($# == 2)) || sim_die "usage: $0 names DIR" && cat "$2/nodes/names" ;;
addr) (($# == 3)) || sim_die "usage: $0 addr DIR NODE" && cat "$(sim_node_dir "$2" "$3")/addr" ;;
exec) (($# >= 4)) || sim_die "usage: $0 exec DIR NODE CMD..." && sim_exec "${@:2}" ;;
link) (($# == 4)) || sim_die "usage: $0 link DIR NODE up|down" && sim_link "$2" "$3" "$4" ;;
shape) (($# == 3)) || sim_die "usage: $0 shape DIR RATE|off" && sim_shape "$2" "$3" ;;
rsh) (($# >= 4)) || sim_die "usage: $0 rsh DIR [-x] NODE CMD..." && sim_rsh "${@:2}" ;;
*) sim_die "usage: $0 up|down|names|addr|exec|link|shape|rsh DIR ..." ;;
esac
