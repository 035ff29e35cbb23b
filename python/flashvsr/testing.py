"""Helpers for tests, demos and benchmarks."""

from __future__ import annotations

from ._C import models as _m

__all__ = ["make_random_weights"]


def make_random_weights(
    dir: str, size: str = "tiny", version: str = "v1.1", seed: int = 0, prompt_tokens: int = 512
) -> list[str]:
    """Write random FlashVSR weights into ``dir`` in the exact published formats and key names
    (safetensors DiT, torch.save state dicts, the bare prompt tensor, plus flashvsr_manifest.json).
    ``size``: "tiny" (fast tests), "small" or "full" (the real model's shapes, ~7 GB). Returns the paths."""
    return _m.make_test_weights(str(dir), size, version, seed, prompt_tokens)
