#!/usr/bin/env bash
# The faults a long run meets (issue 12's table), one case per CTest test (label faults):
# each checks the message, the exit status (never a signal) and that nothing was lost.
# usage: test_faults.sh CASE DDIM_DIST DDIM_PREP [MPIEXEC]
#   second_sigint    Ctrl-C twice: stops at once, exit 130, the last checkpoint intact
#   disk_full_ckpt   a checkpoint on a full disk: the cause, retried, exit 1, old one intact
#   disk_full_logs   metrics, grids and plot on a disk that fills and frees again
#   metrics_lines    metrics.jsonl holds whole lines while the run goes on
#   two_jobs         a second job on a run directory in use is refused; a stale lock taken
#   resume_changes   resuming with other settings: refused, forced, or harmless and recorded
#   divergence       a learning rate of 10 stops the run; the last checkpoint is kept
#   empty_config     an empty configuration file is an error naming it
#   small_val        a validation split smaller than a batch: n/a, not nan
#   no_gpu_driver    run.backend=cuda without a driver says so and how to use the CPU
#   rank_hangs       a rank stopped with SIGSTOP: the job ends naming it (needs MPIEXEC)
#   startup_signal   SIGTERM or SIGINT while ddim-dist starts (still reading its config,
#                    before MPI and the backend are up): stops cleanly before the first
#                    step, exit 0, nothing half-written
set -u
case_name=$1 dist=$2 prep=$3 mpiexec=${4:-}
source "$(dirname "$0")/fault_util.sh"
export OMP_NUM_THREADS=1

second_sigint() {
    make_data data32 48 32
    # a step takes about half a second: the second SIGINT comes while the first waits for
    # the step's end; if both land too close (merged) or too far apart, try again (each
    # attempt in a run directory of its own: a signal before training starts would kill it)
    for attempt in 1 2 3 4 5; do
        local run=$tmp/run$attempt
        write_cfg "$tmp/cfg.yaml" "$run" "data: {path: \"$tmp/data32.h5\", dataset_repetitions: 1}" \
            "model: {image_size: 32, widths: [32, 64], block_depth: 2, embedding_dims: 8}" \
            "train: {num_epochs: 100000, batch_size: 16}"
        "$dist" --config "$tmp/cfg.yaml" >"$tmp/out" 2>&1 &
        local job=$!
        wait_until 120 test -f "$run/checkpoint.h5" || fail "no checkpoint after an epoch"
        local before
        before=$(checkpoint_step "$run/checkpoint.h5")
        sleep 0.2
        kill -INT "$job"
        sleep 0.05
        kill -INT "$job" 2>/dev/null
        wait_exit "$job" 60
        if ((rc == 130)); then
            expect_out "interrupted again: stopping at once, without a checkpoint" "second SIGINT"
            local after
            after=$(checkpoint_step "$run/checkpoint.h5")
            ((after >= before)) || fail "the checkpoint went back from step $before to $after"
            check_metrics "$run/metrics.jsonl"
            ok "second SIGINT (attempt $attempt): exit 130, checkpoint of step $after intact, metrics whole"
            return 0
        fi
        expect_status "$rc" 0
        expect_out "stopped by signal at step [0-9]+; checkpoint written" "one SIGINT"
        echo "note: attempt $attempt: the two SIGINTs acted as one (exit 0): again"
    done
    fail "five attempts never delivered two separate SIGINTs"
}

disk_full_ckpt() {
    make_data data 48 16
    # room for one checkpoint (226 KB) and the logs, not for the next one's temporary file
    mount_tmpfs "$tmp/disk" 400k
    write_cfg "$tmp/cfg.yaml" "$tmp/disk/run" "train: {num_epochs: 3, batch_size: 8}"
    "$dist" --config "$tmp/cfg.yaml" >"$tmp/out" 2>&1
    rc=$?
    expect_status "$rc" 1
    expect_out "checkpoint of step 8 was not written \(1 time\(s\) in a row\): cannot write '$tmp/disk/run/checkpoint.h5.tmp' \(write failed\): No space left on device" "first failure"
    expect_out "checkpoint of step 12 was not written \(2 time\(s\) in a row\)" "retried and reported again"
    expect_out "finished 12 steps, but the last checkpoint \(step 12\) could not be written.*is that of step 4" "final message"
    [[ $(checkpoint_step "$tmp/disk/run/checkpoint.h5") == 4 ]] || fail "the checkpoint on disk is not step 4's"
    check_metrics "$tmp/disk/run/metrics.jsonl"
    check_steps "$tmp/disk/run/metrics.jsonl" 12
    [[ $(jq -s '[.[] | select(.type == "checkpoint_failed")] | length' "$tmp/disk/run/metrics.jsonl") == 2 ]] ||
        fail "metrics.jsonl does not record the two failed checkpoints"
    no_leftovers "$tmp/disk/run"
    ok "disk full: exit 1 naming the cause, retried, step 4's checkpoint intact, metrics whole"
}

disk_full_logs() {
    make_data data 48 16
    mount_tmpfs "$tmp/disk" 2m
    write_cfg "$tmp/cfg.yaml" "$tmp/disk/run" "data: {path: \"$tmp/data.h5\", dataset_repetitions: 5}"
    "$dist" --config "$tmp/cfg.yaml" >"$tmp/out" 2>&1 &
    local job=$!
    wait_until 60 test -f "$tmp/disk/run/checkpoint.h5" || fail "no first checkpoint"
    dd if=/dev/zero of="$tmp/disk/filler" bs=4k 2>/dev/null # until the disk is full
    # the checkpoint and the PNGs fail at once, metrics.jsonl when its last page is full
    wait_until 60 grep -q "checkpoint of step [0-9]* was not written" "$tmp/out" ||
        fail "no checkpoint failure on the full disk"
    wait_until 60 grep -q "cannot write to '$tmp/disk/run/metrics.jsonl'" "$tmp/out" ||
        fail "no metrics.jsonl failure on the full disk"
    rm -f "$tmp/disk/filler"
    wait_until 60 grep -q "written, after [0-9]* that could not be" "$tmp/out" ||
        fail "no checkpoint once the disk had room again"
    kill -TERM "$job"
    wait_exit "$job" 60
    expect_status "$rc" 0
    expect_out "cannot write to '$tmp/disk/run/metrics.jsonl': No space left on device" "metrics"
    expect_out "is written again: [0-9]+ held line\(s\) saved" "held metrics lines"
    expect_out "warning: cannot (write|create) '$tmp/disk/run/(samples/epoch_[0-9]+|loss).png.tmp'.*No space left on device" "grid or plot"
    local last
    last=$(grep -o 'stopped by signal at step [0-9]*' "$tmp/out" | grep -o '[0-9]*$') ||
        fail "no 'stopped by signal' line"
    check_metrics "$tmp/disk/run/metrics.jsonl"
    check_steps "$tmp/disk/run/metrics.jsonl" "$last"
    [[ $(checkpoint_step "$tmp/disk/run/checkpoint.h5") == "$last" ]] || fail "checkpoint not at step $last"
    no_leftovers "$tmp/disk/run"
    for png in "$tmp"/disk/run/samples/*.png "$tmp/disk/run/loss.png"; do
        [[ $(head -c4 "$png" | tail -c3) == PNG ]] || fail "$png is not a whole PNG"
    done
    ok "disk full then freed: causes named, every step in metrics.jsonl once, no broken PNG, exit 0"
}

metrics_lines() {
    make_data data 48 16
    write_cfg "$tmp/cfg.yaml" "$tmp/run" "data: {path: \"$tmp/data.h5\", dataset_repetitions: 200}"
    "$dist" --config "$tmp/cfg.yaml" >"$tmp/out" 2>&1 &
    local job=$!
    # during the first epoch (800 steps): every line whole and on disk when written
    wait_until 60 grep -q '"type":"step"' "$tmp/run/metrics.jsonl" 2>/dev/null ||
        fail "no step line in metrics.jsonl while the first epoch runs"
    for _ in 1 2 3 4 5; do
        cp "$tmp/run/metrics.jsonl" "$tmp/snapshot"
        check_metrics "$tmp/snapshot"
        sleep 0.1
    done
    grep -q '"type":"epoch"' "$tmp/snapshot" && echo "note: the first epoch ended before the checks"
    kill -TERM "$job"
    wait_exit "$job" 60
    expect_status "$rc" 0
    check_metrics "$tmp/run/metrics.jsonl"
    ok "metrics.jsonl: whole lines while running ($(wc -l <"$tmp/snapshot") in the last look)"
}

two_jobs() {
    make_data data 48 16
    write_cfg "$tmp/cfg.yaml" "$tmp/run"
    "$dist" --config "$tmp/cfg.yaml" >"$tmp/out1" 2>&1 &
    local first=$!
    wait_until 60 test -f "$tmp/run/checkpoint.h5" || fail "the first job wrote no checkpoint"
    timeout 60 "$dist" --config "$tmp/cfg.yaml" >"$tmp/out" 2>&1
    rc=$?
    expect_status "$rc" nonzero
    expect_out "run.dir '$tmp/run' is in use by another ddim-dist: PID $first on host $(hostname)" "refusal"
    kill -0 "$first" 2>/dev/null || fail "the first job stopped"
    ok "a second job on the same run.dir: refused naming PID $first on $(hostname)"
    kill -KILL "$first" # a job that dies without releasing its lock
    wait "$first" 2>/dev/null
    local step
    step=$(checkpoint_step "$tmp/run/checkpoint.h5")
    "$dist" --config "$tmp/cfg.yaml" --set train.max_steps=$((step + 4)) >"$tmp/out" 2>&1
    rc=$?
    expect_status "$rc" 0
    expect_out "taking over the lock of PID $first on host $(hostname)" "stale lock"
    expect_out "resuming from $tmp/run/checkpoint.h5 .*\(step $step in all\)" "resume"
    check_metrics "$tmp/run/metrics.jsonl"
    check_steps "$tmp/run/metrics.jsonl" $((step + 4))
    ok "the lock of a killed job: taken over with a warning, resumed from step $step"
}

resume_changes() {
    make_data data 48 16
    write_cfg "$tmp/cfg.yaml" "$tmp/run" "train: {num_epochs: 1, batch_size: 8}"
    "$dist" --config "$tmp/cfg.yaml" >"$tmp/out" 2>&1 || fail "the first run failed"
    cp "$tmp/run/config.yaml" "$tmp/config.before"
    cp "$tmp/run/checkpoint.h5" "$tmp/ckpt.before"
    local refusal
    for change in train.learning_rate=0.002 train.seed=7 train.batch_size=4 model.block_depth=2; do
        "$dist" --config "$tmp/cfg.yaml" --set "$change" --set train.num_epochs=2 >"$tmp/out" 2>&1
        rc=$?
        expect_status "$rc" nonzero
        refusal="cannot resume: .*${change%%=*} .* -> .*--set train.resume=force"
        [[ $change == model.* ]] && # weights of another shape: no force can help
            refusal="cannot resume: .*was written for model.block_depth 1, the config has 2"
        expect_out "$refusal" "refusal of $change"
        cmp -s "$tmp/run/config.yaml" "$tmp/config.before" || fail "config.yaml rewritten by a refused resume"
        cmp -s "$tmp/run/checkpoint.h5" "$tmp/ckpt.before" || fail "checkpoint touched by a refused resume"
    done
    ok "resumes with another learning rate, seed, batch size, model: refused, nothing touched"
    "$dist" --config "$tmp/cfg.yaml" --set train.num_epochs=2 --set eval.plot_rows=2 >"$tmp/out" 2>&1
    rc=$?
    expect_status "$rc" 0
    expect_out "resuming with changed settings .*train.num_epochs 1 -> 2, eval.plot_rows 1 -> 2" "harmless"
    metrics_has "$tmp/run/metrics.jsonl" '.type == "config_change" and .step == 4 and
        .forced == false and ([.changes[].key] == ["train.num_epochs", "eval.plot_rows"])' ||
        fail "no config_change line for the harmless changes"
    "$dist" --config "$tmp/cfg.yaml" --set train.num_epochs=3 --set train.learning_rate=0.0005 \
        --set train.resume=force >"$tmp/out" 2>&1
    rc=$?
    expect_status "$rc" 0
    metrics_has "$tmp/run/metrics.jsonl" '.type == "config_change" and .step == 8 and
        .forced == true and any(.changes[]; .key == "train.learning_rate" and .old == "0.001" and
        .new == "0.0005" and .exact_resume == false)' || fail "no forced config_change line"
    grep -q "learning_rate: 0.0005" "$tmp/run/config.yaml" || fail "config.yaml lacks the new rate"
    check_metrics "$tmp/run/metrics.jsonl"
    check_steps "$tmp/run/metrics.jsonl" 12
    ok "harmless changes accepted, a forced one too; each recorded in metrics.jsonl"
}

divergence() {
    make_data data 48 16
    # 237 steps per epoch and no progress line before the epoch's end: the losses are read
    # back only where the stop is agreed, at most 8 steps apart (run_guard.h)
    write_cfg "$tmp/cfg.yaml" "$tmp/run" "data: {path: \"$tmp/data.h5\", dataset_repetitions: 50}" \
        "train: {num_epochs: 1, batch_size: 8}" "run: {dir: \"$tmp/run\", backend: cpu, progress_seconds: 1000}"
    "$dist" --config "$tmp/cfg.yaml" --set train.max_steps=4 >"$tmp/out" 2>&1 || fail "the first run failed"
    cp "$tmp/run/checkpoint.h5" "$tmp/ckpt.before"
    "$dist" --config "$tmp/cfg.yaml" --set train.num_epochs=20 --set train.learning_rate=10 \
        --set train.resume=force >"$tmp/out" 2>&1
    rc=$?
    expect_status "$rc" 1
    expect_out "error: the training diverged at step [0-9]+: the noise loss .* is more than 20 times the median" "divergence"
    expect_out "Stopped at step [0-9]+ without writing a checkpoint: the checkpoint on disk, .* is that of step 4" "kept"
    cmp -s "$tmp/run/checkpoint.h5" "$tmp/ckpt.before" || fail "the checkpoint was replaced"
    check_metrics "$tmp/run/metrics.jsonl"
    local at stopped last
    at=$(grep -o 'diverged at step [0-9]*' "$tmp/out" | grep -o '[0-9]*$')
    stopped=$(grep -o 'Stopped at step [0-9]*' "$tmp/out" | grep -o '[0-9]*$')
    last=$(jq -r 'select(.type == "step") | .step' "$tmp/run/metrics.jsonl" | tail -1)
    ((stopped >= at && stopped - at <= 8)) || fail "diverged at step $at, stopped at step $stopped: more than 8 steps later"
    ((last == at)) || fail "metrics.jsonl holds step lines up to $last, after the diverged step $at"
    metrics_has "$tmp/run/metrics.jsonl" ".type == \"stop\" and .reason == \"diverged\" and
        .step == $at and .stopped_at == $stopped" || fail "metrics.jsonl does not say that the run diverged"
    ok "learning rate 10: diverged at step $at, stopped at $stopped, metrics end at $at, exit 1, step 4's checkpoint kept"
    # a non-finite loss: test_run_guard (a checkpoint poisoned with a huge weight)
}

empty_config() {
    : >"$tmp/empty.yaml"
    "$dist" --config "$tmp/empty.yaml" --run-dir "$tmp/run" >"$tmp/out" 2>&1
    rc=$?
    expect_status "$rc" 2
    expect_out "$tmp/empty.yaml: the configuration file is empty" "empty file"
    [[ ! -e $tmp/run ]] || fail "the run directory was created"
    ok "an empty configuration file: exit 2 naming it, nothing written"
}

small_val() {
    make_data data 48 16 # 10 validation images, batch 16
    write_cfg "$tmp/cfg.yaml" "$tmp/run" "train: {num_epochs: 2, batch_size: 16}"
    "$dist" --config "$tmp/cfg.yaml" >"$tmp/out" 2>&1
    rc=$?
    expect_status "$rc" 0
    expect_out "the validation split \(10 images x 1 repetitions\) is smaller than one batch of 16" "note"
    expect_out "epoch 2/2 done .*val_n_loss n/a  val_i_loss n/a" "epoch line"
    ! grep -qi nan "$tmp/out" || fail "the output shows nan"
    check_metrics "$tmp/run/metrics.jsonl"
    metrics_has "$tmp/run/metrics.jsonl" '.type == "epoch" and .val_n_loss == null' ||
        fail "the epoch lines do not hold null validation losses"
    ok "validation split smaller than a batch: noted, n/a, exit 0"
}

no_gpu_driver() {
    if [[ -e /proc/driver/nvidia/version ]] || command -v nvidia-smi >/dev/null; then
        echo "SKIP: this machine has an NVIDIA driver"
        exit 77
    fi
    make_data data 48 16
    write_cfg "$tmp/cfg.yaml" "$tmp/run" "run: {dir: \"$tmp/run\", backend: cuda}"
    "$dist" --config "$tmp/cfg.yaml" >"$tmp/out" 2>&1
    rc=$?
    if grep -q "built without the CUDA backend" "$tmp/out"; then
        echo "SKIP: this ddim-dist has no CUDA backend"
        exit 77
    fi
    expect_status "$rc" 1
    expect_out "no usable GPU: no NVIDIA driver was found" "cause"
    expect_out "to run on the CPU instead, use --set run.backend=cpu" "how"
    ! grep -q "insufficient for CUDA runtime version)\$" "$tmp/out" || fail "only the runtime's words"
    ok "no driver: says so and how to use the CPU backend, exit 1"
}

rank_hangs() {
    [[ -n $mpiexec ]] || { echo "SKIP: no MPI"; exit 77; }
    make_data data 48 16
    write_cfg "$tmp/cfg.yaml" "$tmp/run" "run: {dir: \"$tmp/run\", backend: cpu, progress_seconds: 1000, collective_timeout_s: 5}"
    "$mpiexec" --allow-run-as-root --oversubscribe -np 2 "$dist" --config "$tmp/cfg.yaml" >"$tmp/out" 2>&1 &
    local job=$!
    wait_until 60 test -f "$tmp/run/checkpoint.h5" || fail "no first checkpoint"
    local victim=""
    for pid in $(pgrep -f "$dist --config $tmp/cfg.yaml"); do
        tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -qx 'OMPI_COMM_WORLD_RANK=1' && victim=$pid
    done
    [[ -n $victim ]] || { kill "$job"; fail "could not find rank 1"; }
    local start=$SECONDS
    kill -STOP "$victim"
    wait_until 60 bash -c "! kill -0 $job 2>/dev/null"
    kill -0 "$job" 2>/dev/null && { kill -KILL "$victim" "$job"; fail "the job still ran 60 s after rank 1 stopped"; }
    wait "$job"
    rc=$?
    kill -KILL "$victim" 2>/dev/null
    ((rc != 0)) || fail "the job exited 0"
    expect_out "rank\(s\) 1 did not arrive at .* within 5 s \(run.collective_timeout_s\)" "naming rank 1"
    [[ $(checkpoint_step "$tmp/run/checkpoint.h5") -ge 4 ]] || fail "checkpoint unreadable"
    check_metrics "$tmp/run/metrics.jsonl"
    ok "rank 1 stopped: the job ended after $((SECONDS - start)) s (exit $rc), naming rank 1"
}

# caught PID SIG: the process catches signal SIG (its bit in /proc/PID/status's SigCgt)
caught() {
    local mask bit
    bit=$(kill -l "$2")
    mask=$(awk '/^SigCgt:/ { print $2 }' "/proc/$1/status" 2>/dev/null) || return 1
    [[ -n $mask ]] && (((0x$mask >> (bit - 1)) & 1))
}

startup_signal() {
    make_data data 48 16
    write_cfg "$tmp/cfg.yaml" "$tmp/run" "train: {num_epochs: 1, batch_size: 8}"
    mkfifo "$tmp/cfg.fifo"
    for sig in TERM INT; do
        rm -rf "$tmp/run"
        # the configuration comes through a FIFO: ddim-dist waits for it at the very start
        "$dist" --config "$tmp/cfg.fifo" >"$tmp/out" 2>&1 &
        local job=$!
        wait_until 5 caught "$job" "$sig" ||
            echo "note: SIG$sig is not caught while ddim-dist reads its configuration"
        kill -"$sig" "$job"
        timeout 20 bash -c "cat '$tmp/cfg.yaml' >'$tmp/cfg.fifo'" 2>/dev/null
        wait_exit "$job" 60
        expect_status "$rc" 0
        expect_out "stopped by SIG$sig during start-up, before the first step: nothing new to save" "SIG$sig"
        [[ ! -e $tmp/run/checkpoint.h5 ]] || fail "a checkpoint was written"
        ! jq -e 'select(.type == "step")' "$tmp/run/metrics.jsonl" >/dev/null 2>&1 ||
            fail "a step ran after the stop"
        metrics_has "$tmp/run/metrics.jsonl" '.type == "stop" and .during == "start-up"' ||
            fail "metrics.jsonl does not record the stop"
        no_leftovers "$tmp/run"
        ok "SIG$sig during start-up: stopped before the first step, exit 0, nothing half-written"
    done
}

declare -F "$case_name" >/dev/null || { echo "unknown case $case_name"; exit 2; }
"$case_name"
