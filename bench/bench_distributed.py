"""flashvsr.distributed on a local Ray instance: 1 vs 2 workers, frames/s and the warm-up's cost (prints figures).

    .venv/bin/python bench/bench_distributed.py [--frames 405] [--height 32] [--width 48] [--scale 2]
        [--segment-frames 128] [--warmup-frames 48] [--threads 1]

Random tiny weights in a temporary folder, an image-sequence input of random frames, image-sequence output.
Runs: one stream in this process (no Ray), then upscale_file with 1 and 2 workers (each worker one intra-op
thread unless --threads), and 2 workers with warm-up 0 (seams not accurate: only the cost). Warm-up overhead
= frames run in warm-up / frames output (the plan's figure) and the measured time ratio.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import tempfile
import time

import torch

import flashvsr
import flashvsr.distributed as fd


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--frames", type=int, default=405)
    p.add_argument("--height", type=int, default=32)
    p.add_argument("--width", type=int, default=48)
    p.add_argument("--scale", type=int, default=2)
    p.add_argument("--segment-frames", type=int, default=128)
    p.add_argument("--warmup-frames", type=int, default=48)
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args()
    import ray

    tmp = tempfile.mkdtemp(prefix="flashvsr_bench_dist_")
    try:
        model = os.path.join(tmp, "FlashVSR-v1.1")
        flashvsr.testing.make_random_weights(model, size="tiny", seed=1, prompt_tokens=64)
        frames_dir = os.path.join(tmp, "in")
        os.makedirs(frames_dir)
        g = torch.Generator().manual_seed(0)
        for i in range(a.frames):
            flashvsr.io.write_image(os.path.join(frames_dir, f"{i:05d}.png"), torch.rand(a.height, a.width, 3, generator=g))
        segs = fd.plan_segments(a.frames, a.segment_frames, a.warmup_frames)
        warm = sum(s.warmup_frames for s in segs)
        print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}; torch "
              f"{torch.__version__}; input {a.frames} frames {a.width}x{a.height} x{a.scale}, segments of "
              f"{a.segment_frames} frames: {len(segs)}, warm-up {a.warmup_frames} frames each")
        print(f"plan: {warm} warm-up frames for {a.frames} output frames = {100 * warm / a.frames:.1f} % extra")

        torch.set_num_threads(a.threads)
        engine = flashvsr.load(model, device="cpu")
        files = flashvsr.io.image_sequence(frames_dir)["files"]
        t = time.monotonic()
        s = engine.stream(scale=a.scale)
        for i in range(0, len(files), 8):
            s.push(torch.stack([flashvsr.io.read_image(f) for f in files[i : i + 8]]))
            s.pull()
        s.finish()
        s.pull()
        one = time.monotonic() - t
        engine.close()
        print(f"one stream, this process: {one:.1f} s, {a.frames / one:.2f} frames/s")

        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, address="local")
        # Untimed: starts the two worker processes and loads the engine in each (Ray reuses them).
        fd.upscale_file(frames_dir, os.path.join(tmp, "warm") + "/", model_dir=model, device="cpu", scale=a.scale,
                        workers=2, segment_frames=a.segment_frames, warmup_frames=a.warmup_frames, threads=a.threads,
                        quiet=True)
        results = {}
        for workers, warmup in ((1, a.warmup_frames), (2, a.warmup_frames), (2, 0)):
            out = os.path.join(tmp, f"out_{workers}_{warmup}")
            r = fd.upscale_file(frames_dir, out + "/", model_dir=model, device="cpu", scale=a.scale, workers=workers,
                                segment_frames=a.segment_frames, warmup_frames=warmup, threads=a.threads, quiet=True)
            results[(workers, warmup)] = r["seconds"]
            print(f"{workers} worker(s), warm-up {warmup:3d} frames: {r['seconds']:.1f} s, {r['fps']:.2f} frames/s "
                  f"({r['segments']} segments, {r['frames']} frames)")
        ray.shutdown()
        w = results[(2, a.warmup_frames)] / results[(2, 0)] - 1
        print(f"speed-up 1 -> 2 workers: {results[(1, a.warmup_frames)] / results[(2, a.warmup_frames)]:.2f}x; "
              f"measured warm-up overhead (2 workers): {100 * w:.1f} %")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
