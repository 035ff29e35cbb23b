#!/usr/bin/env bash
# The core, the CLI and the C++ tests built with AddressSanitizer + UndefinedBehaviorSanitizer (CMake preset
# `sanitize`: clang, -DFLASHVSR_SANITIZE=ON, no CUDA, no Python module) into build-asan/, then the tests of
# hostile-input territory run under it: checkpoint readers, model folders, image sequences, still images and
# the pixel budget, media and video I/O, tiling and the engine contract (tiny random weights). Any sanitizer
# report fails the run: ASan and UBSan abort on the first one (-fno-sanitize-recover=all), LeakSanitizer
# fails the process at exit on a leak. scripts/test.sh (CI) runs it after the fuzz harnesses.
#
#   bash scripts/sanitize.sh                 # those suites
#   bash scripts/sanitize.sh 'Tiling*'       # a gtest filter of your own
#   FLASHVSR_SANITIZE_ALL_TESTS=1 bash scripts/sanitize.sh '*'   # every file of tests/cpp (a long build)
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# The three RSS-bound tests are left out: under ASan, freed memory stays in the sanitizer's quarantine (up to
# 256 MB) and its allocator keeps size-class caches, so RSS measures the sanitizer, not us (they grew by
# 3-23 MB there). They run in the ordinary build (ctest), and LeakSanitizer covers what they would miss here.
suites='Checkpoint*:Safetensors*:TorchFile*:LoadTensors*:ModelDirTest*:ModelFolderSafety*:ImageSeq*:PixelBudget*'
suites+=':MediaIo*:VideoIo*:Tiling*:EngineTest*'
rss_bound='EngineTest.StateIsFlatAndMemoryDoesNotGrow:Tiling.MemoryIsFlatAcrossTiles'
rss_bound+=':Tiling.MemoryDoesNotDependOnVideoLength'
filter=${1:-"$suites:-$rss_bound"}

# Configuration: CMakePresets.json (only those suites' test files are compiled: ~10 s of a core each with
# clang at -O1, torch headers). Overrides for machines without the venv, ccache or clang++ on PATH.
overrides=()
[ "${FLASHVSR_SANITIZE_ALL_TESTS:-0}" = 1 ] && overrides+=(-DFLASHVSR_TEST_FILES=)
python=$PWD/.venv/bin/python
[ -x "$python" ] || { python=$(command -v python3); overrides+=(-DPython_EXECUTABLE="$python"); }
CLANGXX=${CLANGXX:-clang++}
command -v "$CLANGXX" >/dev/null || { echo "sanitize.sh: $CLANGXX not found (Debian: clang libclang-rt-14-dev)" >&2; exit 1; }
[ "$CLANGXX" = clang++ ] || overrides+=(-DCMAKE_CXX_COMPILER="$CLANGXX")
command -v ccache >/dev/null || overrides+=(-DCMAKE_CXX_COMPILER_LAUNCHER=)
export CCACHE_BASEDIR="$PWD"  # as scripts/setup.sh: hits from another checkout of the same sources
jobs=${FLASHVSR_JOBS:-$(nproc)}

t0=$SECONDS
mkdir -p build-asan
cmake --preset sanitize "${overrides[@]}" >build-asan/configure.log 2>&1 || { cat build-asan/configure.log >&2; exit 1; }
cmake --build --preset sanitize -j"$jobs" || exit 1
build_s=$((SECONDS - t0))

# Third-party leaks only, each justified in fuzz/lsan.supp (the fuzz harnesses share it).
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:check_initialization_order=1:${ASAN_OPTIONS:-}"
export LSAN_OPTIONS="suppressions=$PWD/fuzz/lsan.supp:print_suppressions=0:${LSAN_OPTIONS:-}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:${UBSAN_OPTIONS:-}"
export OMP_NUM_THREADS=1 FLASHVSR_TEST_PYTHON="$python"
# GoogleTest shards, one process per core (the tiling suites take most of the time); a failing shard's log
# is printed whole.
shards=${FLASHVSR_SANITIZE_SHARDS:-$jobs}
t1=$SECONDS
pids=()
rm -f build-asan/shard_*.log
for ((i = 0; i < shards; ++i)); do
    GTEST_TOTAL_SHARDS=$shards GTEST_SHARD_INDEX=$i build-asan/tests/flashvsr_tests --gtest_filter="$filter" \
        --gtest_brief=1 >"build-asan/shard_$i.log" 2>&1 &
    pids+=($!)
done
rc=0
for ((i = 0; i < shards; ++i)); do
    wait "${pids[$i]}"
    shard_rc=$?
    if [ $shard_rc -ne 0 ]; then
        rc=$shard_rc
        echo "==> sanitized tests, shard $i of $shards FAILED (rc=$shard_rc); build-asan/shard_$i.log:" >&2
        cat "build-asan/shard_$i.log" >&2
    fi
done
tests=0
for n in $(sed -n 's/^\[==========\] \([0-9]*\) tests\? from .* ran\..*/\1/p' build-asan/shard_*.log); do
    tests=$((tests + n))
done
echo "==> sanitized tests: rc=$rc, $tests tests in $shards shards (build ${build_s} s, tests $((SECONDS - t1)) s)"
exit $rc
