"""FlashVSR Upscale Video (VIDEO -> VIDEO): streams a video file through the engine in bounded memory.

ComfyUI's own VIDEO path (``VideoFromFile.get_components()``) decodes the whole clip into one float32 tensor
(a 300-frame 4K result is ~30 GB). This node never does: it runs the library's transcode pipeline,
``flashvsr.upscale_file`` -- the same code as ``flashvsr upscale`` -- which decodes a few frames at a time,
upscales them chunk by chunk and encodes them as they come out: H.264 MP4, 10-bit input stays 10-bit, audio
and subtitle streams copied packet for packet, chapters and colour tags kept, every frame keeps its source
timestamp (variable frame rate survives). The file is written under a temporary name in ComfyUI's temp
folder and renamed when complete; a cancelled or failed run leaves nothing there.
"""

from __future__ import annotations

import os
import shutil
import uuid

import folder_paths
from comfy_api.latest import io

import flashvsr

from . import management
from .schema import node_options, option_input, upscale_schema


def upscale_video_file(src: str, dst: str, engine, progress=None, **options) -> dict:
    """``flashvsr upscale SRC -o DST`` with a loaded engine: H.264, the CLI's defaults otherwise (``options``:
    upscale_file's keywords, e.g. the upscale options and crf). Nothing is left at ``dst`` (or beside it)
    unless it completes. Returns the job's report."""
    return flashvsr.upscale_file(
        src, dst, engine=engine, progress=progress, codec="libx264", keep_partial=False, **options
    )


def _source_path(source, folder: str) -> tuple[str, str | None]:
    """A path for ``VIDEO.get_stream_source()`` (a path, or a file object that is copied to ``folder``);
    returns (path, the copy to delete or None)."""
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source), None
    copy = os.path.join(folder, f"source_{uuid.uuid4().hex[:12]}")
    source.seek(0)
    with open(copy, "wb") as f:
        shutil.copyfileobj(source, f)
    return copy, copy


class FlashVSRUpscaleVideo(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return upscale_schema(
            "FlashVSRUpscaleVideo",
            "FlashVSR Upscale Video",
            "Streams a VIDEO through FlashVSR in constant memory (never holds the clip as one tensor) and returns "
            "an H.264 MP4 VIDEO (10-bit for 10-bit input) with audio, subtitles, chapters and colour tags kept "
            "and every frame's timestamp kept: the same file as the `flashvsr upscale` CLI makes.",
            io.Video.Input("video", tooltip="The video to upscale (audio and subtitles are kept)."),
            io.Video.Output(display_name="video", tooltip="The upscaled video (MP4 in ComfyUI's temp folder)."),
            extra=(option_input("crf", step=None, tooltip="x264 quality of the result (lower = better, larger)."),),
        )

    @classmethod
    def execute(cls, model, video, **options) -> io.NodeOutput:
        from comfy_api.latest import InputImpl

        kwargs = node_options("FlashVSRUpscaleVideo", options, extra=("crf",))
        engine = management.acquire(model)
        out_dir = os.path.join(folder_paths.get_temp_directory(), "flashvsr")
        os.makedirs(out_dir, exist_ok=True)
        dst = os.path.join(out_dir, f"upscaled_{uuid.uuid4().hex[:12]}.mp4")
        src, copy = _source_path(video.get_stream_source(), out_dir)
        # the total comes with every snapshot (the container's frame count); 1 until then
        reporter = management.ProgressReporter(1, node_id=cls.hidden.unique_id)
        try:
            management.run_interruptible(
                lambda: upscale_video_file(
                    src, dst, engine, progress=lambda p: reporter(p.frames_done, p.frames_total), **kwargs
                ),
                reporter,
            )
        finally:
            if copy is not None:
                os.remove(copy)
        return io.NodeOutput(InputImpl.VideoFromFile(dst))
