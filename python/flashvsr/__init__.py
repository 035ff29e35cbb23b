"""flashvsr — FlashVSR streaming video super-resolution on a C++/LibTorch engine.

    import flashvsr
    print(flashvsr.__version__, flashvsr.build_info())

Errors raised by the engine are subclasses of :class:`flashvsr.Error` (a ``RuntimeError``):
:class:`InputError` (bad input), :class:`ModelError` (model folder/checkpoint problems) and
:class:`Cancelled` (a progress callback or cancel request stopped the work).
"""

import torch  # noqa: F401  (loads libtorch and its CUDA libraries before the native module)

from . import _C
from ._C import Cancelled, Error, InputError, ModelError
from . import io  # noqa: F401

__version__: str = _C.__version__

__all__ = ["__version__", "build_info", "Error", "InputError", "ModelError", "Cancelled", "io"]


def build_info() -> dict:
    """Versions and capabilities of this build.

    Keys: ``version``, ``torch``, ``cuda_compiled`` (bool: CUDA kernels in this build), ``cuda_archs``,
    ``cuda_available`` (bool: a CUDA device is usable now), ``cuda_device_count``, ``ffmpeg`` (dict of
    libav* runtime versions), ``opencv``, ``compiler``.
    """
    return _C.build_info()
