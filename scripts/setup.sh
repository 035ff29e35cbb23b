#!/usr/bin/env bash
# Sets up flashvsr on a fresh Debian 12 machine and installs it into ./.venv. Idempotent: a second run
# reuses the system packages, the venv, the pinned torch, ccache and the build folder.
#
#   bash scripts/setup.sh [--with-tests]
#
# Environment: PYTHON (interpreter for the venv, default python3), FLASHVSR_CUDA (AUTO|ON|OFF),
# TORCH_CUDA_ARCH_LIST (CUDA architectures, default one: 8.0+PTX), FLASHVSR_JOBS (build jobs, default nproc).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

with_tests=OFF
for a in "$@"; do
    case "$a" in
        --with-tests) with_tests=ON ;;
        *) echo "setup.sh: unknown option '$a'" >&2; exit 2 ;;
    esac
done

step() { printf '\n==> %s\n' "$*"; }
t_start=$SECONDS

# ---- 1. system packages (Debian) ------------------------------------------------------------------
apt_packages=(
    build-essential cmake ninja-build pkg-config ccache git ca-certificates
    python3 python3-dev python3-venv
    libavformat-dev libavcodec-dev libavutil-dev libswscale-dev libswresample-dev ffmpeg
    libopencv-core-dev libopencv-imgproc-dev libopencv-imgcodecs-dev
    nlohmann-json3-dev libgtest-dev libgmock-dev
    clang libclang-rt-14-dev
)
missing=()
for p in "${apt_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    step "installing Debian packages: ${missing[*]}"
    sudo_cmd=()
    [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
    "${sudo_cmd[@]}" apt-get update -q
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
else
    step "Debian packages: all present"
fi
if ! command -v nvcc >/dev/null && [ -x /usr/local/cuda/bin/nvcc ]; then
    export PATH="/usr/local/cuda/bin:$PATH"
fi

# ---- 2. Python environment with the pinned torch ------------------------------------------------------
torch_pin=$(sed -n 's/.*"torch==\([0-9.]*\)".*/\1/p' pyproject.toml | head -n1)
if [ ! -x .venv/bin/python ]; then
    step "creating .venv with ${PYTHON:-python3} ($(${PYTHON:-python3} --version))"
    "${PYTHON:-python3}" -m venv .venv
    .venv/bin/python -m pip install -q --upgrade pip
fi
have_torch=$(.venv/bin/python -c 'import torch; print(torch.__version__.split("+")[0])' 2>/dev/null || true)
if [ "$have_torch" != "$torch_pin" ]; then
    step "installing torch==$torch_pin (CUDA 13 wheel from PyPI, about 2.8 GB)"
    .venv/bin/python -m pip install "torch==$torch_pin"
fi
need=()
for m in scikit_build_core pytest numpy safetensors av; do
    .venv/bin/python -c "import $m" 2>/dev/null || need+=("$m")
done
if ((${#need[@]})); then
    step "installing build/test tools: ${need[*]}"
    # av (PyAV): ComfyUI's own video library; the tests use it to inspect the video files they write
    .venv/bin/python -m pip install -q "scikit-build-core>=0.11" "pytest>=8" numpy safetensors "av>=14.2"
fi
# ray: the optional extra [distributed] (flashvsr.distributed); its tests run in CI, so --with-tests installs it
ray_pin=$(sed -n 's/.*"ray==\([0-9.]*\)".*/\1/p' pyproject.toml | head -n1)
if [ "$with_tests" = ON ] && [ "$(.venv/bin/python -c 'import ray; print(ray.__version__)' 2>/dev/null)" != "$ray_pin" ]; then
    step "installing ray==$ray_pin (the [distributed] extra, for its tests)"
    .venv/bin/python -m pip install -q "ray==$ray_pin"
fi
# clang-format and ruff (scripts/lint.sh, part of command 2): pinned PyPI builds, so the check does not
# depend on the machine's LLVM (Debian 12's clang-format 14 lacks InsertBraces)
if [ "$with_tests" = ON ] && { [ "$(.venv/bin/clang-format --version 2>/dev/null | awk '{print $3}')" != 19.1.7 ] ||
    [ "$(.venv/bin/ruff --version 2>/dev/null | awk '{print $2}')" != 0.14.0 ]; }; then
    step "installing clang-format==19.1.7 and ruff==0.14.0 (format and lint checks)"
    .venv/bin/python -m pip install -q "clang-format==19.1.7" "ruff==0.14.0"
fi

# ---- 3. build + install (one configure serves the wheel, the CLI and the C++ tests) -------------------
step "building and installing flashvsr (tests: $with_tests)"
export CCACHE_BASEDIR="$PWD" CCACHE_MAXSIZE="${CCACHE_MAXSIZE:-5G}" CCACHE_SLOPPINESS="${CCACHE_SLOPPINESS:-time_macros}"
if command -v ccache >/dev/null; then
    export CMAKE_CXX_COMPILER_LAUNCHER=ccache CMAKE_CUDA_COMPILER_LAUNCHER=ccache
fi
jobs=${FLASHVSR_JOBS:-$(nproc)}
.venv/bin/python -m pip install --no-build-isolation --no-deps -q \
    -Cbuild-dir=build \
    -Cbuild.tool-args="-j$jobs" \
    -Ccmake.define.BUILD_TESTING="$with_tests" \
    -Ccmake.define.FLASHVSR_CUDA="${FLASHVSR_CUDA:-AUTO}" \
    -Ccmake.define.TORCH_CUDA_ARCH_LIST="${TORCH_CUDA_ARCH_LIST:-8.0+PTX}" \
    .
step "setup done in $((SECONDS - t_start)) s: $(.venv/bin/flashvsr --version)"
