#!/usr/bin/env bash
# Format and lint checks (part of README command 2): clang-format (the pinned PyPI build, so the result does
# not depend on the machine's LLVM) over every C++/CUDA file we own, ruff over python/ and tests/.
#   bash scripts/lint.sh          check only (non-zero exit and the offending files on any difference)
#   bash scripts/lint.sh --fix    rewrite the files in place
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
fix=0
[ "${1:-}" = --fix ] && fix=1
bin=.venv/bin
for tool in clang-format ruff; do
    if [ ! -x "$bin/$tool" ]; then
        echo "lint.sh: $bin/$tool is missing: run 'bash scripts/setup.sh --with-tests' first" >&2
        exit 2
    fi
done
# Our sources: tracked C++/CUDA files outside generated data.
mapfile -t cxx < <(git ls-files '*.cpp' '*.h' '*.cu' '*.cuh' | grep -v -E '^(tests/data|fuzz/corpus)/')
rc=0
if [ $fix = 1 ]; then
    "$bin/clang-format" -i "${cxx[@]}" || rc=1
    "$bin/ruff" check --fix python tests || rc=1
    "$bin/ruff" format python tests || rc=1
else
    bad=()
    for f in "${cxx[@]}"; do
        "$bin/clang-format" --dry-run -Werror "$f" >/dev/null 2>&1 || bad+=("$f")
    done
    if ((${#bad[@]})); then
        echo "clang-format: ${#bad[@]} file(s) differ from .clang-format (fix: bash scripts/lint.sh --fix):" >&2
        printf '  %s\n' "${bad[@]}" >&2
        rc=1
    fi
    "$bin/ruff" check python tests || rc=1
    "$bin/ruff" format --check python tests || rc=1
fi
[ $rc = 0 ] && echo "lint: ${#cxx[@]} C++/CUDA files and python/, tests/ clean"
exit $rc
