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
# The style: .clang-format (which clang-format 14, Debian 12's, can read) plus InsertBraces (>= 15).
style=$(mktemp)
trap 'rm -f "$style"' EXIT
{
    cat .clang-format
    echo "InsertBraces: true"
} >"$style"
cf=("$bin/clang-format" "--style=file:$style")
rc=0
if [ $fix = 1 ]; then
    "${cf[@]}" -i "${cxx[@]}" || rc=1
    "$bin/ruff" check --fix python tests || rc=1
    "$bin/ruff" format python tests || rc=1
else
    bad=()
    for f in "${cxx[@]}"; do
        "${cf[@]}" --dry-run -Werror "$f" >/dev/null 2>&1 || bad+=("$f")
    done
    if ((${#bad[@]})); then
        echo "clang-format: ${#bad[@]} file(s) differ from .clang-format (fix: bash scripts/lint.sh --fix):" >&2
        printf '  %s\n' "${bad[@]}" >&2
        rc=1
    fi
    # Debian 12's clang-format 14, where installed, must agree with the pinned one on every file (editors
    # and other checkers use it): where the two versions would lay a construct out differently, write it
    # another way (a named lambda instead of a lambda argument, `= {}` instead of `{}`, a comment above a
    # field instead of a trailing one).
    if command -v clang-format-14 >/dev/null; then
        old=()
        for f in "${cxx[@]}"; do
            clang-format-14 --dry-run -Werror "$f" >/dev/null 2>&1 || old+=("$f")
        done
        if ((${#old[@]})); then
            echo "clang-format-14 lays out ${#old[@]} file(s) differently from the pinned clang-format:" >&2
            printf '  %s\n' "${old[@]}" >&2
            rc=1
        fi
    fi
    "$bin/ruff" check python tests || rc=1
    "$bin/ruff" format --check python tests || rc=1
fi
[ $rc = 0 ] && echo "lint: ${#cxx[@]} C++/CUDA files and python/, tests/ clean"
exit $rc
