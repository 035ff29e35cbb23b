#!/usr/bin/env bash
# README command 1: set everything up, then run the main job: a demo upscale of a synthetic clip through the
# Python API (tiny random weights unless FLASHVSR_MODEL_DIR points at a real model folder), plus the build
# report, and the same through the CLI on a video file with audio (`flashvsr demo`). The main job grows with
# the product.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
echo
.venv/bin/flashvsr --version
.venv/bin/python examples/upscale_frames.py --out flashvsr_demo_out
.venv/bin/flashvsr demo -o flashvsr_demo.mp4 --overwrite
