"""The decoder's seek for scale-out segments: decode time of each segment's input with a seek
(VideoReader(start_frame=input_begin)) against decoding from the start and dropping (prints figures).

    .venv/bin/python bench/bench_seek.py [--frames 600] [--width 640] [--height 360] [--segment-frames 128]
        [--warmup-frames 48] [--repeats 3]

A synthetic clip (libx264 veryfast, GOP 12, B-frames, no audio) in a temporary folder, planned as
flashvsr.distributed plans it; for each segment: frames decoded and seconds (best of --repeats) to read its input
[input_begin, input_end) both ways. One decoder thread pool as the library configures it (libavcodec's default).
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time

import flashvsr
import flashvsr.distributed as fd


def read_segment(path: str, begin: int, end: int, seek: bool) -> tuple[float, int]:
    t0 = time.perf_counter()
    r = flashvsr.io.VideoReader(path, start_frame=begin if seek else 0)
    i = begin if seek else 0
    while end < 0 or i < end:
        n = r.read(8 if end < 0 else min(8, end - i)).shape[0]
        if n == 0:
            break
        i += n
    return time.perf_counter() - t0, r.frames_decoded


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--frames", type=int, default=600)
    p.add_argument("--width", type=int, default=640)
    p.add_argument("--height", type=int, default=360)
    p.add_argument("--segment-frames", type=int, default=128)
    p.add_argument("--warmup-frames", type=int, default=48)
    p.add_argument("--repeats", type=int, default=3)
    a = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="flashvsr_bench_seek_") as tmp:
        clip = os.path.join(tmp, "clip.mp4")
        flashvsr.io.write_synthetic_clip(clip, width=a.width, height=a.height, frames=a.frames, audio=False)
        segs = fd.plan_segments(a.frames, a.segment_frames, a.warmup_frames)
        print(f"{platform.node()}: {a.frames} frames {a.width}x{a.height}, {len(segs)} segments")
        print("segment  input          from-start: frames  s       seek: frames  s")
        tot = [0.0, 0.0, 0, 0]
        for s in segs:
            row = []
            for seek in (False, True):
                best = min(read_segment(clip, s.input_begin, s.input_end, seek) for _ in range(a.repeats))
                row.append(best)
            (t0, n0), (t1, n1) = row
            tot = [tot[0] + t0, tot[1] + t1, tot[2] + n0, tot[3] + n1]
            print(f"{s.index:7d}  {s.input_begin:5d}..{s.input_end:<5d}  {n0:17d}  {t0:6.3f}  {n1:12d}  {t1:6.3f}")
        print(f"all      {'':12s}  {tot[2]:17d}  {tot[0]:6.3f}  {tot[3]:12d}  {tot[1]:6.3f}")


if __name__ == "__main__":
    main()
