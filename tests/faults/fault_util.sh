# fault_util.sh: what the fault tests share (sourced): a temporary folder, failing with the
# output's tail, a tiny synthetic dataset and run configuration, waiting for a condition,
# and the checks that nothing was lost (metrics.jsonl whole, the checkpoint readable).
# Expects $dist and $prep (the ddim-dist and ddim-prep binaries) to be set.

set -m # job control: background jobs get SIGINT (a shell without it has them ignore it)
tmp=$(mktemp -d)
mounts=()
cleanup() {
    local pid
    for pid in $(jobs -p); do kill -KILL "$pid" 2>/dev/null; done # our own jobs, on failure
    for m in "${mounts[@]}"; do umount "$m" 2>/dev/null; done
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP # a test killed (a CTest timeout) still unmounts and cleans up
fail() {
    echo "FAIL: $*"
    [[ -f $tmp/out ]] && tail -20 "$tmp/out"
    exit 1
}
ok() { echo "ok   $*"; }

# make_data NAME COUNT SIZE: $tmp/NAME.h5 with COUNT synthetic images of SIZE px
make_data() {
    "$prep" --synthetic "$2" --size "$3" --output "$tmp/$1.h5" >/dev/null 2>&1 || fail "ddim-prep"
}

# write_cfg FILE RUN_DIR [YAML lines...]: the tiny run (16 px, widths 8,16, batch 8; 38
# training images: 4 steps per epoch per repetition), practically endless; later lines
# override whole sections
write_cfg() {
    local file=$1 run=$2
    shift 2
    {
        echo "data: {path: \"$tmp/data.h5\", dataset_repetitions: 1}"
        echo "model: {image_size: 16, widths: [8, 16], block_depth: 1, embedding_dims: 8}"
        echo "train: {num_epochs: 100000, batch_size: 8}"
        echo "eval: {plot_diffusion_steps: 2, plot_rows: 1, plot_cols: 2}"
        echo "run: {dir: \"$run\", backend: cpu, progress_seconds: 0}"
        printf '%s\n' "$@"
    } | awk -F: '{ key[$1] = $0; if (!($1 in seen)) { order[n++] = $1; seen[$1] = 1 } }
                 END { for (i = 0; i < n; i++) print key[order[i]] }' >"$file"
}

# trained_run: a one-epoch run on $tmp/data.h5 (48 images, 16 px) into $tmp/run
# (checkpoint.h5 and its sample grid) and $tmp/ema.h5, its EMA export (needs $sample, the
# ddim-sample binary)
trained_run() {
    make_data data 48 16
    write_cfg "$tmp/cfg.yaml" "$tmp/run" "train: {num_epochs: 1, batch_size: 8}"
    "$dist" --config "$tmp/cfg.yaml" >"$tmp/out" 2>&1 || fail "the first run failed"
    "$sample" --checkpoint "$tmp/run/checkpoint.h5" --export "$tmp/ema.h5" >"$tmp/out" 2>&1 ||
        fail "the export failed"
}

# wait_until SECONDS COMMAND...: polls every 0.1 s; 1 if it never held
wait_until() {
    local limit=$1
    shift
    local end=$((SECONDS + limit))
    while ((SECONDS < end)); do
        "$@" && return 0
        sleep 0.1
    done
    "$@"
}

# wait_exit PID SECONDS: waits for a background job; its status in $rc (KILLs it and fails
# after SECONDS)
wait_exit() {
    local pid=$1 limit=$2
    wait_until "$limit" bash -c "! kill -0 $pid 2>/dev/null" ||
        { kill -KILL "$pid"; fail "ddim-dist still ran $limit s later"; }
    wait "$pid"
    rc=$?
}

# expect_status RC WANT: WANT is a number, or "nonzero" (any failure that is not a signal)
expect_status() {
    local got=$1 want=$2
    if [[ $want == nonzero ]]; then
        ((got != 0 && got < 128)) || fail "exit status $got, expected a failure (1..127, not a signal)"
    else
        ((got == want)) || fail "exit status $got, expected $want"
    fi
}

# expect_out PATTERN WHAT: the output ($tmp/out) matches the extended regular expression
expect_out() {
    grep -Eq -- "$1" "$tmp/out" || fail "no message matching '$1' ($2)"
}

# check_metrics FILE: every line one whole JSON object, the last one ended
check_metrics() {
    local f=$1
    [[ -s $f ]] || fail "$f is empty or missing"
    [[ $(tail -c1 "$f" | od -An -c | tr -d ' ') == '\n' ]] || fail "$f ends in a cut-off line"
    local lines objects
    lines=$(wc -l <"$f")
    objects=$(jq -c . "$f" 2>/dev/null | wc -l) || true
    jq -e . "$f" >/dev/null 2>&1 || fail "$f holds a line that is not JSON"
    ((lines == objects)) || fail "$f: $lines lines but $objects JSON objects"
}

# check_steps FILE LAST: step lines 1..LAST, each once
check_steps() {
    local got
    got=$(jq -r 'select(.type == "step") | .step' "$1" | tr '\n' ' ')
    [[ $got == "$(seq -s ' ' 1 "$2") " ]] || fail "$1: step lines '$got', expected 1..$2 once each"
}

# metrics_has FILE CONDITION: some line of FILE meets the jq CONDITION
metrics_has() {
    jq -e -s "any(.[]; $2)" "$1" >/dev/null 2>&1
}

# checkpoint_step FILE: the checkpoint's global_step (fails if it cannot be read)
checkpoint_step() {
    h5dump -a global_step "$1" 2>/dev/null | awk '/\(0\):/ { print $2 }' | grep -E '^[0-9]+$' ||
        fail "$1 cannot be read as a checkpoint"
}

# no_leftovers DIR: no temporary or empty files under DIR
no_leftovers() {
    local bad
    bad=$(find "$1" -name '*.tmp' -o -type f -empty ! -name lock | head -3)
    [[ -z $bad ]] || fail "left behind: $bad"
}

# mount_tmpfs DIR SIZE: a small file system of its own (root only; else the test is skipped)
mount_tmpfs() {
    mkdir -p "$1"
    if ! mount -t tmpfs -o "size=$2" tmpfs "$1" 2>/dev/null; then
        echo "SKIP: cannot mount a tmpfs (needs root): the disk-full test is not run"
        exit 77
    fi
    mounts+=("$1")
}
