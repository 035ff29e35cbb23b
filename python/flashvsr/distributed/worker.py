"""One segment on one worker (a Ray task runs :func:`run_segment`; it needs no Ray itself).

The task decodes the segment's warm-up and own frames, pushes them into a segment stream (the engine cold-starts
at the warm-up chunk and discards its output) and writes the segment's frames: image-sequence output directly
into the job's folder under their global numbers (a retried task rewrites the same files with the same values);
video output through the library's transcode pipeline (``flashvsr.upscale_file`` with the segment's chunks) into
one file per segment in the job's shared folder (video only, source timestamps), joined later by
``flashvsr.io.concat_segments``.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from .. import _C
from .plan import Segment

#: Engines loaded in this worker process, by their load options (a Ray worker runs many tasks).
_ENGINES: dict[tuple, Any] = {}

#: Frames decoded and pushed at a time.
BATCH = 8


@dataclass(frozen=True)
class SegmentTask:
    """Everything a worker needs for one segment (pickled to the worker)."""

    segment: Segment
    input: str
    input_files: list[str] | None  # image-sequence input: the segment's own input frames, in order
    output_dir: str  # the job's shared folder: image frames, or the segment's video file
    output_pattern: str  # image-sequence output: file-name pattern, e.g. "%06d.png"; video: "" (see output_file)
    bits: int  # image bits (8/16 PNG/TIFF, 16/32 EXR)
    output_file: str = ""  # video output: this segment's file (in output_dir)
    file_options: dict = field(default_factory=dict)  # video output: upscale_file keywords (encoder, input)
    engine_options: dict = field(default_factory=dict)  # flashvsr.load keywords
    stream_options: dict = field(default_factory=dict)  # Engine.stream keywords
    threads: int = 0  # intra-op threads of the worker (0: leave as is)


def _engine(options: dict):
    key = tuple(sorted(options.items()))
    e = _ENGINES.get(key)
    if e is None:
        for old in _ENGINES.values():
            old.close()
        _ENGINES.clear()
        e = _C.Engine(**options)
        _ENGINES[key] = e
    return e


def _read_batches(task: SegmentTask):
    """The segment's input frames [n, H, W, 3] from input_begin on, a batch at a time."""
    seg = task.segment
    if task.input_files is not None:
        files = task.input_files
        for i in range(0, len(files), BATCH):
            yield torch.stack([_C.io.read_image(f) for f in files[i : i + BATCH]])
        return
    # Video input: the reader seeks to input_begin (the same frames as a read from the start), then a batch at a
    # time (the pipeline's float conversion, as a single-process run), stopping at input_end.
    try:
        reader = _C.io.VideoReader(task.input, start_frame=seg.input_begin)
    except _C.InputError as e:
        if "is past the end of the video" in str(e):  # planned from an estimate: the video ends before
            return
        raise
    i = seg.input_begin
    while seg.input_end < 0 or i < seg.input_end:
        n = BATCH if seg.input_end < 0 else min(BATCH, seg.input_end - i)
        batch = reader.read(n)
        if batch.shape[0] == 0:
            return
        yield batch
        i += batch.shape[0]


def _run_segment_file(task: SegmentTask, report, pid: int, host: str) -> dict:
    """Video output: the transcode pipeline with the segment's chunks, video only, into task.output_file."""
    seg = task.segment
    if report is not None and report(seg.index, 0, 0, pid, host) is False:
        raise _C.Cancelled(f"segment {seg.index} cancelled before it started")

    def on_progress(p) -> bool:
        return report is None or report(seg.index, p.frames_done, -1, pid, host) is not False

    try:
        r = _C.upscale_file(
            task.input,
            task.output_file,
            engine=_engine(task.engine_options),
            first_chunk=seg.first_chunk,
            end_chunk=seg.end_chunk,
            warmup_chunks=seg.warmup_chunks,
            copy_audio=False,
            copy_subtitles=False,
            overwrite=True,
            keep_partial=False,
            progress=on_progress,
            **task.stream_options,
            **task.file_options,
        )
    except _C.InputError as e:
        # planned from an estimate: the video ends before the segment (or before its input)
        if "but the video ends at frame" in str(e) or "is past the end of the video" in str(e):
            return {"index": seg.index, "frames": 0, "pid": pid, "host": host, "file": None}
        raise
    return {"index": seg.index, "frames": r["frames_out"], "pid": pid, "host": host, "file": r["output"]}


def run_segment(task: SegmentTask, report: Callable[[int, int, int, int, str], Any] | None = None) -> dict:
    """Runs one segment; ``report(index, frames_done, chunks_done, pid, host)`` at the start and after each chunk
    (warm-up chunks included; chunks_done counts this task's chunks); when it returns False the segment stops with
    flashvsr.Cancelled. Returns {index, frames, pid, host}.

    Raises what the engine or the I/O raise (flashvsr.InputError naming the file, ...)."""
    if task.threads > 0:
        torch.set_num_threads(task.threads)
    seg = task.segment
    pid, host = os.getpid(), socket.gethostname()
    if task.output_file:
        return _run_segment_file(task, report, pid, host)
    engine = _engine(task.engine_options)
    stream = engine.stream(
        **task.stream_options, first_chunk=seg.first_chunk, end_chunk=seg.end_chunk, warmup_chunks=seg.warmup_chunks
    )
    if report is not None:
        if report(seg.index, 0, 0, pid, host) is False:
            raise _C.Cancelled(f"segment {seg.index} cancelled before it started")
        first = seg.first_chunk - seg.warmup_chunks if seg.first_chunk > seg.warmup_chunks else 0

        def on_chunk(done: int, total: int) -> bool:
            return report(seg.index, done, stream.chunks_done - first, pid, host) is not False

        stream.set_progress(on_chunk)
    written = 0
    pushed = 0

    def write(frames: torch.Tensor) -> None:
        nonlocal written
        for f in frames:
            name = task.output_pattern % (seg.output_begin + written)
            _C.io.write_image(os.path.join(task.output_dir, name), f, task.bits)
            written += 1

    for batch in _read_batches(task):
        stream.push(batch)
        pushed += batch.shape[0]
        write(stream.pull())
    if seg.input_begin + pushed <= seg.output_begin:
        return {"index": seg.index, "frames": 0, "pid": pid, "host": host}  # the video ends before this segment
    stream.finish()
    write(stream.pull())
    return {"index": seg.index, "frames": written, "pid": pid, "host": host}
