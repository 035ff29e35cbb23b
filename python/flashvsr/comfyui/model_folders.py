"""Where ComfyUI keeps FlashVSR model folders (``folder_paths`` key ``FlashVSR``).

A FlashVSR model is a *folder* of published files (DiT, LQ projector, TCDecoder, Wan VAE, prompt), not one
file. ``models/FlashVSR`` and ``models/FlashVSR-v1.1`` (and any other ``models/FlashVSR*`` folder) are
registered with ``folder_paths.add_model_folder_path`` so that a user's ``extra_model_paths.yaml`` entry
``FlashVSR: /big/disk/flashvsr`` is searched too. Each registered path is offered when it holds a model
itself, and so is each of its sub-folders that holds one (``FlashVSR/v1.1-copy``, ...).
"""

from __future__ import annotations

import os

from flashvsr.models import FILES

FOLDER_KEY = "FlashVSR"
DIT_FILE = FILES["dit"]  # the file that marks a model folder


def register(folder_paths) -> None:
    """Register the default folders (idempotent; appends after the user's YAML paths)."""
    models_dir = folder_paths.models_dir
    defaults = [os.path.join(models_dir, "FlashVSR"), os.path.join(models_dir, "FlashVSR-v1.1")]
    try:
        defaults += [
            os.path.join(models_dir, name)
            for name in sorted(os.listdir(models_dir))
            if name.startswith("FlashVSR") and os.path.isdir(os.path.join(models_dir, name))
        ]
    except OSError:
        pass
    known = (
        set(folder_paths.get_folder_paths(FOLDER_KEY)) if FOLDER_KEY in folder_paths.folder_names_and_paths else set()
    )
    for path in defaults:
        if path not in known:
            folder_paths.add_model_folder_path(FOLDER_KEY, path)
            known.add(path)


def _is_model_dir(path: str) -> bool:
    return os.path.isfile(os.path.join(path, DIT_FILE))


def available(folder_paths) -> dict[str, str]:
    """{label: absolute folder} for every model folder found, in search order (first label wins)."""
    found: dict[str, str] = {}
    for root in folder_paths.get_folder_paths(FOLDER_KEY):
        if not os.path.isdir(root):
            continue
        base = os.path.basename(os.path.normpath(root))
        if _is_model_dir(root):
            found.setdefault(base, root)
        try:
            subdirs = sorted(os.listdir(root))
        except OSError:
            continue
        for sub in subdirs:
            path = os.path.join(root, sub)
            if os.path.isdir(path) and _is_model_dir(path):
                found.setdefault(f"{base}/{sub}", path)
    return found


def resolve(folder_paths, label: str) -> str:
    """The folder behind a combo label, or a ValueError that says where models are looked for."""
    found = available(folder_paths)
    if label in found:
        return found[label]
    searched = ", ".join(folder_paths.get_folder_paths(FOLDER_KEY)) or "(no folder registered)"
    raise ValueError(
        f"FlashVSR model '{label}' not found. Put the published files ({', '.join(FILES.values())}) "
        f"in one of: {searched} "
        "(`flashvsr download --to <folder>` fetches them), then refresh the browser."
    )
