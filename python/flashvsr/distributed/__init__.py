"""Scale-out: one long video across many workers on Ray, seam-free, surviving worker loss (docs/SCALE_OUT.md).

    import flashvsr.distributed as fd
    fd.upscale_file("in.mp4", "out/", model_dir="models/FlashVSR-v1.1", workers=8, segment_frames=2048)

Command: ``python -m flashvsr.distributed IN OUT [options]`` (``--help``). Ray is an optional extra:
``pip install '.[distributed]'``; the planning helpers (:func:`plan_segments`) work without it.
"""

from .job import SegmentFailed, progress_line, upscale_file
from .plan import DEFAULT_SEGMENT_FRAMES, Segment, chunks_of, plan_segments, warmup_chunks_of
from .worker import SegmentTask, run_segment

__all__ = [
    "upscale_file",
    "SegmentFailed",
    "progress_line",
    "plan_segments",
    "Segment",
    "chunks_of",
    "warmup_chunks_of",
    "DEFAULT_SEGMENT_FRAMES",
    "SegmentTask",
    "run_segment",
]
