"""int8 DiT against float32 on the same weights and input: PSNR and max error of the upscaled frames.

Usage: python bench/int8_quality.py MODEL_DIR [--frames 9] [--width 96] [--height 64] [--mode tiny-long]
Prints figures only (a benchmark: it asserts nothing). On random weights this measures how far the int8
path moves the output, not the quality of the real model (unmeasured: the published weights are not here).
"""
import argparse
import math
import time

import torch

import flashvsr


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("model_dir")
    p.add_argument("--frames", type=int, default=9)
    p.add_argument("--width", type=int, default=96)
    p.add_argument("--height", type=int, default=64)
    p.add_argument("--mode", default="tiny-long")
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    frames = torch.rand(a.frames, a.height, a.width, 3, generator=torch.Generator().manual_seed(0))
    outs = {}
    for dtype in ("fp32", "int8"):
        engine = flashvsr.load(a.model_dir, mode=a.mode, dtype=dtype, device="cpu")
        t0 = time.perf_counter()
        outs[dtype] = engine.upscale(frames, scale=4, seed=0)
        dt = time.perf_counter() - t0
        print(f"{dtype}: {a.frames} frames in {dt:.1f} s ({a.frames / dt:.3f} frames/s), "
              f"weights {engine.info['weight_bytes'] / 2**30:.2f} GiB")
        engine.close()
    d = (outs["int8"] - outs["fp32"]).double()
    mse = d.pow(2).mean().item()
    print(f"int8 vs fp32: PSNR {10 * math.log10(1 / mse):.2f} dB, max |error| {d.abs().max().item():.4f}, "
          f"mean |error| {d.abs().mean().item():.5f} (output in [0, 1], {tuple(outs['fp32'].shape)})")


if __name__ == "__main__":
    main()
