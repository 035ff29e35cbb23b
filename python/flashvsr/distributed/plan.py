"""Cutting a video into segments on chunk boundaries (no Ray needed): docs/SCALE_OUT.md.

The engine emits frames chunk by chunk: chunk 0 frames 0..20, chunk k >= 1 frames 8k+13 .. 8k+20. A segment is
a run of whole chunks [first_chunk, end_chunk); its stream starts ``warmup_chunks`` chunks earlier, cold, and
discards the warm-up's output (``Engine.stream(first_chunk=..., end_chunk=..., warmup_chunks=...)``).
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import _C

#: Frames per segment when none is given (256 chunks of 8 frames: a warm-up of 48 frames costs 2.3 %).
DEFAULT_SEGMENT_FRAMES = 2048


@dataclass(frozen=True)
class Segment:
    """One task: global chunk and frame numbers (half-open ranges; -1 = to the end of the video)."""

    index: int
    first_chunk: int
    end_chunk: int
    warmup_chunks: int
    input_begin: int  # first frame decoded (warm-up included)
    input_end: int  # one past the last frame read (-1: to the end)
    output_begin: int  # first frame emitted
    output_end: int  # one past the last frame emitted (-1: to the end)

    @property
    def warmup_frames(self) -> int:
        return self.output_begin - self.input_begin


def chunks_of(frames: int) -> int:
    """Chunks the engine runs for a video of ``frames`` frames (the tail padded to 21, else to 8k+5)."""
    if frames < 1:
        raise ValueError(f"frames must be >= 1, got {frames}")
    padded = 21 if frames <= 21 else frames + (5 - frames % 8) % 8
    return (padded + 3) // 8 - 2


def warmup_chunks_of(warmup_frames: int | None, kv_ratio: float = 3.0) -> int:
    """``warmup_frames`` (a multiple of 8; None = the replay depth, 48 frames for kv_ratio 3) in chunks."""
    if warmup_frames is None:
        return _replay_chunks(kv_ratio)
    if warmup_frames < 0 or warmup_frames % 8 != 0:
        raise ValueError(f"warmup_frames must be a multiple of 8 (one chunk = 8 frames) >= 0, got {warmup_frames}")
    return warmup_frames // 8


def _replay_chunks(kv_ratio: float) -> int:
    # The engine's default warm-up: segment_frames(k, warmup_chunks=-1) starts at chunk k - R.
    k = 1000
    return k - _C.segment_frames(k, -1, -1, kv_ratio)["warmup_chunk"]


def plan_segments(
    frames: int, segment_frames: int = DEFAULT_SEGMENT_FRAMES, warmup_frames: int | None = None, kv_ratio: float = 3.0
) -> list[Segment]:
    """Segments of a video of ``frames`` frames (an estimate is fine: the last segment runs to the real end, and
    a segment that starts past it emits nothing). ``segment_frames`` is rounded down to whole chunks (>= 8)."""
    if segment_frames < 8:
        raise ValueError(f"segment_frames must be >= 8 (one chunk), got {segment_frames}")
    per = segment_frames // 8
    warm = warmup_chunks_of(warmup_frames, kv_ratio)
    total = chunks_of(frames)
    out = []
    for i, first in enumerate(range(0, total, per)):
        end = first + per if first + per < total else -1
        f = _C.segment_frames(first, end, warm, kv_ratio)
        out.append(Segment(i, first, end, warm, f["input_begin"], f["input_end"], f["output_begin"], f["output_end"]))
    return out
