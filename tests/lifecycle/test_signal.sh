#!/usr/bin/env bash
# SIGUSR1 (Slurm's warning before the time limit) stops ddim-dist at the next step: it
# writes its checkpoint mid-epoch and exits 0; started again on the same run.dir it resumes
# from that step (label lifecycle). So do SIGTERM, SIGINT (Ctrl-C) and SIGHUP (the terminal
# or the ssh session went away), given as SIGNAL (label faults).
# usage: test_signal.sh DDIM_DIST DDIM_PREP [SIGNAL (USR1)]
set -u
# shellcheck source=tests/test_lib.sh
source "$(dirname "$0")/../test_lib.sh"
set -m # job control: the background job gets SIGINT (a shell without it has it ignored)
dist=$1 prep=$2 sig=${3:-USR1}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

run_expect "ddim-prep" 0 "$prep" --synthetic 48 --size 16 --output "$tmp/data.h5"
cat >"$tmp/cfg.yaml" <<YAML
data: {path: "$tmp/data.h5", dataset_repetitions: 3}
model: {image_size: 16, widths: [8, 16], block_depth: 1, embedding_dims: 8}
train: {num_epochs: 100000, batch_size: 8}
eval: {plot_diffusion_steps: 2, plot_rows: 1, plot_cols: 2}
run: {dir: "$tmp/run", backend: cpu, progress_seconds: 1000}
YAML
"$dist" --config "$tmp/cfg.yaml" >"$tmp/out" 2>&1 &
job=$!
for _ in $(seq 300); do # wait for the first epoch's checkpoint: training is under way
    [[ -f $tmp/run/checkpoint.h5 ]] && break
    sleep 0.1
done
[[ -f $tmp/run/checkpoint.h5 ]] || fail "no checkpoint after the first epoch"
kill -"$sig" "$job"
for _ in $(seq 300); do
    kill -0 "$job" 2>/dev/null || break
    sleep 0.1
done
kill -0 "$job" 2>/dev/null && { kill -KILL "$job"; fail "ddim-dist did not stop within 30 s of SIG$sig"; }
wait "$job"
check_status "ddim-dist after SIG$sig" $? 0
line=$(grep -o 'stopped by signal at step [0-9]*; checkpoint written' "$tmp/out") ||
    fail "no 'stopped by signal at step N; checkpoint written' line"
step=${line#stopped by signal at step }
step=${step%%;*}
grep -q "(SIG$sig)" "$tmp/out" || fail "the stop line does not name SIG$sig"
ok "SIG$sig: exit 0, $line"
[[ ! -e $tmp/run/checkpoint.h5.tmp ]] || fail "checkpoint.h5.tmp left behind"

# resume: two more steps from where the signal stopped it
run_expect "the resumed run" 0 "$dist" --config "$tmp/cfg.yaml" --set train.max_steps=$((step + 2))
grep -q "resuming from $tmp/run/checkpoint.h5 at epoch [0-9]* step [0-9]* (step $step in all)" \
    "$tmp/out" || fail "no 'resuming from ... (step $step in all)' line"
grep -q 'finished 2 steps' "$tmp/out" || fail "the resumed run did not run 2 steps"
n=$(grep -c '"type":"step"' "$tmp/run/metrics.jsonl")
((n == step + 2)) || fail "metrics.jsonl holds $n step lines, expected $((step + 2))"
ok "resumed at step $step, ran to $((step + 2)); metrics.jsonl has each step once"
