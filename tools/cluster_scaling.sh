#!/usr/bin/env bash
# cluster_scaling.sh: the training step on one node against the same ranks on two nodes
# joined by a slow link, on simulated nodes (tests/slurm/sim_nodes.sh: network namespaces
# on a private bridge; root), for docs/perf.md's scaling model.
#
#   tools/cluster_scaling.sh [--build DIR] [--rate RATE] [--reps N] [--sizes LIST]
#
# Two ranks of one OpenMP thread each, with the same global batch both ways:
#   one node   mpirun --host A:2        (shared memory between the ranks)
#   two nodes  mpirun --host A:1,B:1    (TCP over the link, shaped both ways by tc tbf)
# Each layout runs ddim-bench (whole steps, phases, and the time spent in the
# collectives: BatchNorm's small all-reduces and the gradient's) N times, one layout after
# the other (interleaved, so that a machine shared with other work disturbs both alike);
# the medians are printed with the link's round trip (ping) and the model's prediction:
#   two nodes = one node + (calls - 1) x (round trip / 2 + 8c / rate) + 4 n / rate
# (c <= 224 channels per BN all-reduce, n the trainable weights; 2 ranks: each sends its
# whole vector once, both ways at once). Sizes: quickstart (32x32, widths 16,32,48, depth
# 1, global batch 16; 10 steps) and seed (64x64, widths 32..128, depth 2, batch 64; 3
# steps). Defaults: --build build --rate 1gbit --reps 3 --sizes quickstart,seed.
set -uo pipefail
cd "$(dirname "$0")/.."
build=build rate=1gbit reps=3 sizes=quickstart,seed
while (($#)); do
    case "$1" in
    --build | --rate | --reps | --sizes)
        [[ $# -ge 2 ]] || { echo "cluster_scaling: $1 needs a value" >&2; exit 2; }
        declare "${1#--}=$2"
        shift 2
        ;;
    -h | --help)
        sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'
        exit 0
        ;;
    *)
        echo "cluster_scaling: unknown option $1 (see --help)" >&2
        exit 2
        ;;
    esac
done
[[ $(id -u) == 0 ]] || { echo "cluster_scaling: needs root (network namespaces)" >&2; exit 1; }
bench=$(realpath "$build/ddim-bench" 2>/dev/null)
[[ -x "$bench" ]] || { echo "cluster_scaling: no $build/ddim-bench (build first)" >&2; exit 1; }
command -v mpirun >/dev/null || { echo "cluster_scaling: mpirun not found" >&2; exit 1; }
sim=$PWD/tests/slurm/sim_nodes.sh
dir=$(mktemp -d /tmp/ddim_scaling_XXXXXX)
trap '"$sim" down "$dir"; rm -rf "$dir"' EXIT
trap 'exit 130' INT TERM HUP
"$sim" up "$dir" 2 >/dev/null || exit 1
mapfile -t nodes < <("$sim" names "$dir")
"$sim" shape "$dir" "$rate" || exit 1
a=${nodes[0]} b=${nodes[1]}
rtt=$("$sim" exec "$dir" "$a" ping -c 20 -i 0.05 -q "$("$sim" addr "$dir" "$b")" 2>/dev/null |
    sed -n 's|.*= [0-9.]*/\([0-9.]*\)/.*|\1|p')
echo "cluster_scaling: nodes $a, $b; link $rate (tbf) both ways; ping round trip ${rtt:-?} ms;" \
    "load average $(cut -d' ' -f1-3 /proc/loadavg)"

# run SIZE HOSTS: one ddim-bench run; prints its JSON line
run() {
    local args
    case "$1" in
    quickstart) args=(--image-size 32 --widths 16,32,48 --block-depth 1 --batch 8 --warmup 2 --steps 10) ;;
    seed) args=(--image-size 64 --widths 32,64,96,128 --block-depth 2 --batch 32 --warmup 1 --steps 3) ;;
    *) echo "cluster_scaling: unknown size $1" >&2 && exit 2 ;;
    esac
    "$sim" exec "$dir" "$a" mpirun --allow-run-as-root --host "$2" -np 2 --bind-to none \
        --mca plm_rsh_agent "$sim rsh $dir" -x OMP_NUM_THREADS=1 -x OMP_WAIT_POLICY=PASSIVE \
        "$bench" --backend cpu "${args[@]}" --op-steps 0 --json 2>/dev/null | grep '^{"tool"'
}

# median of the numbers on stdin
median() { sort -g | awk '{ v[NR] = $1 } END { print NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

for size in ${sizes//,/ }; do
    : >"$dir/one.json"
    : >"$dir/two.json"
    for ((i = 1; i <= reps; i++)); do
        run "$size" "$a:2" >>"$dir/one.json" || echo "cluster_scaling: $size one node failed" >&2
        run "$size" "$a:1,$b:1" >>"$dir/two.json" || echo "cluster_scaling: $size two nodes failed" >&2
    done
    echo
    echo "$size: median of $reps interleaved runs each (ms per step)"
    printf '  %-10s %10s %12s %12s %12s %8s\n' layout step collectives gradient batchnorm calls
    for l in one two; do
        step=$(jq .step_ms_median "$dir/$l.json" | median)
        comm=$(jq .comm_ms_per_step "$dir/$l.json" | median)
        grad=$(jq .phases_ms_median.allreduce "$dir/$l.json" | median)
        calls=$(jq .comm_calls_per_step "$dir/$l.json" | median)
        printf '  %-10s %10.2f %12.2f %12.2f %12.2f %8.0f\n' "$l node" "$step" "$comm" "$grad" \
            "$(awk -v c="$comm" -v g="$grad" 'BEGIN { print c - g }')" "$calls"
        declare "step_$l=$step" "calls=$calls"
    done
    n=$(jq -s '.[0].trainable_params' "$dir/one.json")
    awk -v one="$step_one" -v two="$step_two" -v n="$n" -v calls="$calls" -v rtt="${rtt:-0}" \
        -v rate="$rate" 'BEGIN {
        r = rate; bits = r + 0; if (r ~ /gbit/) bits *= 1e9; else if (r ~ /mbit/) bits *= 1e6
        bytes_s = bits / 8
        grad = 4 * n / bytes_s * 1e3; bn = (calls - 1) * (rtt / 2 + 8 * 224 / bytes_s * 1e3)
        printf "  model: two nodes = one node + %.0f BN all-reduces x (rtt/2 + 8c/rate) + 4n/rate\n", calls - 1
        printf "         = %.2f + %.2f + %.2f = %.2f ms (measured %.2f ms; %d weights)\n",
               one, bn, grad, one + bn + grad, two, n
        printf "  measured: two nodes take %.2fx the one-node step\n", two / one }'
done
