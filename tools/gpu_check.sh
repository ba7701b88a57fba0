#!/usr/bin/env bash
# gpu_check.sh: the first thing to run on a lent GPU machine (docs/gpu.md), in one `run` call
# from the repository root with .bundle carried (tools/device_bundle.sh, made here). In
# order of importance, each step bounded in time and its exit status checked and recorded:
#   build (tools/device_build.sh, no tests); the gpu tests that the timings rest on
#   (test_cuda_ops: every op against the CPU, both grad modes, the fused epilogue against the
#   ops apart; test_cuda_graph: the whole step as one graph against op by op, with cuDNN);
#   the benchmark table (tools/bench_gpu.sh: ours, torch eager, torch.compile with CUDA
#   graphs, then ours with each part of issue 18 taken away: graph partial / off, fusion
#   off, batch 8 with the graph whole / partial / off, cuDNN's fused residual; peak memory
#   beside PyTorch's); with 2 or more GPUs, test_nccl_ranks (NCCL's collectives in the
#   graph, the gradient buckets against one piece) and its timing of graph off/whole x
#   buckets 0/1 MiB at batch 8 per GPU (skipped with the reason with one GPU); the Keras
#   fixture in exact mode and in TF32 (each printing its cuDNN algorithms); the programs'
#   exits (a short training run, a SIGTERM stop, ddim-sample; each must exit 0, never a
#   signal; a run with a missing dataset must exit with a clean error); diagnostics; then
#   the CPU tests (unit|model) if time is left.
# The whole fits GPU_CHECK_BUDGET_S (480 s: about 8 minutes with the build) inside run's
# 600 s limit; a step that would pass the budget is cut short (its row says so) and the
# rest still report.
#
#   run(command = "bash tools/gpu_check.sh", carry = [".bundle"], timeout_s = 600)
#   tools/gpu_check.sh --dry-run     # here, without a GPU: checks this script itself
#
# --dry-run builds nothing (it uses BUILD_DIR, default build), runs the CPU backend at tiny
# sizes, expects the gpu tests to skip (77) and leaves the CPU tests out.
# Results: $OUT/summary.txt (a line per step, the benchmark table, the cuDNN algorithms
# chosen, the first mismatches) and $OUT/gpu_check.tar.gz (every log); without OUT, under
# runs/gpu_check-<time>/. Exit status: 0 when every step passed, 1 when one failed, 77 when
# no GPU is visible (without --dry-run).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
source tests/test_lib.sh # status_problem: the tests' exit-status rules

dry=0
[[ ${1:-} == --dry-run ]] && dry=1
budget=${GPU_CHECK_BUDGET_S:-480}
deadline=$((SECONDS + budget))
reserve=15 # seconds kept for the summary and the archive
dest=${OUT:-runs/gpu_check-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$dest" || exit 1
work=$(mktemp -d /tmp/gpu_check.XXXXXX) || exit 1
summary=$work/summary.txt
failed=0
if ((dry)); then
    bdir=${BUILD_DIR:-build} backend=cpu gpu_want=77
else
    bdir=${BUILD_DIR:-build-gpu} backend=cuda gpu_want=0
fi

note() { echo "$*" | tee -a "$summary"; }

# record NAME WANT RC SECONDS LIMIT: one summary line for a step's exit status
record() {
    local name=$1 want=$2 rc=$3 took=$4 limit=$5 problem
    if ((rc == 124 || rc == 137)) && ((took >= limit)); then
        note "$(printf '%-22s FAILED: still running after its limit of %d s' "$name" "$limit")"
        failed=1
    elif problem=$(status_problem "$rc" "$want"); then
        note "$(printf '%-22s ok (exit %d, %d s)' "$name" "$rc" "$took")"
    else
        note "$(printf '%-22s FAILED: %s (%d s; log %s.log)' "$name" "$problem" "$took" "$name")"
        failed=1
    fi
}

# limit_for MAX: MAX seconds, or what the budget has left if less (0: nothing left)
limit_for() {
    local left=$((deadline - SECONDS - reserve))
    ((left < 5)) && left=0
    echo $((left < $1 ? left : $1))
}

# step NAME WANT MAX_S COMMAND...: runs COMMAND under timeout (output into NAME.log)
step() {
    local name=$1 want=$2 limit t0=$SECONDS
    limit=$(limit_for "$3")
    shift 3
    if ((limit == 0)); then
        note "$(printf '%-22s NOT RUN: the time budget is spent' "$name")"
        failed=1
        return 1
    fi
    echo "== $name (at most $limit s): $*" >"$work/$name.log"
    timeout -k 5 "$limit" "$@" >>"$work/$name.log" 2>&1
    local rc=$?
    record "$name" "$want" $rc $((SECONDS - t0)) "$limit"
    return $rc
}

# sigterm_stop RUN_DIR: ddim-dist stopped by SIGTERM once training is under way must write
# its checkpoint and exit 0
sigterm_stop() {
    local run=$1 log=$work/sigterm.log t0=$SECONDS pid rc
    "$bdir/ddim-dist" "${train_args[@]}" --set train.num_epochs=100000 --run-dir "$run" >"$log" 2>&1 &
    pid=$!
    for _ in $(seq 600); do # the first step line: training is under way (at most 60 s)
        grep -q '"type":"step"' "$run/metrics.jsonl" 2>/dev/null && break
        kill -0 $pid 2>/dev/null || break
        sleep 0.1
    done
    kill -TERM $pid 2>/dev/null
    for _ in $(seq 600); do # at most 60 s to write the checkpoint and exit
        kill -0 $pid 2>/dev/null || break
        sleep 0.1
    done
    kill -0 $pid 2>/dev/null && kill -KILL $pid
    wait $pid
    rc=$?
    record sigterm 0 $rc $((SECONDS - t0)) 1000
    grep -q 'stopped by signal at step [0-9]*; checkpoint written' "$log" ||
        { note "sigterm                FAILED: no 'stopped by signal ...; checkpoint written' line" && failed=1; }
}

{
    echo "gpu_check.sh $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(hostname)$( ((dry)) && echo ' (--dry-run: CPU backend, tiny sizes)')"
    echo "git: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD 2>/dev/null || echo ' (with local changes)')"
    echo "gpu: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | head -1 | grep . || echo none visible)"
} | tee "$summary"
if ((!dry)) && ! nvidia-smi -L >/dev/null 2>&1; then
    note "no GPU visible (nvidia-smi -L fails): nothing checked; tools/gpu_check.sh --dry-run checks the script"
    cp "$summary" "$dest/summary.txt"
    exit 77
fi

# --- build -----------------------------------------------------------------------------------
if ((dry)); then
    note "$(printf '%-22s skipped (--dry-run: using %s)' build "$bdir")"
else
    step build 0 300 env CTEST_LABELS=none BUILD_DIR="$bdir" bash tools/device_build.sh
    # shellcheck disable=SC1091
    source .bundle/env.sh >/dev/null 2>&1 # the bundle's libraries, for the programs below
fi
if [[ ! -x $bdir/ddim-dist ]]; then
    note "no $bdir/ddim-dist: the build failed; see build.log"
    failed=1
else
    # --- the gpu tests the timings rest on ----------------------------------------------------
    step test_cuda_ops $gpu_want 120 "$bdir/tests/test_cuda_ops"
    # the whole step as one CUDA graph (gather, draw, AdamW, EMA, counters) against op by op
    step test_cuda_graph $gpu_want 90 "$bdir/tests/test_cuda_graph"

    # --- the benchmark table: each row bounded; ours, torch, then ours with a part away -------
    if ((dry)); then
        # shellcheck disable=SC2054 # WIDTHS=8,16 is one word
        bench_env=(BACKEND=cpu BATCH=4 IMAGE_SIZE=16 WIDTHS=8,16 BLOCK_DEPTH=1 WARMUP=1 STEPS=3
            VARIANTS="partial nograph nofuse b8")
    else
        bench_env=()
    fi
    # keep ~150 s for the steps after the table; the default torch.compile row (seen compiling
    # for more than 100 s) only runs when VARIANTS and the rest leave room
    left=$(($(limit_for 100000) - 150))
    ((left < 60)) && left=60
    step bench 0 $((left + 15)) env OUT="$work" BUILD="$bdir" BUDGET_S=$left LIMIT_OURS=90 \
        LIMIT_EAGER=120 LIMIT_COMPILE=180 LIMIT_VARIANT=45 COMPILE_DEFAULT=0 "${bench_env[@]}" \
        bash tools/bench_gpu.sh
    if [[ -f $work/bench/status.txt ]]; then
        read -r _ rc limit took < <(grep '^ours ' "$work/bench/status.txt")
        record ddim-bench 0 "${rc:-1}" "${took:-0}" "${limit:-0}"
        sed -n '/step ms/,$p' "$work/bench/summary.txt" | tee -a "$summary"
    fi

    # --- several GPUs: NCCL in the graph, the buckets; timed at batch 8 per GPU --------------
    gpus=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU')
    if ((gpus >= 2)); then
        step nccl_ranks 0 90 "$bdir/tests/test_nccl_ranks"
        step nccl_ranks_time 0 90 "$bdir/tests/test_nccl_ranks" --time 8 &&
            grep '^{' "$work/nccl_ranks_time.log" | tee -a "$summary"
    else
        note "$(printf '%-22s skipped: %d GPU(s) visible, 2 or more needed (NCCL in the graph, the gradient buckets)' multi_gpu "$gpus")"
    fi

    # --- the Keras fixture: exact mode at the CPU's tolerances, TF32 at its own ---------------
    step fixture_exact $gpu_want 60 env DDIM_CUDNN_LOG_ALGOS=1 \
        "$bdir/tests/test_keras_fixture" tests/data/keras_small.h5 --backend cuda
    step fixture_tf32 $gpu_want 60 env DDIM_CUDNN_LOG_ALGOS=1 \
        "$bdir/tests/test_keras_fixture" tests/data/keras_small.h5 --backend cuda --tf32

    # --- the programs' exits ----------------------------------------------------------------
    if ((dry)); then
        size=16 tiny=(--set model.image_size=16 --set model.widths=[8,16] --set model.block_depth=1
            --set model.embedding_dims=8 --set train.batch_size=8 --set eval.plot_diffusion_steps=2)
    else
        size=32 tiny=()
    fi
    train_args=(--config configs/quickstart.yaml --set run.backend="$backend"
        --set data.path="$work/synthetic.h5" --set run.progress_seconds=1000 "${tiny[@]}")
    step prep 0 60 "$bdir/ddim-prep" --synthetic 512 --size $size --output "$work/synthetic.h5"
    step train 0 120 "$bdir/ddim-dist" "${train_args[@]}" --set train.num_epochs=1 --run-dir "$work/run"
    # an error after the backend and the communicator exist: a clean exit 1..127 (teardown)
    step train_error error 60 "$bdir/ddim-dist" "${train_args[@]}" --set data.path="$work/none.h5" \
        --run-dir "$work/run_error"
    if (($(limit_for 130) >= 130)); then
        sigterm_stop "$work/run_sigterm"
    else
        note "$(printf '%-22s NOT RUN: the time budget is spent' sigterm)" && failed=1
    fi
    step sample 0 60 "$bdir/ddim-sample" --checkpoint "$work/run/checkpoint.h5" --backend $backend \
        --num-images 16 --output "$work/sample.png"

    # --- diagnostics: exits recorded, not judged ----------------------------------------------
    # exact mode with FFT and Winograd allowed again: 1 here with 0 in test_cuda_ops and
    # fixture_exact shows they caused the parity failure
    step fixture_inexact clean 60 env DDIM_CUDNN_LOG_ALGOS=1 DDIM_CUDNN_ALLOW_INEXACT=1 \
        "$bdir/tests/test_keras_fixture" tests/data/keras_small.h5 --backend cuda
    step cuda_ops_inexact clean 120 env DDIM_CUDNN_ALLOW_INEXACT=1 "$bdir/tests/test_cuda_ops"
    # cuDNN's fused residual epilogue (an experiment): the fixture in TF32 at its tolerances
    step fixture_cudnn_fused clean 60 env DDIM_CUDNN_FUSED_EPILOGUE=1 \
        "$bdir/tests/test_keras_fixture" tests/data/keras_small.h5 --backend cuda --tf32

    # --- the CPU tests of this build, if time is left ----------------------------------------
    if ((dry)); then
        note "$(printf '%-22s skipped (--dry-run: CI runs them)' cpu_tests)"
    elif (($(limit_for 60) >= 60)); then
        step cpu_tests 0 600 ctest --test-dir "$bdir" -L 'unit|model' -E cuda --output-on-failure
    else
        note "$(printf '%-22s not run: no time left in the budget' cpu_tests)"
    fi
fi

# --- what the fixture tests found: algorithms per direction, first mismatches ------------------
note "(fixture_inexact, cuda_ops_inexact: diagnostics, FFT and Winograd allowed in exact mode;"
note " exit 1 there with exit 0 in fixture_exact and test_cuda_ops: those algorithms were the cause)"
for t in fixture_exact fixture_tf32 fixture_inexact; do
    [[ -f $work/$t.log ]] || continue
    note "$t: cuDNN algorithms chosen (count, direction, algorithm, math):"
    grep -o '; [a-z-]* [A-Z_0-9]* [A-Z_]*' "$work/$t.log" | sed 's/^; //' | sort | uniq -c |
        sed 's/^/    /' | tee -a "$summary"
    grep -E '^FAIL|FIRST MISMATCH' "$work/$t.log" | head -n 6 | sed 's/^/    /' | tee -a "$summary"
done
note "gpu_check: $( ((failed)) && echo 'FAILED (see above)' || echo 'all passed') in $SECONDS s"
cp "$summary" "$dest/summary.txt"
tar -czf "$dest/gpu_check.tar.gz" -C "$work" --exclude='*.h5' . &&
    echo "gpu_check: $dest/summary.txt and $dest/gpu_check.tar.gz ($(du -h "$dest/gpu_check.tar.gz" | cut -f1))"
rm -rf "$work"
exit $failed
