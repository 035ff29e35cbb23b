#!/usr/bin/env bash
# Proves the CUDA path in a few minutes on a machine with an NVIDIA GPU (README "Checking a GPU"):
#
#   bash scripts/gpu_check.sh [OUT_DIR]          # default OUT_DIR: $OUT
#   bash scripts/gpu_check.sh --cpu [OUT_DIR]    # the same steps on the CPU, tiny weights (the dry run CI runs)
#
# Steps, each under its own timeout (a failed, crashed or timed-out step is recorded and the next one runs):
#   build    build-gpu/: CMake with FLASHVSR_CUDA=ON and TORCH_CUDA_ARCH_LIST = the GPU's compute capability
#            (nvidia-smi), only the targets the check runs (the core, the gpu tests, the measuring program)
#   ctest    ctest -L gpu: every CUDA kernel against its CPU twin and the engine-level CUDA tests
#   env      GPU, driver, build information
#   weights  random weights in the published formats (small, then full size)
#   parity   CUDA vs CPU end to end: fp32 max |diff| <= 1e-4, bf16 (>= 38 dB) and fp16 PSNR vs CPU fp32
#   offload  Engine::to: weights to host RAM and back, device memory back to baseline, same output
#   cycles   10 load/unload cycles: allocated bytes exactly back to baseline, reserved within 64 MB
#   bench    full-size weights, 768x1408 tiny and tiny-long, 1920x1088 tiled under max_memory: steady and
#            first-chunk fps, peak allocated/reserved, per-network ms (CUDA events), host<->device bytes/chunk
#   budget   parking on/off (equal output) and the out-of-memory fallback under a real per-process memory
#            fraction (equal to smaller tiles from the start)
# Output: OUT_DIR/report.json (one object: steps -> status, seconds, results, checks), OUT_DIR/summary.txt,
# OUT_DIR/logs/STEP.log. Exit 0 when every step passed, 1 otherwise.
# Needs: nvidia-smi, nvcc (CUDA 13), CMake, Ninja, and torch 2.13 in .venv (scripts/setup.sh) or python3.
# Environment: FLASHVSR_GPU_CHECK_BUDGET_S (whole run, default 470 s on a GPU, 300 s with --cpu),
# FLASHVSR_GPU_CHECK_SKIP_BUILD=1 (use build-gpu/, else build/, as it is).
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 2

mode=gpu
out=""
for a in "$@"; do
    case "$a" in
        --cpu) mode=cpu ;;
        -h|--help) sed -n '2,25p' "${BASH_SOURCE[0]}"; exit 0 ;;
        -*) echo "gpu_check.sh: unknown option '$a'" >&2; exit 2 ;;
        *) out="$a" ;;
    esac
done
out="${out:-${OUT:-}}"
if [ -z "$out" ]; then
    echo "gpu_check.sh: give an output folder (argument or \$OUT)" >&2
    exit 2
fi
mkdir -p "$out/steps" "$out/logs" || exit 2
out="$(cd "$out" && pwd)"
rm -f "$out"/steps/*.json "$out"/steps/*.status "$out/report.json" "$out/summary.txt"
work="$out"  # step files under steps/, generated weights under weights-*/ (reused by a rerun)

if [ "$mode" = gpu ]; then
    budget_s=${FLASHVSR_GPU_CHECK_BUDGET_S:-470}
    device=cuda
    sizes=()
else
    budget_s=${FLASHVSR_GPU_CHECK_BUDGET_S:-300}
    device=cpu
    sizes=(--quick)  # the dry run's small videos
    # One intra-op thread: on a shared or busy CPU, OpenMP teams that outnumber the free cores spin (5x slower).
    export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
fi
bdir=build  # --cpu: the build of scripts/setup.sh (README command 2 has just made it)
[ "$mode" = gpu ] && bdir=build-gpu
t_start=$SECONDS
steps_run=()

json_escape() { printf '%s' "$1" | tr -d '\000-\037' | sed 's/\\/\\\\/g; s/"/\\"/g'; }

# write_json STEP RC SUMMARY [KEY VALUE]... : results of a step the script does itself (values: numbers or strings)
write_json() {
    local name=$1 summary=$2
    shift 2
    local body="" k v
    while [ $# -ge 2 ]; do
        k=$1 v=$2
        shift 2
        if [[ "$v" =~ ^-?[0-9]+$ ]]; then body+="\"$k\": $v, "; else body+="\"$k\": \"$(json_escape "$v")\", "; fi
    done
    printf '{"results": {%s"script": true}, "checks": {}, "summary": "%s"}\n' "$body" "$(json_escape "$summary")" \
        >"$out/steps/$name.json"
}

skip_step() {  # NAME REASON
    steps_run+=("$1")
    printf 'skipped=%s\nrc=-1\nseconds=0\n' "$2" >"$out/steps/$1.status"
    echo "==> $1: skipped ($2)"
}

# run_step NAME TIMEOUT_S CMD...: runs CMD under min(TIMEOUT_S, time left) with its output in logs/NAME.log.
run_step() {
    local name=$1 limit=$2
    shift 2
    steps_run+=("$name")
    local left=$((budget_s - (SECONDS - t_start) - 10))
    [ "$left" -lt "$limit" ] && limit=$left
    if [ "$limit" -lt 5 ]; then
        printf 'skipped=no time left in the %s s budget\nrc=-1\nseconds=0\n' "$budget_s" >"$out/steps/$name.status"
        echo "==> $name: skipped (no time left)"
        return 1
    fi
    echo "==> $name (timeout ${limit} s)"
    local t0=$SECONDS rc
    timeout -k 10 "$limit" "$@" >"$out/logs/$name.log" 2>&1
    rc=$?
    printf 'rc=%s\nseconds=%s\ntimeout_s=%s\n' "$rc" "$((SECONDS - t0))" "$limit" >"$out/steps/$name.status"
    tail -n 4 "$out/logs/$name.log" | sed 's/^/    /'
    echo "    -> rc=$rc in $((SECONDS - t0)) s"
    return "$rc"
}

# ---- build ---------------------------------------------------------------------------------------------
build_ok=1
if [ "$mode" = gpu ]; then
    cap=""
    if command -v nvidia-smi >/dev/null; then
        nvidia-smi --query-gpu=name,memory.total,driver_version,compute_cap --format=csv >"$out/logs/nvidia-smi.txt" 2>&1
        cap=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -n1 | tr -d ' ')
    fi
    gpu_name=$(sed -n 2p "$out/logs/nvidia-smi.txt" 2>/dev/null)
    if [ -z "$cap" ]; then
        echo "gpu_check.sh: nvidia-smi reports no GPU (use --cpu for the dry run)" >&2
        skip_step build "nvidia-smi reports no GPU"
        build_ok=0
    elif [ "${FLASHVSR_GPU_CHECK_SKIP_BUILD:-0}" = 1 ]; then
        [ -x build-gpu/tests/flashvsr_gpu_check ] || bdir=build
        write_json build "skipped on request: $bdir/ as it is" arch_list "$cap" gpu "$gpu_name" build_dir "$bdir"
        skip_step build "FLASHVSR_GPU_CHECK_SKIP_BUILD=1"
        echo optional=1 >>"$out/steps/build.status"
    else
        py=python3
        [ -x .venv/bin/python ] && py="$PWD/.venv/bin/python"  # absolute: CMake ignores a relative one
        if ! command -v nvcc >/dev/null && [ -x /usr/local/cuda/bin/nvcc ]; then export PATH="/usr/local/cuda/bin:$PATH"; fi
        launcher=()
        command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_CUDA_COMPILER_LAUNCHER=ccache)
        write_json build "TORCH_CUDA_ARCH_LIST=$cap for $gpu_name" arch_list "$cap" gpu "$gpu_name" build_dir "$bdir" \
            python "$py"
        # shellcheck disable=SC2016  # expanded by the inner bash
        run_step build 330 bash -c 'set -e
            cmake -S . -B "$1" -G Ninja -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=ON -DFLASHVSR_BUILD_BENCH=OFF \
                -DFLASHVSR_CUDA=ON -DTORCH_CUDA_ARCH_LIST="$2" -DPython_EXECUTABLE="$3" "${@:4}"
            cmake --build "$1" -j"$(nproc)" --target flashvsr_gpu_tests flashvsr_gpu_check' \
            build "$bdir" "$cap" "$py" "${launcher[@]}"
    fi
else
    write_json build "CPU dry run: the measuring program in build/" target flashvsr_gpu_check
    run_step build 240 cmake --build build --target flashvsr_gpu_check
fi
# A failed build is recorded; the steps still run with what the build folder holds, if anything.
bin=$bdir/tests/flashvsr_gpu_check
[ -x "$bin" ] || build_ok=0

# ---- ctest -L gpu ----------------------------------------------------------------------------------------
if [ "$build_ok" = 0 ]; then
    skip_step ctest "no build"
elif [ "$mode" = gpu ]; then
    run_step ctest 120 ctest --test-dir "$bdir" -L gpu --no-tests=error --output-on-failure --timeout 90
    line=$(grep -E "tests passed, [0-9]+ tests? failed out of" "$out/logs/ctest.log" | tail -n1)
    total=$(sed -nE 's/.*out of ([0-9]+).*/\1/p' <<<"$line")
    failed=$(sed -nE 's/.*passed, ([0-9]+) tests? failed.*/\1/p' <<<"$line")
    if [ "${failed:-0}" -gt 0 ] && grep -q '^rc=8$' "$out/steps/ctest.status"; then
        sed -i 's/^rc=8$/rc=3/' "$out/steps/ctest.status"  # tests ran and some failed: "fail", not "error"
    fi
    write_json ctest "${line:-no ctest summary line}" label gpu total "${total:-0}" failed "${failed:-0}" \
        passed "$(( ${total:-0} - ${failed:-0} ))" failed_tests "$(grep -E '^\s+[0-9]+ - ' "$out/logs/ctest.log" | tr -s ' ' | tr '\n' ';')"
else
    # The gpu tests need a device: list them (the binary must exist and enumerate its tests).
    run_step ctest 60 ctest --test-dir "$bdir" -L gpu -N
    total=$(sed -nE 's/^Total Tests: ([0-9]+).*/\1/p' "$out/logs/ctest.log" | tail -n1)
    write_json ctest "listed ${total:-0} gpu-labelled tests (not run: no GPU)" label gpu listed "${total:-0}"
fi

# ---- the measuring program -----------------------------------------------------------------------------
step() {  # NAME TIMEOUT SIZE
    local name=$1 limit=$2 size=$3
    if [ "$build_ok" = 0 ]; then
        skip_step "$name" "no build"
        return
    fi
    run_step "$name" "$limit" "$bin" "${name%%-*}" --device "$device" --work "$work" --size "$size" "${sizes[@]}" \
        --out "$out/steps/$name.json"
}
if [ "$mode" = gpu ]; then
    step env 30 small
    step weights-small 60 small
    step parity 90 small
    step cycles 90 small
    step weights-full 150 full
    step offload 60 full
    step bench 150 full
    step budget 120 full
else
    step env 30 tiny
    step weights-tiny 60 tiny
    step parity 60 tiny
    step cycles 60 tiny
    step offload 60 tiny
    step bench 90 tiny
    step budget 90 tiny
fi

# ---- report ----------------------------------------------------------------------------------------------
echo
merged=0
if [ -x "$bin" ]; then
    "$bin" merge --work "$work" --mode "$mode" --steps "${steps_run[*]}" --out "$out/report.json" \
        --summary "$out/summary.txt" >/dev/null 2>"$out/logs/merge.log" && merged=1
fi
if [ "$merged" = 0 ]; then  # no program: a report from the status files alone
    {
        printf '{"schema": 1, "mode": "%s", "ok": false, "merge": "script fallback", "steps": {' "$mode"
        sep=""
        for s in "${steps_run[@]}"; do
            rc=$(sed -n 's/^rc=//p' "$out/steps/$s.status" 2>/dev/null)
            printf '%s"%s": {"rc": %s, "log": "logs/%s.log"}' "$sep" "$s" "${rc:--1}" "$s"
            sep=", "
        done
        printf '}}\n'
    } >"$out/report.json"
    { echo "flashvsr gpu_check ($mode): the measuring program is missing, see logs/"; cat "$out"/steps/*.status; } \
        >"$out/summary.txt"
fi
cat "$out/summary.txt"
echo "report: $out/report.json ($((SECONDS - t_start)) s)"
grep -q '"ok": true' "$out/report.json"
