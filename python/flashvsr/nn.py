"""The FlashVSR networks, stateless, each with an explicit state object (for tests and research).

proj = flashvsr.nn.LQProjector("FlashVSR-v1.1/LQ_proj_in.ckpt", dtype="fp32")
state = flashvsr.nn.LQProjState()
proj.stream(first_frame, state)          # priming call: None
tokens = proj.stream(four_frames, state) # [1, h*w, dim]
"""

from ._C import nn as _nn

DiT = _nn.DiT
DiTState = _nn.DiTState
DiTConstants = _nn.DiTConstants
LQProjector = _nn.LQProjector
LQProjState = _nn.LQProjState
TCDecoder = _nn.TCDecoder
TCDecoderState = _nn.TCDecoderState
VAEDecoder = _nn.VAEDecoder
VAEDecodeState = _nn.VAEDecodeState

__all__ = [
    "DiT",
    "DiTState",
    "DiTConstants",
    "LQProjector",
    "LQProjState",
    "TCDecoder",
    "TCDecoderState",
    "VAEDecoder",
    "VAEDecodeState",
]
