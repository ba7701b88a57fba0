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
# and again the step's collectives alone (after a barrier: what the transport takes). The
# medians are printed with the link's round trip (ping) and the model's prediction:
#   two nodes = one node + (calls - 1) x (round trip / 2 + 8c / rate) + (4 n - burst) / rate
# (c <= 224 channels per BN all-reduce, n the trainable weights; 2 ranks: each sends its
# whole vector once, both ways at once; tbf's burst of 256 KiB passes at once), and the same
# with the collectives' measured times. Sizes: quickstart (32x32, widths 16,32,48, depth
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

# med FILE FIELD: the median of a JSON field over the runs of a layout
med() { jq ".$2" "$1" | median; }

for size in ${sizes//,/ }; do
    : >"$dir/one.json"
    : >"$dir/two.json"
    for ((i = 1; i <= reps; i++)); do
        run "$size" "$a:2" >>"$dir/one.json" || echo "cluster_scaling: $size one node failed" >&2
        run "$size" "$a:1,$b:1" >>"$dir/two.json" || echo "cluster_scaling: $size two nodes failed" >&2
    done
    echo
    echo "$size: medians of $reps interleaved runs each (ms per step)"
    printf '  %-9s %9s %13s %13s %17s %17s\n' layout step "in-step coll" "of which grad" \
        "alone: BN (min)" "alone: grad (min)"
    for l in one two; do
        printf '  %-9s %9.2f %13.2f %13.2f %9.3f (%5.3f) %9.3f (%5.3f)\n' "$l node" \
            "$(med "$dir/$l.json" step_ms_median)" "$(med "$dir/$l.json" comm_ms_per_step)" \
            "$(med "$dir/$l.json" phases_ms_median.allreduce)" "$(med "$dir/$l.json" alone_bn_ms)" \
            "$(med "$dir/$l.json" alone_bn_ms_min)" "$(med "$dir/$l.json" alone_grad_ms)" \
            "$(med "$dir/$l.json" alone_grad_ms_min)"
    done
    awk -v one="$(med "$dir/one.json" step_ms_median)" -v two="$(med "$dir/two.json" step_ms_median)" \
        -v bn1="$(med "$dir/one.json" alone_bn_ms)" -v bn2="$(med "$dir/two.json" alone_bn_ms)" \
        -v g1="$(med "$dir/one.json" alone_grad_ms)" -v g2="$(med "$dir/two.json" alone_grad_ms)" \
        -v bm1="$(med "$dir/one.json" alone_bn_ms_min)" -v bm2="$(med "$dir/two.json" alone_bn_ms_min)" \
        -v gm1="$(med "$dir/one.json" alone_grad_ms_min)" -v gm2="$(med "$dir/two.json" alone_grad_ms_min)" \
        -v n="$(jq -s '.[0].trainable_params' "$dir/one.json")" \
        -v calls="$(med "$dir/one.json" comm_calls_per_step)" -v rtt="${rtt:-0}" -v rate="$rate" 'BEGIN {
        bits = rate + 0; if (rate ~ /gbit/) bits *= 1e9; else if (rate ~ /mbit/) bits *= 1e6
        bytes_ms = bits / 8 / 1e3
        # tbf lets a burst of 256 KiB through at once (sim_nodes.sh shape), then the rate
        pbn = (calls - 1) * (rtt / 2 + 8 * 224 / bytes_ms)
        pgrad = (4 * n > 262144 ? 4 * n - 262144 : 0) / bytes_ms
        printf "  model (%d weights, %d BN all-reduces): two nodes = one node + BN + gradient\n", n, calls - 1
        printf "    predicted from rate and round trip: %.2f + %.3f + %.3f = %.2f ms\n", one, pbn, pgrad, one + pbn + pgrad
        printf "    from the collectives timed alone:   %.2f + %.3f + %.3f = %.2f ms\n", one, bn2 - bn1, g2 - g1, one + bn2 - bn1 + g2 - g1
        printf "    the same with their minima:         %.2f + %.3f + %.3f = %.2f ms\n", one, bm2 - bm1, gm2 - gm1, one + bm2 - bm1 + gm2 - gm1
        printf "    measured: %.2f ms (%.2fx the one-node step); across the link BN takes %.1f%%,\n", two, two / one, 100 * bn2 / two
        printf "    the gradient %.1f%% of the two-node step\n", 100 * g2 / two }'
done
