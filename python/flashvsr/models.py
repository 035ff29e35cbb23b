"""Checkpoint contracts: parameter manifests, DiffSynth key hashes, model-folder inspection."""

from __future__ import annotations

import json

from ._C import models as _m

__all__ = ["FILES", "parameter_manifest", "key_hash", "inspect", "load_tensors"]

#: The published file names of a model folder: {"dit", "lq_proj", "tcdecoder", "vae", "prompt"} -> name.
FILES: dict[str, str] = dict(_m.FILES)


def parameter_manifest(component: str, size: str = "full") -> list[tuple[str, tuple[int, ...]]]:
    """(name, shape) of every tensor of ``component`` ("dit", "lq_proj", "tcdecoder", "vae" -- the VAE's
    raw file keys, encoder included) at ``size`` ("tiny", "small", "full"), without allocating weights."""
    return _m.parameter_manifest(component, size)


def key_hash(manifest) -> str:
    """DiffSynth's model-detection MD5 of a manifest [(name, shape), ...]."""
    return _m.key_hash([(name, list(shape)) for name, shape in manifest])


def inspect(model_dir: str, version: str | None = None) -> dict:
    """What a model folder holds: files, version, tensor/parameter counts, dtypes, derived configuration."""
    return json.loads(_m.inspect_json(str(model_dir), version))


def load_tensors(path: str) -> dict:
    """Tensors of a .safetensors or torch.save file, read by the engine's own readers (no pickle code runs)."""
    return _m.load_tensors(str(path))
