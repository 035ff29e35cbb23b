"""ComfyUI custom-node entry: lets a clone of this repository live in ComfyUI/custom_nodes/.

The nodes are part of the installed `flashvsr` package (the compiled engine cannot be imported from the
source tree). Install it into ComfyUI's Python once, from this folder:

    python -m pip install --no-build-isolation .

(see README.md for the prerequisites). Only the V3 `comfy_entrypoint` is exported.
"""

try:
    from flashvsr.comfyui import comfy_entrypoint  # noqa: F401
except ImportError as exc:  # pragma: no cover - message for ComfyUI's log
    raise ImportError(
        "flashvsr custom node: the 'flashvsr' package is not installed in this Python "
        f"({exc}). Run `python -m pip install --no-build-isolation .` in the flashvsr folder "
        "with ComfyUI's Python (torch must already be installed there)."
    ) from exc

__all__ = ["comfy_entrypoint"]
