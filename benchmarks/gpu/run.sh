#!/usr/bin/env bash
# The prepared GPU run (benchmarks/gpu/README.md): install the carried wheels, run the core,
# simple-tensor and gunpowder test suites (side by side), then benchmarks/bench_gpu.py; every
# log, JUnit file and result goes under $OUT. From the repository root:
#
#     bash benchmarks/gpu/run.sh               # tests, then the benchmark
#     bash benchmarks/gpu/run.sh tests         # or one stage: tests | bench
#
# The wheels go into SITE with pip install --no-index --no-deps --target; SITE is on
# PYTHONPATH and, through a .pth file in the interpreter's site-packages (removed on exit), on
# the path of every Python of the run, also of test subprocesses that set their own PYTHONPATH.
#
# Environment (defaults in brackets): PYTHON [python3], WHEELS [.whl], SITE [/tmp/site],
# OUT [./gpu-out], TESTS_TIMEOUT [200] seconds per suite, BENCH_BUDGET_S [210] (measuring
# stops after it; the benchmark is killed 90 s later), BENCH_ARGS [] (e.g. --smoke),
# PIP_ARGS [] (e.g. --ignore-requires-python for a dry run on another Python).
# Exits non-zero when a stage failed; later stages run all the same.
set -uo pipefail

PYTHON="${PYTHON:-python3}"
WHEELS="${WHEELS:-.whl}"
SITE="${SITE:-/tmp/site}"
OUT="${OUT:-$PWD/gpu-out}"
TESTS_TIMEOUT="${TESTS_TIMEOUT:-200}"
BENCH_BUDGET_S="${BENCH_BUDGET_S:-210}"
BENCH_ARGS="${BENCH_ARGS:-}"
PIP_ARGS="${PIP_ARGS:-}"
STAGES=("$@")
[ "${#STAGES[@]}" -eq 0 ] && STAGES=(tests bench)
mkdir -p "$OUT"
status=0
started=$SECONDS

say() { echo "[$((SECONDS - started))s] $*"; }

# -- the machine and the installed packages -------------------------------------------------
{
    date -u
    nvidia-smi 2>&1 || echo "no nvidia-smi"
    "$PYTHON" -c "import sys, torch; print(sys.version); print('torch', torch.__version__, \
'cuda', torch.version.cuda, 'available', torch.cuda.is_available())"
    nproc
    free -g
} > "$OUT/machine.txt" 2>&1
say "machine: $(head -c 300 "$OUT/machine.txt" | tr '\n' ' ')"

rm -rf "$SITE"
# shellcheck disable=SC2086
if ! "$PYTHON" -m pip install --quiet --disable-pip-version-check --no-index --no-deps \
    $PIP_ARGS --target "$SITE" "$WHEELS"/*.whl > "$OUT/install.log" 2>&1; then
    say "installing the wheels failed:"
    tail -20 "$OUT/install.log"
    exit 2
fi
purelib=$("$PYTHON" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
if echo "$SITE" > "$purelib/dacapo-gpu-run.pth" 2> /dev/null; then
    trap 'rm -f "$purelib/dacapo-gpu-run.pth"' EXIT
else
    say "warning: $purelib is not writable; tests whose subprocesses set PYTHONPATH will fail"
fi
export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
export PATH="$SITE/bin:$PATH"
export MPLBACKEND=Agg
"$PYTHON" - > "$OUT/versions.txt" 2>&1 <<'EOF'
import importlib.metadata as metadata
import dacapo_trainers, dacapo_trainers_gunpowder, dacapo_trainers_simple_tensor  # noqa: F401
import funlib.persistence, gunpowder, zarr  # noqa: F401
for name in ("dacapo-trainers", "dacapo-trainers-gunpowder", "gunpowder", "zarr",
             "funlib.persistence", "numcodecs", "cattrs", "torch", "numpy"):
    print(name, metadata.version(name))
EOF
if [ $? -ne 0 ]; then
    say "importing the installed packages failed:"
    cat "$OUT/versions.txt"
    exit 2
fi
say "installed: $(tr '\n' ' ' < "$OUT/versions.txt")"

# -- the test suites, side by side ------------------------------------------------------------
# The core suite in four parts (its slowest files alone), so that no part takes much longer
# than the gunpowder suite; six pytest processes on the machine's 16 cores.
HEAVY=(tests/core/configs/test_config_round_trip.py tests/core/run/test_training_driver.py
    tests/core/plugins/test_plugin_discovery.py tests/core/cli/test_cli_fuzz.py
    tests/core/testing/test_testing_kit.py)
SUITES=(
    "core-1|${HEAVY[0]}"
    "core-2|${HEAVY[1]}"
    "core-3|${HEAVY[2]} ${HEAVY[3]} ${HEAVY[4]}"
    "core-4|tests/core $(printf -- '--ignore=%s ' "${HEAVY[@]}")"
    "simple-tensor|plugins/simple-tensor/tests"
    "gunpowder|plugins/gunpowder/tests"
)

run_tests() {
    local pids=() names=() suite name args code
    for suite in "${SUITES[@]}"; do
        name="${suite%%|*}"
        read -r -a args <<< "${suite#*|}"
        timeout "$TESTS_TIMEOUT" "$PYTHON" -m pytest "${args[@]}" -q -p no:cacheprovider \
            --junitxml="$OUT/tests-$name.xml" > "$OUT/tests-$name.log" 2>&1 &
        pids+=($!)
        names+=("$name")
    done
    for i in "${!pids[@]}"; do
        name="${names[$i]}"
        wait "${pids[$i]}"
        code=$?
        if [ $code -eq 0 ]; then
            say "tests $name: $(tail -1 "$OUT/tests-$name.log")"
        else
            status=1
            say "tests $name FAILED (exit $code; 124: timed out): $(tail -1 "$OUT/tests-$name.log")"
            grep -E "^(FAILED|ERROR)" "$OUT/tests-$name.log" | head -20
        fi
    done
    grep -h "SKIPPED" "$OUT"/tests-*.log | head -20
}

run_bench() {
    # shellcheck disable=SC2086
    timeout $((BENCH_BUDGET_S + 90)) "$PYTHON" benchmarks/bench_gpu.py --out "$OUT/bench" \
        --budget-s "$BENCH_BUDGET_S" $BENCH_ARGS > "$OUT/bench.log" 2>&1
    local code=$?
    rm -rf "$OUT/bench/work"  # data and runs: large, and made again by any rerun
    if [ $code -ne 0 ]; then
        status=1
        say "bench_gpu.py FAILED (exit $code):"
        tail -30 "$OUT/bench.log"
    fi
    [ -f "$OUT/bench/results.md" ] && cat "$OUT/bench/results.md"
}

for stage in "${STAGES[@]}"; do
    case "$stage" in
        tests) say "tests (${TESTS_TIMEOUT} s at most per suite)"; run_tests ;;
        bench) say "bench_gpu.py (budget ${BENCH_BUDGET_S} s)"; run_bench ;;
        *) echo "unknown stage $stage (tests, bench)" >&2; exit 2 ;;
    esac
done
say "done, status $status"
exit $status
