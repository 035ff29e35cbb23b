"""flashvsr — FlashVSR streaming video super-resolution on a C++/LibTorch engine.

    import flashvsr
    engine = flashvsr.load("models/FlashVSR-v1.1", mode="tiny")     # device/dtype "auto"
    out = engine.upscale(frames, scale=4)   # [F,H,W,3] float in [0,1] or uint8 -> float32 [F,4H,4W,3]

    stream = engine.stream(scale=4)         # long videos in bounded memory
    for batch in batches:
        stream.push(batch)
        consume(stream.pull())
    stream.finish()
    consume(stream.pull())                  # N frames in, N frames out

    report = flashvsr.upscale_file("in.mp4", "out.mp4", model_dir="models/FlashVSR-v1.1", scale=2)

Errors raised by the engine are subclasses of :class:`flashvsr.Error` (a ``RuntimeError``):
:class:`InputError` (bad input), :class:`ModelError` (model folder/checkpoint problems) and
:class:`Cancelled` (a progress callback returned False). Compute releases the GIL.
"""

import torch  # noqa: F401  (loads libtorch and its CUDA libraries before the native module)

from . import _C, io, models, nn, testing  # noqa: F401
from ._C import (
    Cancelled,
    CancelToken,
    Engine,
    Error,
    InputError,
    ModelError,
    OutOfMemory,
    Stream,
    TranscodeProgress,
    memory_report,
)
from .options import EngineOptions, UpscaleOptions

__version__: str = _C.__version__

__all__ = [
    "__version__",
    "build_info",
    "load",
    "upscale_file",
    "Engine",
    "Stream",
    "CancelToken",
    "TranscodeProgress",
    "EngineOptions",
    "UpscaleOptions",
    "Error",
    "InputError",
    "ModelError",
    "Cancelled",
    "OutOfMemory",
    "memory_report",
    "io",
    "models",
    "nn",
    "testing",
]


def build_info() -> dict:
    """Versions and capabilities of this build.

    Keys: ``version``, ``torch``, ``cuda_compiled`` (bool: CUDA kernels in this build), ``cuda_archs``,
    ``cuda_available`` (bool: a CUDA device is usable now), ``cuda_device_count``, ``ffmpeg`` (dict of
    libav* runtime versions), ``opencv``, ``compiler``.
    """
    return _C.build_info()


def load(model_dir, **options) -> Engine:
    """Load a FlashVSR model folder (``FlashVSR/`` = v1.0, ``FlashVSR-v1.1/``; or pass ``version``).

    Keyword options: the engine option table (:class:`EngineOptions`; an unknown keyword or a wrong type
    raises TypeError, a bad value flashvsr.InputError): ``version`` (None: the folder's manifest, else its
    name), ``mode``: "tiny" / "tiny-long" (TCDecoder) or "full" (Wan VAE); ``device``: "auto", "cpu",
    "cuda", "cuda:N"; ``dtype``: "auto" (bf16 on CUDA, fp32 on CPU), "bf16", "fp16", "fp32", or "int8"
    (opt-in: the DiT's linear layers in int8, everything else as "auto"; its quality on the real weights is
    unmeasured); ``legacy_v10_cache_order``. ``engine.close()`` (or dropping the last reference) frees the
    weights.
    """
    return Engine(model_dir, **options)


def upscale_file(input, output, **options) -> dict:
    """Upscale a video file (or image sequence) to a file: the CLI's ``flashvsr upscale`` from Python.

    ``input``: a video file, a folder of images or a pattern like ``in/%05d.png``; ``output``: a video file
    (the container follows the extension), a pattern like ``out/%05d.png`` or a folder ``out/``. Decoding,
    the engine and encoding run on their own threads with the GIL released, in bounded memory; audio and
    subtitles are copied, every frame keeps its timestamp, colour tags are written, 10-bit stays 10-bit.
    The output is written under a temporary name and renamed when complete; an existing output is replaced
    only with ``overwrite=True``; an error leaves nothing behind.

    Options (keywords: the three option tables, ``flashvsr._C.option_specs()``; the CLI's flags without
    dashes, see ``flashvsr upscale --help``; ``UPSCALE_FILE_OPTIONS`` lists them; an unknown keyword or a
    wrong type raises TypeError, a bad value flashvsr.InputError):

    - model: ``model_dir`` (default: the CLI's search order), ``version``, ``mode``, ``device``, ``dtype``,
      ``legacy_v10_cache_order`` -- or ``engine=`` a loaded :class:`Engine` (then these are not used);
    - upscale: ``scale``, ``color_fix``, ``sparse_ratio``, ``kv_ratio``, ``local_range``, ``seed``,
      ``tile_size``, ``tile_overlap``, ``max_memory`` (bytes), ``park_tile_state``;
    - video output: ``codec`` (CLI ``-c:v``, default "libx264"), ``pix_fmt``, ``crf`` (18),
      ``encoder_options`` (dict, CLI ``-e``), ``copy_audio``, ``copy_subtitles`` (True);
    - video input: ``start``, ``end`` (seconds), ``max_pixels``;
    - image sequences: ``fps`` (input rate, "24000/1001" or a number), ``start_number``, ``bit_depth``;
    - the job: ``overwrite`` (False), ``keep_partial`` (True: a cancelled job keeps the frames done in
      ``OUT.partial.EXT``), ``batch`` (4), ``pipeline_depth`` (2);
    - one segment of the input (scale-out, docs/SCALE_OUT.md; video output only): ``first_chunk``, ``end_chunk``
      (-1: to the end), ``warmup_chunks`` (-1: the replay depth): frames before the segment's warm-up are
      decoded and dropped, the warm-up's output is discarded, only the segment's frames are written.

    ``progress``: called with a :class:`TranscodeProgress` (frames_done, frames_total, fps, eta_s, elapsed_s,
    final) on the calling thread; returning False cancels. ``cancel``: a :class:`CancelToken`. ``verbose``:
    FFmpeg's own log lines on stderr (the CLI's ``--verbose``). A cancelled job raises :class:`Cancelled`;
    Ctrl-C raises KeyboardInterrupt; both within one chunk, never leaving ``output`` itself.

    Returns the report (the CLI's ``--report`` keys: status, output, frames_in, frames_out, sizes, pix_fmt,
    timings_s, fps, peak_rss_bytes, model, warnings, ...) plus ``messages`` (notes and warnings).
    """
    return _C.upscale_file(input, output, **options)


UPSCALE_FILE_OPTIONS: list = list(_C.UPSCALE_FILE_OPTIONS)
