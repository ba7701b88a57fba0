#!/bin/bash
# test_bench.sh DDIM_BENCH [MPIEXEC]: ddim-bench on the CPU backend, a tiny network: exits 0,
# and its time per op group counts the ops the network has (widths 8,16, block depth 1:
# three residual blocks, so 5 BatchNorm ops each: statistics and normalization forward, their
# output computed again for backward (src/model/graph_plan.c), statistics and apply
# backward; one convolution backward per forward).
# With MPIEXEC (test_bench_ranks): on 2 ranks it counts the step's collectives (two
# all-reduces per BatchNorm layer, one for the gradient) and times them alone.
set -u
bench=$1 mpiexec=${2:-}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# shellcheck source=tests/test_lib.sh
source "$(dirname "$0")/test_lib.sh"

# Sanitizer build: LeakSanitizer crashes at ddim-bench's exit, scanning a bogus dynamic-TLS
# range left by Open MPI's components ("Tracer caught signal 11"; without TLS as roots it
# reports libgomp's thread pool instead). Leak checks off for this program only; ASan and
# UBSan stay on, and the trainer code it runs is leak-checked by the other tests.
[[ -n ${ASAN_OPTIONS:-} ]] && export ASAN_OPTIONS="$ASAN_OPTIONS:detect_leaks=0"

args=(--backend cpu --batch 2 --image-size 16 --widths 8,16 --block-depth 1 --warmup 1 --steps 2)
if [[ -n $mpiexec ]]; then
    run_expect "ddim-bench on 2 ranks" 0 "$mpiexec" --allow-run-as-root --oversubscribe -np 2 \
        "$bench" "${args[@]}" --op-steps 0 --json
    json=$(grep '^{"tool"' "$tmp/out")
    [[ $(jq .comm_calls_per_step <<<"$json") == 7 ]] ||
        fail "collectives per step: $(jq .comm_calls_per_step <<<"$json"), expected 7 (3 BN x 2 + 1)"
    jq -e '.alone_bn_ms > 0 and .alone_grad_ms > 0 and .comm_ms_per_step > 0' <<<"$json" \
        >/dev/null || fail "collectives not timed: $json"
    grep -q '^  alone  .* ms BatchNorm.s 6, .* ms the gradient.s' "$tmp/out" ||
        fail "no line of the collectives timed alone"
    ok "2 ranks: 7 collectives per step, timed alone: $(jq -c '{alone_bn_ms, alone_grad_ms}' <<<"$json")"
    exit 0
fi
run_expect "ddim-bench --op-steps 2" 0 "$bench" "${args[@]}" --op-steps 2 --json
ops() { awk -v g="$1" '$1 == g && NF == 4 { print $4 }' "$tmp/out"; }
[[ $(ops batchnorm) == 15 ]] || fail "batchnorm ops per step: '$(ops batchnorm)', expected 15"
[[ -n $(ops conv_fwd) && $(ops conv_fwd) == "$(ops conv_bwd)" ]] ||
    fail "conv ops per step: forward '$(ops conv_fwd)', backward '$(ops conv_bwd)'"
[[ $(ops optimizer) == 2 ]] || fail "optimizer ops per step: '$(ops optimizer)', expected 2"
grep -q '"op_groups_ms":{"conv_fwd":[0-9.]*,"conv_bwd"' "$tmp/out" || fail "no op groups in JSON"
grep -q '"op_groups_cpu_ms":{"conv_fwd":[0-9.]*,"conv_bwd"' "$tmp/out" ||
    fail "no op groups' CPU times in JSON"
grep -q '"host_cpu_ms_per_step":[0-9.]*,' "$tmp/out" || fail "no CPU time per step in JSON"
ok "op groups counted"

run_expect "ddim-bench --op-steps 0" 0 "$bench" "${args[@]}" --op-steps 0
! grep -q '^op group' "$tmp/out" || fail "--op-steps 0 still times op groups"
run_expect "ddim-bench --op-steps -1" 2 "$bench" "${args[@]}" --op-steps -1
grep -q -- "--op-steps: expected an integer" "$tmp/out" || fail "no message for --op-steps -1"
ok "ddim-bench --op-steps"

# --csv: one line per timed step with the whole step and each phase; a file that cannot be
# written is an error, named, and the exit status says so (the figures are printed anyway)
run_expect "ddim-bench --csv" 0 "$bench" "${args[@]}" --op-steps 0 --csv "$tmp/steps.csv"
[[ $(head -1 "$tmp/steps.csv") == step,step_ms,data_ms,forward_ms,backward_ms,allreduce_ms,update_ms ]] ||
    fail "--csv header: '$(head -1 "$tmp/steps.csv")'"
[[ $(wc -l <"$tmp/steps.csv") == 3 ]] || fail "--csv: $(wc -l <"$tmp/steps.csv") lines for 2 steps"
run_expect "ddim-bench --csv into a missing folder" 1 "$bench" "${args[@]}" --op-steps 0 \
    --csv "$tmp/missing/steps.csv"
grep -q "^ddim-bench: cannot write --csv $tmp/missing/steps.csv: No such file" "$tmp/out" ||
    fail "no message naming the --csv file"
ok "ddim-bench --csv"

# --precision: the key table's names, in the setup table and the JSON line; others refused
run_expect "ddim-bench --precision bf16" 0 "$bench" "${args[@]}" --op-steps 0 --precision bf16 --json
grep -q '^  precision      bf16$' "$tmp/out" || fail "the setup table does not say bf16"
grep -q '"precision":"bf16"' "$tmp/out" || fail "the JSON line does not say bf16"
run_expect "ddim-bench --precision fp16" 2 "$bench" "${args[@]}" --precision fp16
grep -q "^ddim-bench: --precision: expected fp32, tf32 or bf16, got 'fp16'" "$tmp/out" ||
    fail "no message for --precision fp16"
ok "ddim-bench --precision"
