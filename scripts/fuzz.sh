#!/usr/bin/env bash
# The libFuzzer harnesses of fuzz/: builds them with clang, ASan and UBSan into build-fuzz/ (only the sources
# they reach), then runs each one from its corpus in fuzz/corpus/<harness>/.
#
#   bash scripts/fuzz.sh                       # CI: a fixed number of inputs per harness (seed 1), ~1 min
#   bash scripts/fuzz.sh --time 3600           # the long run: every harness for an hour (random seed)
#   bash scripts/fuzz.sh --time 600 safetensors torch_pickle
#
# Fails on any crash, sanitizer report, leak, hang (> 2 s for one input), memory above 2 GB, or exception
# other than flashvsr::Error. The input that did it is kept as build-fuzz/artifacts/<harness>/crash-* (or
# leak-*, timeout-*, oom-*); once the bug is fixed, copy it to fuzz/corpus/<harness>/regress_<what> so that
# every later run replays it. New inputs found go to build-fuzz/found/<harness>/ (the repository's corpus is
# only read).
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Inputs per harness for CI (>= 100,000 in all): the cheap ones get more.
declare -A RUNS=([safetensors]=30000 [torch_zip]=4000 [torch_pickle]=30000 [model_dir]=15000
                 [image_sequence]=15000 [image_decode]=20000)
ALL=(safetensors torch_zip torch_pickle model_dir image_sequence image_decode)
time_s=""
harnesses=()
while (($#)); do
    case "$1" in
        --time) time_s="$2"; shift 2 ;;
        -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
        *) harnesses+=("$1"); shift ;;
    esac
done
((${#harnesses[@]})) || harnesses=("${ALL[@]}")

python=$PWD/.venv/bin/python
[ -x "$python" ] || python=$(command -v python3)
CLANGXX=${CLANGXX:-clang++}
command -v "$CLANGXX" >/dev/null || { echo "fuzz.sh: $CLANGXX not found (Debian: clang libclang-rt-14-dev)" >&2; exit 1; }
jobs=${FLASHVSR_JOBS:-$(nproc)}
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)

t0=$SECONDS
if [ ! -f build-fuzz/build.ninja ]; then
    mkdir -p build-fuzz
    cmake -S . -B build-fuzz -G Ninja -DCMAKE_CXX_COMPILER="$CLANGXX" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
          -DFLASHVSR_FUZZ=ON -DPython_EXECUTABLE="$python" "${launcher[@]}" >build-fuzz/configure.log 2>&1 \
        || { cat build-fuzz/configure.log >&2; exit 1; }
fi
cmake --build build-fuzz -j"$jobs" || exit 1
build_s=$((SECONDS - t0))

export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:symbolize=1:${ASAN_OPTIONS:-}"
export LSAN_OPTIONS="suppressions=$PWD/fuzz/lsan.supp:${LSAN_OPTIONS:-}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:${UBSAN_OPTIONS:-}"
export OMP_NUM_THREADS=1
failed=()
total=0
summary=()
for h in "${harnesses[@]}"; do
    bin=build-fuzz/fuzz/fuzz_$h
    [ -x "$bin" ] || { echo "fuzz.sh: no harness '$h' (one of: ${ALL[*]})" >&2; exit 2; }
    mkdir -p "build-fuzz/artifacts/$h" "build-fuzz/found/$h" "fuzz/corpus/$h"
    if [ -n "$time_s" ]; then
        limit=(-max_total_time="$time_s")
    else
        limit=(-runs="${RUNS[$h]}" -seed=1)
    fi
    log=build-fuzz/artifacts/$h.log
    t1=$SECONDS
    "$bin" "${limit[@]}" -timeout=2 -rss_limit_mb=2048 -max_len=4096 -print_final_stats=1 \
        -artifact_prefix="build-fuzz/artifacts/$h/" "build-fuzz/found/$h" "fuzz/corpus/$h" >"$log" 2>&1
    rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    execs=${execs:-0}
    total=$((total + execs))
    summary+=("$(printf '%-15s %8s inputs %5s s  rc=%s' "$h" "$execs" $((SECONDS - t1)) "$rc")")
    if [ $rc -ne 0 ]; then
        failed+=("$h")
        echo "==> fuzz_$h FAILED (rc=$rc); its log ($log) ends with:" >&2
        tail -40 "$log" >&2
    fi
done
echo
echo "==> fuzzing (build ${build_s} s; ASan + UBSan)"
printf '%s\n' "${summary[@]}"
echo "total: $total inputs in $((SECONDS - t0)) s"
if ((${#failed[@]})); then
    echo "fuzz.sh: failed: ${failed[*]} (inputs in build-fuzz/artifacts/)" >&2
    exit 1
fi
