#!/usr/bin/env bash
# README command 2: every test (format and lint checks, GoogleTest under CTest, pytest, the fuzz harnesses,
# then the hostile-input suites under ASan + UBSan), setting up first if needed.
# Tests labelled `gpu` need a CUDA device; they run only when FLASHVSR_GPU_TESTS=1.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
t0=$SECONDS
bash scripts/setup.sh --with-tests || exit 1

echo; echo "==> format and lint: clang-format (C++/CUDA) and ruff (python/, tests/) (scripts/lint.sh)"
bash scripts/lint.sh
lint_rc=$?

echo; echo "==> ctest"
ctest_filter=(-LE gpu)
[ "${FLASHVSR_GPU_TESTS:-0}" = 1 ] && ctest_filter=()
# One intra-op thread per test process: ctest already runs nproc tests at once (OpenMP threads that
# outnumber the cores spin and slow everything down).
OMP_NUM_THREADS=1 ctest --test-dir build --output-on-failure -j"$(nproc)" "${ctest_filter[@]}"
ctest_rc=$?

echo; echo "==> pytest"
.venv/bin/python -m pytest tests/python -q
pytest_rc=$?
if [ $pytest_rc -eq 5 ]; then
    echo "pytest collected no tests: that is a failure here" >&2
fi

echo; echo "==> fuzzing: libFuzzer harnesses under ASan + UBSan, a fixed number of inputs each (scripts/fuzz.sh)"
bash scripts/fuzz.sh
fuzz_rc=$?

echo; echo "==> sanitizers: the hostile-input suites under ASan + UBSan + LSan (scripts/sanitize.sh)"
bash scripts/sanitize.sh
sanitize_rc=$?

echo; echo "==> tests done in $((SECONDS - t0)) s (lint rc=$lint_rc, ctest rc=$ctest_rc, pytest rc=$pytest_rc, fuzz rc=$fuzz_rc," \
           "sanitizers rc=$sanitize_rc)"
[ $lint_rc -eq 0 ] && [ $ctest_rc -eq 0 ] && [ $pytest_rc -eq 0 ] && [ $fuzz_rc -eq 0 ] && [ $sanitize_rc -eq 0 ]
