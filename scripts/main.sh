#!/usr/bin/env bash
# README command 1: set everything up, then run the main job.
# The main job: report the build, then `flashvsr demo` (synthetic clip + tiny random weights, upscaled end to end).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
echo
.venv/bin/flashvsr --version
.venv/bin/flashvsr build-info
.venv/bin/python -c 'import flashvsr; print("python: flashvsr", flashvsr.__version__, "cuda_available =", flashvsr.build_info()["cuda_available"])'
.venv/bin/flashvsr demo -o flashvsr_demo.mp4 --overwrite
