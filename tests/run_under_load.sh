#!/usr/bin/env bash
# The suite on a busy machine: starts CPU-burning processes (two by default), runs the README's
# test command (`python -m pytest -q -n 2 --dist loadfile`) three times in a row, stops the burners (also on Ctrl+C or an error), and prints
# each run's pytest summary line, duration and exit code. Exit code 0 only if every run passed.
#
#   tests/run_under_load.sh                                   # the whole suite, 3 runs, 2 burners
#   PYTEST_ARGS="tests/test_startup.py" RUNS=1 tests/run_under_load.sh    # a subset, once
#
# PYTEST_ARGS: extra arguments appended to that command (a subset, -x, -k ...).
# RUNS, BURNERS: how many runs and how many burners. SKIP_INSTALL=1 leaves out the pip step.
set -uo pipefail
cd "$(dirname "$0")/.."

runs=${RUNS:-3}
burners=${BURNERS:-2}
log_dir=$(mktemp -d "${TMPDIR:-/tmp}/dpo-studio-load.XXXXXX")
burner_pids=()
run_pid=""

# Job control: each background job is its own process group, so a stop reaches pytest's
# children too (kill -- -PGID), never a process this script did not start.
set -m

stop_burners() {
    for pid in "${burner_pids[@]}" $run_pid; do
        kill -- "-$pid" 2>/dev/null
    done
    for pid in "${burner_pids[@]}" $run_pid; do
        wait "$pid" 2>/dev/null
    done
    burner_pids=()
    run_pid=""
}
trap stop_burners EXIT
trap 'exit 130' INT TERM

run_suite() {
    if [ "${SKIP_INSTALL:-0}" = 1 ]; then
        # shellcheck disable=SC2086  # PYTEST_ARGS is a list of arguments
        python -m pytest -q -n 2 --dist loadfile ${PYTEST_ARGS:-}
    else
        # shellcheck disable=SC2086
        pip install -e ".[test]" && python -m pytest -q -n 2 --dist loadfile ${PYTEST_ARGS:-}
    fi
}

for _ in $(seq "$burners"); do
    sh -c 'while :; do :; done' &
    burner_pids+=("$!")
done
echo "load: ${burners} CPU burners (pids ${burner_pids[*]}) on $(nproc) CPUs; logs in ${log_dir}"

summaries=()
failed=0
for run in $(seq "$runs"); do
    log="${log_dir}/run-${run}.log"
    started=$(date +%s)
    # In the background, waited for: a signal to this script then stops the run at once.
    run_suite >"$log" 2>&1 &
    run_pid=$!
    wait "$run_pid"
    code=$?
    run_pid=""
    seconds=$(( $(date +%s) - started ))
    summary=$(grep -E '^=*.*( passed| failed| errors?| deselected| no tests ran).* in [0-9.]+s' "$log" | tail -1 | sed -E 's/^=+ //; s/ =+$//')
    [ -n "$summary" ] || summary="(no pytest summary: see $log)"
    [ "$code" = 0 ] || failed=1
    line=$(printf 'run %d: %s | %d s wall (%dm%02ds) | exit %d | load %s' "$run" "$summary" "$seconds" \
        $((seconds / 60)) $((seconds % 60)) "$code" "$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)")
    echo "$line"
    summaries+=("$line")
done
stop_burners

echo "---"
printf '%s\n' "${summaries[@]}"
exit "$failed"
