# shellcheck shell=bash
# cluster_cases.sh: the cases of tests/slurm/run_cluster_test.sh (sourced by it, which says
# what each case checks and sets up the cluster, $nodes, $dist, $tmp and the helpers).

# the jobs' time limit: far from --signal=B:USR1@300 (a 5-minute job gets its warning at once)
job_time=--time=00:30:00

# the step of a checkpoint (empty when it cannot be read)
ckpt_step() { h5dump -a global_step "$1" 2>/dev/null | awk '/\(0\):/ { print $2 }'; }

# mpirun_nodes NODES OUT ARGS...: mpirun on the first node of NODES (a host list such as
# qkz1:2,qkz2:2) with sim_nodes.sh's rsh agent, then ARGS (more mpirun options, the program
# and its arguments); the output into OUT
# (a subshell that becomes mpirun: `mpirun_nodes ... &` leaves mpirun's pid in $!)
mpirun_nodes() (
    local hosts=$1 out=$2
    shift 2
    exec "$sim" exec "$cluster" "${hosts%%:*}" "$mpiexec" --allow-run-as-root --host "$hosts" \
        -np "$(($(tr ',' '\n' <<<"$hosts" | cut -d: -f2 | paste -sd+)))" \
        --mca plm_rsh_agent "$sim rsh $cluster" -x OMP_NUM_THREADS -x OMP_WAIT_POLICY \
        "$@" >"$out" 2>&1
)

case_train() {
    local n0=${nodes[0]} n1=${nodes[1]} id result n shm seen=() foreign=()
    write_cfg train 2 8 60
    reference train
    # 1. the user's sbatch line: 4 CPU ranks on 2 nodes
    id=$(DDIM_BIN=$dist DDIM_CONFIG=$tmp/train.yaml DDIM_RUN_DIR=$tmp/run_sbatch \
        submit sbatch $job_time -N 2 --ntasks-per-node=2 --gpus-per-node=0 --cpus-per-task=1)
    [[ -n "$id" ]] || die "sbatch slurm/train.sh was refused"
    # while it trains, each node's own /dev/shm holds Open MPI's shared-memory segments
    # (vader_segment.HOST.*), and only its own
    while [[ $(job_field "$id" JobState) =~ ^(PENDING|RUNNING|CONFIGURING)$ ]]; do
        for n in "$n0" "$n1"; do
            shm=$("$sim" exec "$cluster" "$n" ls /dev/shm 2>/dev/null | grep '^vader_segment\.')
            grep -q "^vader_segment\.$n\." <<<"$shm" && [[ " ${seen[*]} " != *" $n "* ]] &&
                seen+=("$n")
            [[ -n "$shm" ]] && grep -qv "^vader_segment\.$n\." <<<"$shm" &&
                [[ " ${foreign[*]} " != *" $n "* ]] && foreign+=("$n")
        done
        sleep 0.3
    done
    result=$(wait_job "$id" 180)
    if [[ "$result" == "COMPLETED 0:0" ]]; then ok "sbatch job $id: $result"; else
        fail "sbatch job $id: $result (expected COMPLETED 0:0)"
        show_output "$tmp/sbatch.out"
    fi
    grep -q "job $id: 4 rank(s) on 2 node(s)" "$tmp/sbatch.out" ||
        fail "train.sh did not start 4 ranks on 2 nodes"
    placement "$tmp/sbatch.out" "$n0" "$n1"
    if ((${#seen[@]} == 2 && ${#foreign[@]} == 0)); then
        ok "each of ${seen[*]} has its own shared-memory segments in its own /dev/shm"
    else
        fail "Open MPI's shared-memory segments: own seen on '${seen[*]}', another" \
            "node's seen on '${foreign[*]}'"
    fi
    same_weights "sbatch, 4 ranks on 2 nodes, against 1 rank" "$tmp/run_sbatch" "$tmp/ref_train" \
        "$TOL_RANKS"

    # 2. mpirun across the namespaces
    if mpirun_nodes "$n0:2,$n1:2" "$tmp/mpirun.out" "$dist" --config "$tmp/train.yaml" \
        --run-dir "$tmp/run_mpirun"; then
        ok "mpirun --host $n0:2,$n1:2: exit 0"
    else
        fail "mpirun --host $n0:2,$n1:2 failed"
        show_output "$tmp/mpirun.out"
    fi
    placement "$tmp/mpirun.out" "$n0" "$n1"
    same_weights "mpirun, 4 ranks on 2 nodes, against 1 rank" "$tmp/run_mpirun" "$tmp/ref_train" \
        "$TOL_RANKS"

    # 3. the stand-in GPUs: every rank sees its node's two, with the local rank that picks one
    : >"$tmp/release"
    id=$(DDIM_BIN=$here/stub_rank.sh DDIM_CONFIG=$tmp/train.yaml STUB_RELEASE=$tmp/release \
        submit gpus $job_time -N 2 --ntasks-per-node=2 --gpus-per-node=2 --cpus-per-task=1)
    result=$(wait_job "$id" 60)
    [[ "$result" == "COMPLETED 0:0" ]] || fail "stub job $id: $result (expected COMPLETED 0:0)"
    local r want
    for r in 0 1 2 3; do
        n=$((r < 2 ? 0 : 1))
        want="stub rank $r on host ${nodes[n]}: local $((r % 2)) cvd=0,1"
        grep -qxF "$want" "$tmp/gpus.out" || fail "no line '$want' in $tmp/gpus.out"
    done
    ((failures)) || ok "GPUs: ranks 0, 1 on $n0 and 2, 3 on $n1, each local 0 and 1 seeing GPUs 0,1"
}

case_lost() {
    local victim=${nodes[2]} id out=$tmp/lost.out lost_at left step bound
    write_cfg lost 3 12 5 # 13 steps per epoch; 12 images: 6 ranks, then 4
    reference lost
    id=$(DDIM_BIN=$dist DDIM_CONFIG=$tmp/lost.yaml DDIM_RUN_DIR=$tmp/run_lost \
        submit lost $job_time --requeue -N 2-3 --exclusive --gpus-per-node=2 --cpus-per-task=1)
    [[ -n "$id" ]] || die "sbatch --requeue -N 2-3 was refused"
    wait_line "$out" "job $id: 6 rank\(s\) on 3 node" 60 || die "the job did not start on 3 nodes"
    wait_line "$out" '^epoch 2/3 +step' 120 || die "the job did not reach epoch 2"
    "$sim" link "$cluster" "$victim" down
    lost_at=$SECONDS
    bound=$((5 + LOST_MARGIN_S))
    echo "note: $victim's link set down at step $(tail -n 1 "$tmp/run_lost/metrics.jsonl" |
        jq -r .step 2>/dev/null) (bound: ${bound} s)"
    # every rank ends: those left, and those behind the broken link
    while (($(ranks_left "${nodes[@]}") > 0 && SECONDS - lost_at <= bound)); do sleep 0.5; done
    left=$(ranks_left "${nodes[@]}")
    if ((left == 0)); then ok "every rank ended $((SECONDS - lost_at)) s after the loss"; else
        fail "$left rank(s) still ran ${bound} s after the loss"
    fi
    grep -qE "rank\(s\) 4, 5 did not arrive at .* within 5 s \(run.collective_timeout_s\): node $victim lost \(none of its ranks arrived: ranks 4, 5\)" "$out" ||
        fail "no message naming node $victim and its ranks 4, 5"
    wait_line "$out" 'ddim-dist exited with status 75' 30 || fail "train.sh did not report status 75"
    step=$(ckpt_step "$tmp/run_lost/checkpoint.h5")
    [[ "$step" == 13 ]] || fail "the checkpoint after the loss is '$step', expected step 13"
    wait_line "$out" "job $id \(restart 1\): 4 rank\(s\) on 2 node" 150 ||
        die "the job was not requeued onto 2 nodes: $(squeue -h -j "$id" -o '%T %r')"
    ok "requeued: $(grep -o "job $id (restart 1): .*node(s) \[[^]]*\]" "$out")"
    local result
    result=$(wait_job "$id" 150)
    [[ "$result" == "COMPLETED 0:0" ]] || fail "job $id after its requeue: $result"
    same_weights "lost a node, resumed on 4 ranks, against 1 rank" "$tmp/run_lost" \
        "$tmp/ref_lost" "$TOL_RANKS"
    in_order "$out" "job $id: 6 rank\(s\) on 3 node" "node $victim lost" \
        'ddim-dist exited with status 75' 'waiting up to' 'CANCELLED .*NODE FAIL' \
        "job $id \(restart 1\): 4 rank\(s\) on 2 node" \
        'resuming from .* \(step 13 in all\)' 'ddim-dist: finished' 'exited with status 0'
}

case_preempt() {
    local id out=$tmp/pre.out result stop
    write_cfg pre 3 8 60
    # the same run, uninterrupted, on the same 4 ranks
    id=$(DDIM_BIN=$dist DDIM_CONFIG=$tmp/pre.yaml DDIM_RUN_DIR=$tmp/ref_pre \
        submit pre_ref $job_time -N 2 --ntasks-per-node=2 --gpus-per-node=0 --cpus-per-task=1)
    result=$(wait_job "$id" 180)
    [[ "$result" == "COMPLETED 0:0" ]] || die "the uninterrupted job: $result"
    id=$(DDIM_BIN=$dist DDIM_CONFIG=$tmp/pre.yaml DDIM_RUN_DIR=$tmp/run_pre \
        submit pre $job_time --requeue -N 2 --ntasks-per-node=2 --gpus-per-node=0 --cpus-per-task=1)
    wait_line "$out" '^epoch 2/3 +step' 120 || die "the job did not reach epoch 2"
    scontrol requeue "$id" || die "scontrol requeue $id"
    wait_line "$out" 'stopped by signal at step' 60 || fail "the ranks did not stop on the requeue"
    result=$(wait_job "$id" 180)
    [[ "$result" == "COMPLETED 0:0" ]] || fail "job $id after its requeue: $result"
    [[ $(job_field "$id" Restarts) == 1 ]] || fail "job $id restarted $(job_field "$id" Restarts) times"
    stop=$(sed -n 's/.*stopped by signal at step \([0-9]*\); checkpoint written.*/\1/p' "$out")
    [[ $(wc -w <<<"$stop") == 1 ]] || fail "expected one stop with a checkpoint, saw: $stop"
    ((stop % 8 == 0)) || fail "stopped at step $stop, not at a step the ranks agree on (every 8)"
    jq -e -s "[.[] | select(.type == \"stop\")] | length == 1 and .[0].step == $stop" \
        "$tmp/run_pre/metrics.jsonl" >/dev/null || fail "metrics.jsonl lacks one stop line at step $stop"
    in_order "$out" "job $id: 4 rank" "stopped by signal at step $stop; checkpoint written" \
        "job $id \(restart 1\)" "resuming from .* \(step $stop in all\)" 'ddim-dist: finished' \
        'exited with status 0'
    same_weights "preempted at step $stop and resumed, against the uninterrupted job" \
        "$tmp/run_pre" "$tmp/ref_pre" 0
}

# mpirun_lose HOSTS LOST NAME TIMEOUT [mpirun options...]: the endless tiny run NAME
# (collective timeout TIMEOUT s) under mpirun in the background (its pid in $job, its output
# in $tmp/NAME.out); once it trains epoch 2, node LOST's link down ($lost_at: then)
mpirun_lose() {
    local hosts=$1 lost=$2 name=$3
    write_cfg "$name" 1000 8 "$4"
    shift 4
    mpirun_nodes "$hosts" "$tmp/$name.out" "$@" "$dist" --config "$tmp/$name.yaml" &
    job=$!
    wait_line "$tmp/$name.out" '^epoch 2/1000 +step' 120 || {
        kill -KILL "$job"
        die "the run $name did not reach epoch 2"
    }
    "$sim" link "$cluster" "$lost" down
    lost_at=$SECONDS
}

case_mpirun_lost() {
    local n0=${nodes[0]} n1=${nodes[1]} n2=${nodes[2]} job lost_at rc left t_mpirun="" bound
    # mpirun's own watch on its daemons, as docs/slurm.md advises: it notices a lost node
    # within 4 + 3 x 1 s of silence, well before run.collective_timeout_s (12 s)
    mpirun_lose "$n0:2,$n1:2" "$n1" mlost 12 --mca oob_tcp_keepalive_time 4 \
        --mca oob_tcp_keepalive_intvl 1 --mca oob_tcp_keepalive_probes 3
    bound=$((12 + LOST_MARGIN_S))
    while ((SECONDS - lost_at <= bound)); do
        [[ -z "$t_mpirun" ]] && ! kill -0 "$job" 2>/dev/null && t_mpirun=$((SECONDS - lost_at))
        [[ -n "$t_mpirun" ]] && (($(ranks_left "$n0" "$n1") == 0)) && break
        sleep 0.5
    done
    left=$(ranks_left "$n0" "$n1")
    if [[ -n "$t_mpirun" ]] && ((left == 0 && t_mpirun <= 20)); then
        ok "mpirun ended ${t_mpirun} s after the loss, every rank by $((SECONDS - lost_at)) s"
    else
        fail "$((SECONDS - lost_at)) s after the loss: mpirun ${t_mpirun:+ended after $t_mpirun s}" \
            "${t_mpirun:-still runs}, $left rank(s) left (bounds: mpirun 20 s, ranks $bound s)"
        kill -KILL "$job" 2>/dev/null
    fi
    wait "$job"
    rc=$?
    # a death by a signal would be 129..192
    ((rc != 0 && (rc < 129 || rc > 192))) || fail "mpirun's exit status $rc"
    grep -qE "Remote daemon: .* on node $n1" "$tmp/mlost.out" &&
        grep -q "ORTE has lost communication with a remote daemon" "$tmp/mlost.out" ||
        fail "mpirun's output does not name the lost node $n1"
    [[ -n "$(ckpt_step "$tmp/run_mlost/checkpoint.h5")" ]] || fail "the checkpoint cannot be read"
    ok "mpirun exited with status $rc: $(grep -o "Remote daemon: .* on node $n1" "$tmp/mlost.out")"

    # without that advice (Open MPI's keepalive: 300 + 9 x 20 s) the collective timeout (4 s)
    # comes first: the ranks name the node and end by themselves within the bound; mpirun
    # itself, its abort stuck on the lost daemon, waits for TCP to give up (minutes)
    mpirun_lose "$n0:2,$n2:2" "$n2" mlost2 4
    bound=$((4 + LOST_MARGIN_S))
    while (($(ranks_left "$n0" "$n2") > 0 && SECONDS - lost_at <= bound)); do sleep 0.5; done
    left=$(ranks_left "$n0" "$n2")
    if ((left == 0)); then ok "every rank ended $((SECONDS - lost_at)) s after the loss"; else
        fail "$left rank(s) still ran $bound s after the loss"
    fi
    grep -qE "rank\(s\) 2, 3 did not arrive at .*: node $n2 lost \(none of its ranks arrived: ranks 2, 3\)" \
        "$tmp/mlost2.out" || fail "no message naming node $n2 and its ranks 2, 3"
    kill -0 "$job" 2>/dev/null && echo "note: mpirun still runs (as expected without the keepalive)"
    kill -KILL "$job" 2>/dev/null
    wait "$job" 2>/dev/null
}
