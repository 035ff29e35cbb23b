"""FlashVSR Upscale Video (VIDEO -> VIDEO): streams a video file through the engine in bounded memory.

ComfyUI's own VIDEO path (``VideoFromFile.get_components()``) decodes the whole clip into one float32 tensor
(a 300-frame 4K result is ~30 GB). This node never does: PyAV (ComfyUI's own video dependency) decodes a
few frames at a time, ``engine.stream()`` upscales them chunk by chunk, and the frames are encoded as they
come out. Audio packets are copied untouched (no re-encode) with their timestamps; every video frame keeps
its source timestamp, so variable frame rate survives. The file is written under a temporary name in
ComfyUI's temp folder and renamed when complete.
"""

from __future__ import annotations

import os
import uuid
from fractions import Fraction

import folder_paths
from comfy_api.latest import io

from . import management
from .nodes import _engine_kwargs, upscale_schema

PUSH_FRAMES = 8  # frames decoded before each push: memory is bounded by this plus the engine's window


def upscale_video_file(src, dst: str, stream, scale: int, crf: int = 18) -> int:
    """Decode ``src`` (path or file object), upscale through ``stream`` (an ``engine.stream(...)``),
    encode H.264 MP4 at ``dst`` with audio stream-copied. Returns the number of frames written."""
    import av
    import numpy as np
    import torch

    tmp = dst + ".part"
    done = 0
    with av.open(src) as inp:
        if not inp.streams.video:
            raise ValueError("FlashVSR Upscale Video: the input has no video stream")
        vin = inp.streams.video[0]
        audio = [s for s in inp.streams.audio]
        out = av.open(tmp, mode="w", format="mp4")
        try:
            # every output stream exists before the first packet is written (the header goes out then)
            w, h = vin.codec_context.width * scale, vin.codec_context.height * scale
            vout = out.add_stream("libx264", rate=vin.average_rate or Fraction(25))
            vout.width, vout.height = w, h
            vout.pix_fmt = "yuv420p" if w % 2 == 0 and h % 2 == 0 else "yuv444p"
            vout.time_base = vin.time_base
            vout.codec_context.time_base = vin.time_base
            vout.options = {"crf": str(crf)}
            # colour: decode with the source's matrix and range, encode with the same, and tag the output
            src = vin.codec_context
            colour = {"colorspace": src.colorspace, "color_range": src.color_range}
            for name in ("colorspace", "color_range", "color_primaries", "color_trc"):
                setattr(vout.codec_context, name, getattr(src, name))
            aout = {s.index: out.add_stream_from_template(s) for s in audio}
            pts_queue: list[int | None] = []

            def encode(frames: "torch.Tensor") -> None:
                nonlocal done
                rgb = (frames * 255.0).round_().clamp_(0, 255).to(torch.uint8).numpy()
                for img in rgb:
                    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24").reformat(
                        format=vout.pix_fmt, dst_colorspace=colour["colorspace"] or None,
                        dst_color_range=colour["color_range"] or None)
                    pts = pts_queue.pop(0)
                    frame.pts = pts if pts is not None else done
                    frame.time_base = vin.time_base
                    for packet in vout.encode(frame):
                        out.mux(packet)
                    done += 1

            batch: list = []
            for packet in inp.demux([vin, *audio]):
                if packet.stream.index in aout:
                    if packet.dts is None:
                        continue
                    packet.stream = aout[packet.stream.index]
                    out.mux(packet)
                    continue
                for frame in packet.decode():
                    pts_queue.append(frame.pts)
                    rgb = frame.to_ndarray(format="rgb24", src_colorspace=frame.colorspace or None,
                                           src_color_range=frame.color_range or None)
                    batch.append(torch.from_numpy(rgb))
                    if len(batch) == PUSH_FRAMES:
                        stream.push(torch.stack(batch))  # [F,H,W,3] uint8
                        batch.clear()
                        encode(stream.pull())
            if batch:
                stream.push(torch.stack(batch))
            stream.finish()
            encode(stream.pull())
            if done == 0:
                raise ValueError("FlashVSR Upscale Video: the input has no decodable video frame")
            for packet in vout.encode():
                out.mux(packet)
        finally:
            out.close()
    os.replace(tmp, dst)
    return done


def _frame_count(src) -> int:
    """The container's frame count (or duration x rate) for the progress bar; 1 when unknown."""
    import av

    try:
        with av.open(src) as c:
            v = c.streams.video[0]
            if v.frames:
                return int(v.frames)
            if v.duration and v.time_base and v.average_rate:
                return max(int(v.duration * v.time_base * v.average_rate), 1)
            return 1
    except (av.FFmpegError, IndexError):
        return 1
    finally:
        if hasattr(src, "seek"):
            src.seek(0)


class FlashVSRUpscaleVideo(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return upscale_schema(
            "FlashVSRUpscaleVideo", "FlashVSR Upscale Video",
            "Streams a VIDEO through FlashVSR in constant memory (never holds the clip as one tensor) and returns "
            "an H.264 MP4 VIDEO with the audio stream-copied and every frame's timestamp kept.",
            io.Video.Input("video", tooltip="The video to upscale (audio is kept)."),
            io.Video.Output(display_name="video", tooltip="The upscaled video (MP4 in ComfyUI's temp folder)."),
            extra=(io.Int.Input("crf", default=18, min=0, max=51,
                                tooltip="x264 quality of the result (lower = better, larger)."),))

    @classmethod
    def execute(cls, model, video, scale, tile_size, tile_overlap, max_memory_gb, park_tile_state, color_fix,
                sparse_ratio, kv_ratio, local_range, seed, crf) -> io.NodeOutput:
        from comfy_api.latest import InputImpl

        engine = management.acquire(model)
        kwargs = _engine_kwargs(scale, tile_size, tile_overlap, max_memory_gb, park_tile_state, color_fix,
                                sparse_ratio, kv_ratio, local_range, seed)
        out_dir = os.path.join(folder_paths.get_temp_directory(), "flashvsr")
        os.makedirs(out_dir, exist_ok=True)
        dst = os.path.join(out_dir, f"upscaled_{uuid.uuid4().hex[:12]}.mp4")
        reporter = management.ProgressReporter(_frame_count(video.get_stream_source()), node_id=cls.hidden.unique_id)
        stream = engine.stream(progress=reporter, **kwargs)
        try:
            management.run_interruptible(
                lambda: upscale_video_file(video.get_stream_source(), dst, stream, int(scale), crf=int(crf)), reporter)
        finally:
            if os.path.exists(dst + ".part"):
                os.remove(dst + ".part")
        return io.NodeOutput(InputImpl.VideoFromFile(dst))
