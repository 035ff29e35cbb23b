"""What the FlashVSR nodes share: the category, the model type, the upscale options with their defaults,
ranges and tooltips, and the schema of an upscale node. Imported by ``nodes`` and ``video_node`` (which do not
import each other's names)."""

from __future__ import annotations

from comfy_api.latest import io

import flashvsr

CATEGORY = "FlashVSR"
FlashVSRModel = io.Custom("FLASHVSR_MODEL")

# Defaults, ranges, choices and tooltips of the engine's options come from the library's one option table
# (flashvsr._C.option_specs(), C++ flashvsr/options.h), as the CLI's flags and the Python classes do.
SPECS = {s["name"]: s for s in flashvsr._C.option_specs()}
UPSCALE_OPTIONS = (
    "scale",
    "color_fix",
    "sparse_ratio",
    "kv_ratio",
    "local_range",
    "seed",
    "tile_size",
    "tile_overlap",
    "park_tile_state",
)
DEFAULTS = {name: SPECS[name]["default"] for name in UPSCALE_OPTIONS}
COLOR_FIXES = list(SPECS["color_fix"]["choices"])
INT64_MAX = 2**63 - 1


def _tooltip(name: str) -> str:
    text = SPECS[name]["help"]
    return text[0].upper() + text[1:] + "."


def option_input(name: str, **extra) -> io.Input:
    """The ComfyUI input of a library option: its type, default, range or choices, and help as tooltip."""
    s = SPECS[name]
    if s["type"] == "choice":
        return io.Combo.Input(name, options=list(s["choices"]), default=s["default"], tooltip=_tooltip(name), **extra)
    lo, hi, step = s["range"]
    if s["type"] == "int":
        return io.Int.Input(
            name,
            default=s["default"],
            min=int(lo),
            max=min(int(hi), INT64_MAX),
            step=int(step),
            tooltip=_tooltip(name),
            **extra,
        )
    return io.Float.Input(name, default=s["default"], min=lo, max=hi, step=step, tooltip=_tooltip(name), **extra)


def upscale_inputs() -> list[io.Input]:
    """The upscale options shared by the image and the video node, each with its tooltip."""
    return [
        option_input("scale"),
        option_input("tile_size"),
        option_input("tile_overlap"),
        io.Float.Input(
            "max_memory_gb",
            default=0.0,
            min=0.0,
            max=1024.0,
            step=0.5,
            tooltip="Memory budget in GiB for the run (0 = no budget). The engine picks tile size and "
            "overlap to fit it and retries with smaller tiles on out-of-memory.",
        ),
        option_input("park_tile_state"),
        option_input("color_fix"),
        option_input("sparse_ratio"),
        option_input("kv_ratio"),
        option_input("local_range"),
        option_input("seed", control_after_generate=True),
    ]


def engine_kwargs(
    scale, tile_size, tile_overlap, max_memory_gb, park_tile_state, color_fix, sparse_ratio, kv_ratio, local_range, seed
) -> dict:
    return dict(
        scale=int(scale),
        tile_size=int(tile_size),
        tile_overlap=int(tile_overlap),
        max_memory=int(max_memory_gb * 2**30) if max_memory_gb > 0 else None,
        park_tile_state=park_tile_state,
        color_fix=color_fix,
        sparse_ratio=float(sparse_ratio),
        kv_ratio=float(kv_ratio),
        local_range=int(local_range),
        seed=int(seed),
    )


def upscale_schema(
    node_id: str, display_name: str, description: str, media: io.Input, output, extra: tuple = ()
) -> io.Schema:
    """The schema shared by the upscale nodes: model, the media input, the engine options, `extra`."""
    return io.Schema(
        node_id=node_id,
        display_name=display_name,
        category=CATEGORY,
        description=description,
        inputs=[FlashVSRModel.Input("model", tooltip="From FlashVSR Model Loader."), media]
        + upscale_inputs()
        + list(extra),
        outputs=[output],
        hidden=[io.Hidden.unique_id],
    )
