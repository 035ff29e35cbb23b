"""Upscale a short clip with the Python API and save a few frames as PNG.

    python examples/upscale_frames.py [--model-dir DIR] [--out OUT_DIR] [--scale 4]

Without --model-dir (and without $FLASHVSR_MODEL_DIR) it makes tiny RANDOM weights in a cache folder:
the pipeline then runs end to end but adds no real detail. The real weights are the published folders
FlashVSR/ (v1.0) and FlashVSR-v1.1/ (Hugging Face: JunhaoZhuang/FlashVSR, JunhaoZhuang/FlashVSR-v1.1).
"""

import argparse
import os
import pathlib
import tempfile
import time

import flashvsr


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model-dir", default=os.environ.get("FLASHVSR_MODEL_DIR"))
    ap.add_argument("--out", default="flashvsr_example_out")
    ap.add_argument("--scale", type=int, default=4)
    ap.add_argument("--frames", type=int, default=25)
    args = ap.parse_args()

    model_dir = args.model_dir
    if model_dir is None:
        cache = pathlib.Path(os.environ.get("XDG_CACHE_HOME", pathlib.Path.home() / ".cache")) / "flashvsr"
        model_dir = cache / "tiny-random-weights" / "FlashVSR-v1.1"
        if not (model_dir / "flashvsr_manifest.json").exists():
            flashvsr.testing.make_random_weights(model_dir, size="tiny", seed=0)
        print(f"using tiny RANDOM weights in {model_dir} (no real detail; pass --model-dir for the real model)")

    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        clip = pathlib.Path(tmp) / "clip.mp4"
        flashvsr.io.write_synthetic_clip(str(clip), width=96, height=64, frames=args.frames, audio=False)
        frames = flashvsr.io.read_video_rgb24(str(clip))  # uint8 [F, H, W, 3]

    engine = flashvsr.load(model_dir)
    print(f"engine: {engine.info['version']} ({engine.info['version_source']}), mode {engine.info['mode']}, "
          f"{engine.info['device']} {engine.info['dtype']}")
    t0 = time.perf_counter()
    result = engine.upscale(frames, scale=args.scale,
                            progress=lambda done, total: print(f"  {done}/{total} frames", flush=True))
    dt = time.perf_counter() - t0
    print(f"{tuple(frames.shape)} uint8 -> {tuple(result.shape)} {result.dtype} in {dt:.2f} s "
          f"({frames.shape[0] / dt:.1f} frames/s)")
    for i in (0, result.shape[0] - 1):
        path = out / f"frame_{i:04d}.png"
        flashvsr.io.write_image(str(path), result[i])
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
