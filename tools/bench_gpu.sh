#!/usr/bin/env bash
# bench_gpu.sh: the training step, ours against PyTorch, on one GPU: ddim-bench at the seed's
# configuration (batch 64, 64x64, widths 32,64,96,128, block depth 2), then the same network
# and step in PyTorch (tools/torch_reference.py) eager, torch.compile with CUDA graphs (mode
# reduce-overhead) and torch.compile in its default mode, same batch and precision, and a
# comparison table. Then ours again with each of issue 18's parts taken away, one at a time
# (VARIANTS): the graph only from data to all-reduce (partial) or none (off), fusion off, and
# the batch of 8 that each of 8 GPUs gets of 64 (the launch-bound regime) with the graph
# whole, partial and off; optional rows with the experiments DDIM_CUDNN_FUSED_EPILOGUE=1
# (cuDNN's fused residual) and DDIM_CUDNN_NO_TF32=1. Each variant's row says what it bought
# against the default (ours). The table always comes out: each row holds its figures or why
# it has none (its exit status, or the time limit it ran into); every row is bounded in time.
#
#   cmake -S . -B build-gpu -DDDIM_CUDA=ON && cmake --build build-gpu -j   (docs/gpu.md)
#   tools/bench_gpu.sh
#
# Environment: BUILD (build-gpu), PYTHON (/opt/torch/.venv/bin/python3 where it exists, else
# python3), BATCH, IMAGE_SIZE, WIDTHS, BLOCK_DEPTH, WARMUP, STEPS (the seed's configuration,
# 10 and 50), BACKEND (cuda; cpu to try the script without a GPU), time limits in seconds:
# LIMIT_OURS (120), LIMIT_EAGER (180), LIMIT_COMPILE (240 each compile row), LIMIT_VARIANT
# (60 each), BUDGET_S (all rows together: a row gets at most what is left of it; unset, no
# bound). VARIANTS: which variant rows, in order (default: partial nograph nofuse b8 b8_partial
# b8_nograph cudnn_fused; '' none); COMPILE_DEFAULT=0 leaves out the torch.compile default row
# (seen compiling for more than 100 s). Convolutions may
# use TF32 on both sides (cuDNN's default, torch's --tf32); DDIM_CUDNN_NO_TF32=1 turns TF32
# off on both. Raw output goes to $OUT/bench when OUT is set, else to runs/bench-<time>.
# Exit status: 0 when the table came out, whatever its rows say (the targets are reported,
# not asserted); the rows' statuses are in bench/status.txt.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

BUILD=${BUILD:-build-gpu}
if [[ -z "${PYTHON:-}" ]]; then
    PYTHON=python3
    [[ -x /opt/torch/.venv/bin/python3 ]] && PYTHON=/opt/torch/.venv/bin/python3
fi
backend=${BACKEND:-cuda}
device=cuda
[[ $backend == cpu ]] && device=cpu
config=(--batch "${BATCH:-64}" --image-size "${IMAGE_SIZE:-64}" --widths "${WIDTHS:-32,64,96,128}"
    --block-depth "${BLOCK_DEPTH:-2}" --warmup "${WARMUP:-10}" --steps "${STEPS:-50}")
if [[ -n "${OUT:-}" ]]; then
    dest="$OUT/bench"
else
    dest="runs/bench-$(date +%Y%m%d-%H%M%S)"
fi
mkdir -p "$dest" || exit 1
tf32=--tf32
if [[ -n "${DDIM_CUDNN_NO_TF32:-}" && "${DDIM_CUDNN_NO_TF32}" != 0 ]]; then
    tf32=--no-tf32
fi

if rev=$(git rev-parse --short HEAD 2>/dev/null); then
    git diff --quiet HEAD 2>/dev/null || rev="$rev (with local changes)"
else
    rev=unknown
fi
summary="$dest/summary.txt"
{
    echo "bench_gpu.sh $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(hostname)"
    echo "git: $rev"
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader 2>/dev/null || echo "gpu: none visible (nvidia-smi)"
    echo "config: ${config[*]} $tf32; python: $PYTHON"
} | tee "$summary"

# row NAME LIMIT COMMAND...: runs one row under `timeout` (output into $dest/NAME.log) and
# appends "NAME STATUS LIMIT SECONDS" to $dest/status.txt for the table (STATUS -1: not run,
# the budget was spent).
: >"$dest/status.txt"
budget_end=$((SECONDS + ${BUDGET_S:-1000000}))
row() {
    local name=$1 limit=$2 t0=$SECONDS rc left=$((budget_end - SECONDS - 20))
    shift 2
    ((left < limit)) && limit=$left
    if ((limit < 5)); then
        echo "== $name: not run, the time budget is spent"
        echo "$name -1 0 0" >>"$dest/status.txt"
        return
    fi
    echo "== $name (at most $limit s): $*"
    PYTHONUNBUFFERED=1 timeout -k 10 "$limit" "$@" >"$dest/$name.log" 2>&1
    rc=$?
    echo "$name $rc $limit $((SECONDS - t0))" >>"$dest/status.txt"
    grep '^{' "$dest/$name.log" | tail -n 1
    ((rc == 0)) || { echo "   exit status $rc; the log's end:" && tail -n 5 "$dest/$name.log"; }
}

ours=("$BUILD/ddim-bench" --backend "$backend" "${config[@]}" --json)
row ours "${LIMIT_OURS:-120}" "${ours[@]}" --csv "$dest/ddim_bench_steps.csv"
torch=("$PYTHON" tools/torch_reference.py --device "$device" "${config[@]}" "$tf32")
row torch_eager "${LIMIT_EAGER:-180}" "${torch[@]}" --mode eager
row torch_compile_cudagraphs "${LIMIT_COMPILE:-240}" "${torch[@]}" --mode compile \
    --compile-mode reduce-overhead

# the variants: ours with one part taken away (the later options win over ${config[@]}'s)
variants=${VARIANTS-partial nograph nofuse b8 b8_partial b8_nograph cudnn_fused}
for v in $variants; do
    case $v in
    partial) args=(--cuda-graph partial) ;;
    nograph) args=(--cuda-graph off) ;;
    nofuse) args=(--fuse off) ;;
    b8) args=(--batch 8) ;;
    b8_partial) args=(--batch 8 --cuda-graph partial) ;;
    b8_nograph) args=(--batch 8 --cuda-graph off) ;;
    cudnn_fused) args=(env DDIM_CUDNN_FUSED_EPILOGUE=1) ;;
    no_tf32) args=(env DDIM_CUDNN_NO_TF32=1) ;;
    *) echo "bench_gpu.sh: unknown variant '$v'" && continue ;;
    esac
    if [[ ${args[0]} == env ]]; then
        row "ours_$v" "${LIMIT_VARIANT:-60}" "${args[@]}" "${ours[@]}" --op-steps 0
    else
        row "ours_$v" "${LIMIT_VARIANT:-60}" "${ours[@]}" "${args[@]}" --op-steps 0
    fi
done
[[ ${COMPILE_DEFAULT:-1} == 0 ]] ||
    row torch_compile "${LIMIT_COMPILE:-240}" "${torch[@]}" --mode compile --compile-mode default
echo "$variants" >"$dest/variants.txt"

python3 - "$dest" <<'EOF' | tee -a "$summary"
import json, signal, sys

dest = sys.argv[1]

def last_json(path):
    try:
        lines = [l for l in open(path) if l.startswith("{")]
        return json.loads(lines[-1]) if lines else None
    except (OSError, ValueError):
        return None

def reason(rc, limit, log):
    """Why a row has no figures: its time limit, its signal or exit status, its last line."""
    if rc == -1:
        return "not run: the time budget (BUDGET_S) was spent"
    if rc in (124, 137):
        return f"timed out: still running after its limit of {limit} s"
    try:
        tail = [l.strip() for l in open(log) if l.strip()][-1][:90]
    except (OSError, IndexError):
        tail = "no output"
    if rc > 128:
        try:
            name = signal.Signals(rc - 128).name
        except ValueError:
            name = f"signal {rc - 128}"
        return f"killed by {name} (exit status {rc}): {tail}"
    if rc == 0:
        return f"exit 0 but no result line: {tail}"
    if rc == -2:
        return "not run"
    return f"exit status {rc}: {tail}"

status = {}
for line in open(f"{dest}/status.txt"):
    name, rc, limit, secs = line.split()
    status[name] = (int(rc), int(limit), int(secs))
labels = [("ours", "ddim-bench (ours)"), ("torch_eager", "torch eager"),
          ("torch_compile", "torch.compile default"),
          ("torch_compile_cudagraphs", "torch.compile CUDA graphs")]
results = {}
for name, _ in labels:
    rc, limit, _ = status.get(name, (-2, 0, 0))
    r = last_json(f"{dest}/{name}.log") if rc == 0 else None
    results[name] = r if r is not None else reason(rc, limit, f"{dest}/{name}.log")
ours = results["ours"] if isinstance(results["ours"], dict) else None
mib = lambda b: f"{b / 2**20:.1f} MiB" if b else "unknown"
print()
print(f"{'':27} {'step ms':>9} {'images/s':>9} {'ours faster by':>15} {'peak memory':>13} {'run s':>6}")
for name, label in labels:
    r, secs = results[name], status.get(name, (0, 0, 0))[2]
    if not isinstance(r, dict):
        print(f"{label:27} no figures: {r}")
        continue
    speed = f"{r['step_ms_median'] / ours['step_ms_median']:14.2f}x" if ours else f"{'-':>15}"
    print(f"{label:27} {r['step_ms_median']:9.3f} {r['images_per_s']:9.1f} {speed} "
          f"{mib(r['peak_mem_bytes']):>13} {secs:6d}")
print()
if ours:
    p = ours["phases_ms_median"]
    print("ours by phase (median ms): " + ", ".join(f"{k} {v:.3f}" for k, v in p.items()))
    print(f"ours: {ours['conv_gflop_per_step']:.2f} GFLOP of convolutions per step, "
          f"{ours['tflops']:.2f} TFLOP/s")
def verdict(ok):
    return "met" if ok else "NOT met"
for name, target, ok in (("torch_eager", "step >= 2x faster than torch eager", lambda s: s >= 2),
                         ("torch_compile", "step faster than torch.compile", lambda s: s > 1),
                         ("torch_compile_cudagraphs", "step faster than torch.compile with "
                          "CUDA graphs", lambda s: s > 1)):
    r = results[name]
    if ours and isinstance(r, dict):
        s = r["step_ms_median"] / ours["step_ms_median"]
        print(f"target: {target}: {s:.2f}x, {verdict(ok(s))}")
        if ours["peak_mem_bytes"] and r["peak_mem_bytes"]:
            ratio = ours["peak_mem_bytes"] / r["peak_mem_bytes"]
            print(f"        peak memory {ratio:.2f} of {name}'s, {verdict(ratio < 1)}")
print("(torch: max_memory_allocated over the timed steps; ours: the backend's device "
      "allocations at their peak)")

# the variants: what each part of issue 18 buys, against the default row
what = {"partial": "graph data..all-reduce only (draw, AdamW, EMA op by op)",
        "nograph": "no CUDA graph (op by op)", "nofuse": "no fusion (every node apart)",
        "b8": "batch 8 (an 8-GPU share of 64), all on",
        "b8_partial": "batch 8, graph data..all-reduce only", "b8_nograph": "batch 8, no graph",
        "cudnn_fused": "experiment: cuDNN's fused residual epilogue",
        "no_tf32": "convolutions without TF32"}
try:
    names = open(f"{dest}/variants.txt").read().split()
except OSError:
    names = []
if names:
    print()
    print(f"{'ours, one part away':27} {'step ms':>9} {'images/s':>9} {'vs ours':>9} "
          f"{'peak memory':>13}  what")
for v in names:
    name = "ours_" + v
    rc, limit, _ = status.get(name, (-2, 0, 0))
    r = last_json(f"{dest}/{name}.log") if rc == 0 else None
    if r is None:
        print(f"{v:27} no figures: {reason(rc, limit, f'{dest}/{name}.log')}")
        continue
    base = ours if ours and r.get("batch") == ours.get("batch") else None
    if v.startswith("b8") and v != "b8":
        b8 = last_json(f"{dest}/ours_b8.log")
        base = b8 if b8 and b8.get("batch") == r.get("batch") else None
    vs = f"{r['step_ms_median'] / base['step_ms_median']:8.2f}x" if base else f"{'-':>9}"
    print(f"{v:27} {r['step_ms_median']:9.3f} {r['images_per_s']:9.1f} {vs} "
          f"{mib(r['peak_mem_bytes']):>13}  {what.get(v, '')}")
if names:
    print("(vs ours: this row's step time over the default's at the same batch; above 1: the "
          "part taken away bought that much)")
EOF
echo "bench_gpu.sh: raw output in $dest"
