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

Errors raised by the engine are subclasses of :class:`flashvsr.Error` (a ``RuntimeError``):
:class:`InputError` (bad input), :class:`ModelError` (model folder/checkpoint problems) and
:class:`Cancelled` (a progress callback returned False). Compute releases the GIL.
"""

import torch  # noqa: F401  (loads libtorch and its CUDA libraries before the native module)

from . import _C
from ._C import Cancelled, Engine, Error, InputError, ModelError, OutOfMemory, Stream, memory_report
from . import io, models, nn, testing  # noqa: F401

__version__: str = _C.__version__

__all__ = [
    "__version__", "build_info", "load", "Engine", "Stream",
    "Error", "InputError", "ModelError", "Cancelled", "OutOfMemory", "memory_report", "io", "models", "nn", "testing",
]


def build_info() -> dict:
    """Versions and capabilities of this build.

    Keys: ``version``, ``torch``, ``cuda_compiled`` (bool: CUDA kernels in this build), ``cuda_archs``,
    ``cuda_available`` (bool: a CUDA device is usable now), ``cuda_device_count``, ``ffmpeg`` (dict of
    libav* runtime versions), ``opencv``, ``compiler``.
    """
    return _C.build_info()


def load(
    model_dir,
    version: str | None = None,
    mode: str = "tiny",
    device: str = "auto",
    dtype: str = "auto",
    legacy_v10_cache_order: bool = False,
) -> Engine:
    """Load a FlashVSR model folder (``FlashVSR/`` = v1.0, ``FlashVSR-v1.1/``; or pass ``version``).

    ``mode``: "tiny" / "tiny-long" (TCDecoder) or "full" (Wan VAE). ``device``: "auto", "cpu", "cuda",
    "cuda:N". ``dtype``: "auto" (bf16 on CUDA, fp32 on CPU), "bf16", "fp16", "fp32", or "int8" (opt-in: the
    DiT's linear layers in int8, everything else as "auto"; its quality on the real weights is unmeasured).
    ``engine.close()`` (or dropping the last reference) frees the weights.
    """
    return Engine(str(model_dir), version, mode, device, dtype, legacy_v10_cache_order)
