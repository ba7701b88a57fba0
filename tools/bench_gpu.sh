#!/usr/bin/env bash
# bench_gpu.sh: the one command for the GPU machine, after the CUDA build: ddim-bench at the
# seed's configuration (batch 64, 64x64, widths 32,64,96,128, block depth 2), then the same
# network and step in PyTorch (tools/torch_reference.py) eager and with torch.compile, on
# the same GPU with the same batch and precision, and a comparison table.
#
#   cmake -S . -B build-gpu -DDDIM_CUDA=ON && cmake --build build-gpu -j   (docs/gpu.md)
#   tools/bench_gpu.sh
#
# Environment: BUILD (build-gpu), PYTHON (python3, the one with torch), BATCH, IMAGE_SIZE,
# WIDTHS, BLOCK_DEPTH, WARMUP, STEPS (the seed's configuration, 10 and 50). Convolutions may
# use TF32 on both sides (cuDNN's default, torch's --tf32); DDIM_CUDNN_NO_TF32=1 turns TF32
# off on both. Raw output goes to $OUT/bench when OUT is set, else to runs/bench-<time>.
# The targets are reported, not asserted: the script fails only when ddim-bench fails.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

BUILD=${BUILD:-build-gpu}
PYTHON=${PYTHON:-python3}
config=(--batch "${BATCH:-64}" --image-size "${IMAGE_SIZE:-64}" --widths "${WIDTHS:-32,64,96,128}"
        --block-depth "${BLOCK_DEPTH:-2}" --warmup "${WARMUP:-10}" --steps "${STEPS:-50}")
if [[ -n "${OUT:-}" ]]; then
    dest="$OUT/bench"
else
    dest="runs/bench-$(date +%Y%m%d-%H%M%S)"
fi
mkdir -p "$dest" || exit 1
if [[ ! -x "$BUILD/ddim-bench" ]]; then
    echo "bench_gpu.sh: $BUILD/ddim-bench not found; build it first:" >&2
    echo "  cmake -S . -B $BUILD -DDDIM_CUDA=ON && cmake --build $BUILD -j" >&2
    exit 1
fi
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
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader 2>&1 || true
    echo "config: ${config[*]} $tf32"
} | tee "$summary"

echo "== ddim-bench --backend cuda"
"$BUILD/ddim-bench" --backend cuda "${config[@]}" --json --csv "$dest/ddim_bench_steps.csv" 2>&1 |
    tee "$dest/ddim_bench.txt"
if [[ ${PIPESTATUS[0]} -ne 0 ]]; then
    echo "bench_gpu.sh: ddim-bench failed (output in $dest/ddim_bench.txt)" | tee -a "$summary"
    exit 1
fi

for mode in eager compile; do
    echo "== torch_reference.py --mode $mode"
    PYTHONUNBUFFERED=1 "$PYTHON" tools/torch_reference.py --mode "$mode" --device cuda \
        "${config[@]}" "$tf32" >"$dest/torch_$mode.log" 2>&1
    rc=$?
    grep '^{' "$dest/torch_$mode.log" | tail -n 1
    if [[ $rc -ne 0 ]]; then
        echo "bench_gpu.sh: torch_reference.py --mode $mode failed (rc $rc); its log's end:"
        tail -n 20 "$dest/torch_$mode.log"
    fi
done

"$PYTHON" - "$dest" <<'EOF' | tee -a "$summary"
import json, sys

dest = sys.argv[1]

def last_json(path):
    try:
        lines = [l for l in open(path) if l.startswith("{")]
        return json.loads(lines[-1]) if lines else None
    except (OSError, ValueError):
        return None

ours = last_json(f"{dest}/ddim_bench.txt")
rows = [("ddim-bench (ours)", ours), ("torch eager", last_json(f"{dest}/torch_eager.log")),
        ("torch.compile", last_json(f"{dest}/torch_compile.log"))]
mib = lambda b: f"{b / 2**20:.1f} MiB" if b else "unknown"
print()
print(f"{'':20} {'step ms':>10} {'images/s':>10} {'ours faster by':>15} {'peak memory':>13}")
for name, r in rows:
    if r is None:
        print(f"{name:20} {'failed: see its log in ' + dest}")
        continue
    speed = r["step_ms_median"] / ours["step_ms_median"]
    print(f"{name:20} {r['step_ms_median']:10.3f} {r['images_per_s']:10.1f} {speed:14.2f}x "
          f"{mib(r['peak_mem_bytes']):>13}")
print()
if ours:
    p = ours["phases_ms_median"]
    print("ours by phase (median ms): " + ", ".join(f"{k} {v:.3f}" for k, v in p.items()))
    print(f"ours: {ours['conv_gflop_per_step']:.2f} GFLOP of convolutions per step, "
          f"{ours['tflops']:.2f} TFLOP/s")
eager, comp = rows[1][1], rows[2][1]
def verdict(ok):
    return "met" if ok else "NOT met"
if ours and eager:
    s = eager["step_ms_median"] / ours["step_ms_median"]
    print(f"target: step >= 2x faster than torch eager: {s:.2f}x, {verdict(s >= 2)}")
if ours and comp:
    s = comp["step_ms_median"] / ours["step_ms_median"]
    print(f"target: step faster than torch.compile: {s:.2f}x, {verdict(s > 1)}")
for name, r in (("eager", eager), ("compile", comp)):
    if ours and r and ours["peak_mem_bytes"] and r["peak_mem_bytes"]:
        ratio = ours["peak_mem_bytes"] / r["peak_mem_bytes"]
        print(f"target: peak memory below torch {name}'s: {ratio:.2f} of it, "
              f"{verdict(ratio < 1)}")
print("(torch: max_memory_allocated over the timed steps; ours: the backend's device "
      "allocations at their peak)")
EOF
echo "bench_gpu.sh: raw output in $dest"
