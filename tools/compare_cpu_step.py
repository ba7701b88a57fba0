#!/usr/bin/env python3
"""Times the Keras example's own training step and ddim-dist's CPU step in one run.

Both sides train the seed's network (batch 64, 64x64, widths 32,64,96,128, block depth 2,
unless told otherwise) on random images, on this machine's CPU, one after the other in
rounds (interleaved, so that a change of the machine's load hits both alike):

- Keras: the example's DiffusionModel (tools/keras_ddim_model.py, the network with stable
  layer names) with the example's own train_step (noises and times drawn inside it),
  compiled as the example compiles it (AdamW 1e-3, weight decay 1e-4, mean absolute
  error), each step one call of Keras's train function (Model.make_train_function, what
  Model.fit calls per step), in one Python process that stays up across the rounds.
  TensorFlow's defaults: oneDNN on, all cores, no determinism switch (TF_DETERMINISTIC_OPS
  unset, as the example runs).
- ours: `ddim-bench --backend cpu` started once per round (its untimed set-up and warm-up
  step first); its whole-step times (data, forward, backward, all-reduce, AdamW + EMA).

Peak memory is each process's peak resident set (getrusage of the child: the same figure
as /usr/bin/time's "Maximum resident set size"), TensorFlow's runtime included.
Prints every round's times, then the medians, their ratio (ours / Keras: below 1 is
faster) and both peaks. A few minutes on two cores (the seed's size).

usage: python tools/compare_cpu_step.py [--bench build/ddim-bench] [--rounds 4]
       [--steps 2] [--batch 64 --image-size 64 --widths 32,64,96,128 --block-depth 2]
Needs TensorFlow 2.21 and tf_keras (tools/requirements-reference.txt).
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


# --------------------------------------------------------------------------
# the Keras side, in its own process (--keras-worker)
# --------------------------------------------------------------------------

def keras_worker(args):
    """Builds the example's model, then answers 'run N' with N step times (ms, JSON) on
    stdout and 'quit' with its peak resident set; everything else goes to stderr."""
    os.environ.setdefault("TF_DETERMINISTIC_OPS", "0")  # as the example runs
    sys.path.insert(0, HERE)
    import numpy as np
    import keras_ddim_model as kdm
    tf, keras = kdm.tf, kdm.keras
    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    size, batch = args.image_size, args.batch
    widths = [int(w) for w in args.widths.split(",")]

    class ExampleModel(kdm.DiffusionModel):
        def train_step(self, images):
            # the example's train_step: its noises and times drawn here
            noises = tf.random.normal(shape=(batch, size, size, 3))
            times = tf.random.uniform(shape=(batch, 1, 1, 1), minval=0.0, maxval=1.0)
            out = self.train_step_given(images, noises, times)
            return {"n_loss": out["noise_loss"], "i_loss": out["image_loss"]}

    model = ExampleModel(size, widths, args.block_depth, args.embedding_dims)
    model.compile(optimizer=keras.optimizers.AdamW(learning_rate=1e-3, weight_decay=1e-4),
                  loss=keras.losses.mean_absolute_error)
    images = np.random.RandomState(0).uniform(0, 1, (batch, size, size, 3)).astype(np.float32)
    model.normalizer.adapt(images)
    iterator = iter(tf.data.Dataset.from_tensors(images).repeat())
    train_function = model.make_train_function()
    t0 = time.perf_counter()
    for _ in range(2):  # the first call traces the step; the second warms it
        float(train_function(iterator)["n_loss"])
    print("ready %.1f" % (time.perf_counter() - t0), flush=True)
    for line in sys.stdin:
        words = line.split()
        if words[:1] == ["run"]:
            times = []
            for _ in range(int(words[1])):
                t, c = time.perf_counter(), time.process_time()
                float(train_function(iterator)["n_loss"])  # waits for the step's end
                times.append([(time.perf_counter() - t) * 1e3, (time.process_time() - c) * 1e3])
            print(json.dumps(times), flush=True)
        elif words[:1] == ["quit"]:
            break
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"maxrss_kib": rss, "tensorflow": tf.__version__}), flush=True)


# --------------------------------------------------------------------------
# the driver
# --------------------------------------------------------------------------

def cpu_busy_jiffies():
    """All CPUs' busy time so far (/proc/stat), to say how loaded the machine was."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + (v[4] if len(v) > 4 else 0)
    return sum(v[:8]) - idle


def machine_line():
    model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return "%s, %d CPUs" % (model, os.cpu_count() or 0)


def run_ours(args, tmp, round_no):
    """One ddim-bench process: its whole-step times (ms), CPU time per step (ms, all
    threads) and peak resident set (KiB)."""
    csv = os.path.join(tmp, "bench%d.csv" % round_no)
    cmd = [args.bench, "--backend", "cpu", "--batch", str(args.batch), "--image-size",
           str(args.image_size), "--widths", args.widths, "--block-depth",
           str(args.block_depth), "--warmup", "1", "--steps", str(args.steps),
           "--op-steps", "0", "--csv", csv, "--json"]
    env = dict(os.environ)
    if args.threads:
        env["OMP_NUM_THREADS"] = str(args.threads)
    log = open(os.path.join(tmp, "bench%d.log" % round_no), "w")
    p = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    _, status, ru = os.wait4(p.pid, 0)
    log.close()
    if status != 0:
        sys.exit("compare_cpu_step: %s failed (status %d); see %s" % (" ".join(cmd), status,
                                                                     log.name))
    with open(csv) as f:
        rows = f.read().split("\n")[1:]
    with open(log.name) as f:
        result = json.loads(f.read().strip().split("\n")[-1])
    return ([float(r.split(",")[1]) for r in rows if r], result["host_cpu_ms_per_step"],
            ru.ru_maxrss, cmd)


def start_keras(args, tmp):
    cmd = [sys.executable, os.path.abspath(__file__), "--keras-worker", "--batch",
           str(args.batch), "--image-size", str(args.image_size), "--widths", args.widths,
           "--block-depth", str(args.block_depth), "--embedding-dims",
           str(args.embedding_dims), "--threads", str(args.threads)]
    err = open(os.path.join(tmp, "keras.log"), "w")
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err,
                         text=True)
    line = p.stdout.readline()
    if not line.startswith("ready"):
        p.kill()
        sys.exit("compare_cpu_step: the Keras worker did not start; see %s" % err.name)
    return p, float(line.split()[1])


def keras_steps(p, n):
    p.stdin.write("run %d\n" % n)
    p.stdin.flush()
    return json.loads(p.stdout.readline())


def summary(name, times, cpu, rss_kib):
    return "%-36s %9.1f %9.1f %9.1f %6d %9.1f %9.0f" % (
        name, statistics.median(times), min(times), max(times), len(times),
        statistics.median(cpu), rss_kib / 1024)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bench", default="build/ddim-bench", help="ddim-bench to time")
    ap.add_argument("--rounds", type=int, default=4, help="rounds of Keras then ours (4)")
    ap.add_argument("--steps", type=int, default=2, help="timed steps per side per round (2)")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--image-size", type=int, default=64)
    ap.add_argument("--widths", default="32,64,96,128")
    ap.add_argument("--block-depth", type=int, default=2)
    ap.add_argument("--embedding-dims", type=int, default=32)
    ap.add_argument("--threads", type=int, default=0,
                    help="threads of each side (OpenMP; TensorFlow's intra- and inter-op "
                    "pools); default 0: each side's default, all cores")
    ap.add_argument("--keras-worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.keras_worker:
        return keras_worker(args)
    if not os.access(args.bench, os.X_OK):
        sys.exit("compare_cpu_step: %s not found: build it first (tools/setup.sh)" % args.bench)

    print("compare_cpu_step: the training step, Keras example vs ddim-bench, on this CPU")
    print("  machine   %s; load average at start %.2f" % (machine_line(), os.getloadavg()[0]))
    print("  network   batch %d, %dx%d, widths %s, block depth %d; threads: %s" % (
        args.batch, args.image_size, args.image_size, args.widths, args.block_depth,
        args.threads or "each side's default (all cores)"))
    print("  plan      %d rounds; each: %d Keras steps, then one ddim-bench process "
          "(set-up and a warm-up step, then %d timed)" % (args.rounds, args.steps, args.steps))
    tmp = tempfile.mkdtemp(prefix="compare_cpu_step.")
    wall0, busy0, ru0 = time.time(), cpu_busy_jiffies(), resource.getrusage(
        resource.RUSAGE_CHILDREN)
    keras, trace_s = start_keras(args, tmp)
    print("  Keras     model built, step traced and warmed in %.1f s" % trace_s)
    k_times, k_cpu, o_times, o_cpu, o_rss, cmd = [], [], [], [], 0, None
    for r in range(args.rounds):
        k = keras_steps(keras, args.steps)
        o, cpu, rss, cmd = run_ours(args, tmp, r)
        k_times += [t[0] for t in k]
        k_cpu += [t[1] for t in k]
        o_times += o
        o_cpu.append(cpu)
        o_rss = max(o_rss, rss)
        print("  round %d   Keras %s ms   ours %s ms" % (
            r + 1, " ".join("%.0f" % t[0] for t in k), " ".join("%.0f" % t for t in o)),
            flush=True)
    keras.stdin.write("quit\n")
    keras.stdin.flush()
    info = json.loads(keras.stdout.readline())
    _, _, k_ru = os.wait4(keras.pid, 0)
    k_rss = max(info["maxrss_kib"], k_ru.ru_maxrss)

    wall = time.time() - wall0
    ncpu = os.cpu_count() or 1
    ours_cpu = (resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime - ru0.ru_utime +
                resource.getrusage(resource.RUSAGE_CHILDREN).ru_stime - ru0.ru_stime)
    busy = (cpu_busy_jiffies() - busy0) / os.sysconf("SC_CLK_TCK")
    others = max(0.0, busy - ours_cpu) / (wall * ncpu)
    print()
    print("%-36s %9s %9s %9s %6s %9s %9s" % ("ms per training step (wall)", "median", "min",
                                              "max", "steps", "CPU ms", "peak MiB"))
    print(summary("Keras example (TensorFlow %s)" % info["tensorflow"], k_times, k_cpu, k_rss))
    print(summary("ddim-bench --backend cpu", o_times, o_cpu, o_rss))
    ratio = statistics.median(o_times) / statistics.median(k_times)
    print()
    print("ratio ours / Keras, wall (medians): %.2f  (min/min %.2f); CPU time: %.2f; "
          "peak memory: %.2f" % (ratio, min(o_times) / min(k_times),
                                 statistics.median(o_cpu) / statistics.median(k_cpu),
                                 o_rss / k_rss))
    print("(CPU ms: the process's CPU time per step, all threads; on a busy machine it is "
          "steadier than the wall time, but TensorFlow's idle threads spin for a while and "
          "count, ours sleep: compare CPU times with --threads 1)")
    print("machine state: other processes used %.0f%% of the %d CPUs during the %.0f s run "
          "(load average now %.2f)%s" % (100 * others, ncpu, wall, os.getloadavg()[0],
                                         "" if others < 0.05 else ": LOADED, figures disturbed"))
    print("ours: %s" % " ".join(cmd))
    print("logs: %s" % tmp)


if __name__ == "__main__":
    main()
