#!/usr/bin/env bash
# The core, the CLI and the C++ tests built with AddressSanitizer + UndefinedBehaviorSanitizer
# (-DFLASHVSR_SANITIZE=ON: no CUDA, no Python module) into build-asan/, then the tests of hostile-input
# territory run under it: checkpoint readers, model folders, image sequences, still images and the pixel
# budget, video I/O, tiling and the engine contract (tiny random weights). Any sanitizer report fails.
#
#   bash scripts/sanitize.sh                 # those suites
#   bash scripts/sanitize.sh 'Tiling*'       # a gtest filter of your own
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
filter=${1:-'Checkpoint*:Safetensors*:TorchFile*:LoadTensors*:ModelDirTest*:ModelFolderSafety*:ImageSeq*:PixelBudget*:MediaIo*:VideoIo*:Tiling*:EngineTest*'}
# Only the test files of those suites are compiled (each costs ~40 s of a core: torch headers); set
# FLASHVSR_SANITIZE_ALL_TESTS=1 for all of tests/cpp.
files="test_checkpoint;test_model_dir;test_model_folder_safety;test_image_sequence;test_pixel_budget;test_media_io"
files+=";test_video_io;test_tiling;test_engine"
[ "${FLASHVSR_SANITIZE_ALL_TESTS:-0}" = 1 ] && files=""
python=$PWD/.venv/bin/python
[ -x "$python" ] || python=$(command -v python3)
jobs=${FLASHVSR_JOBS:-$(nproc)}
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)

t0=$SECONDS
if [ ! -f build-asan/build.ninja ]; then
    mkdir -p build-asan
    cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFLASHVSR_SANITIZE=ON \
          -DBUILD_TESTING=ON -DFLASHVSR_BUILD_BENCH=OFF -DFLASHVSR_TEST_FILES="$files" -DPython_EXECUTABLE="$python" "${launcher[@]}" \
          >build-asan/configure.log 2>&1 || { cat build-asan/configure.log >&2; exit 1; }
fi
cmake --build build-asan -j"$jobs" --target flashvsr_tests flashvsr_cli || exit 1
build_s=$((SECONDS - t0))

# Leaks: LibTorch keeps allocations in globals until exit; only reports that name our code count.
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:detect_stack_use_after_return=0:${ASAN_OPTIONS:-}"
export LSAN_OPTIONS="suppressions=$PWD/fuzz/lsan.supp:${LSAN_OPTIONS:-}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:${UBSAN_OPTIONS:-}"
export OMP_NUM_THREADS=1 FLASHVSR_TEST_PYTHON="$python"
t1=$SECONDS
build-asan/tests/flashvsr_tests --gtest_filter="$filter" --gtest_brief=1
rc=$?
echo "==> sanitized tests: rc=$rc (build ${build_s} s, tests $((SECONDS - t1)) s)"
exit $rc
