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
# The upscale nodes' option inputs, in their order: upscale table rows, and max_memory_gb (max_memory in GiB).
UPSCALE_INPUTS = (
    "scale",
    "tile_size",
    "tile_overlap",
    "max_memory_gb",
    "park_tile_state",
    "color_fix",
    "sparse_ratio",
    "kv_ratio",
    "local_range",
    "seed",
)
UPSCALE_OPTIONS = tuple(name for name in UPSCALE_INPUTS if name in SPECS)
DEFAULTS = {name: SPECS[name]["default"] for name in UPSCALE_OPTIONS}
COLOR_FIXES = list(SPECS["color_fix"]["choices"])
INT64_MAX = 2**63 - 1


def _tooltip(name: str) -> str:
    text = SPECS[name]["help"]
    return text[0].upper() + text[1:] + "."


def option_input(name: str, **extra) -> io.Input:
    """The ComfyUI input of a library option: its type, default, range or choices, and help as tooltip
    (``extra`` adds to them or replaces them: a node's own tooltip; None drops one)."""
    s = SPECS[name]
    args = {"default": s["default"], "tooltip": _tooltip(name)}
    if s["type"] == "choice":
        kind, args["options"] = io.Combo, list(s["choices"])
    else:
        lo, hi, step = s["range"]
        if s["type"] == "int":
            kind, lo, hi, step = io.Int, int(lo), min(int(hi), INT64_MAX), int(step)
        else:
            kind = io.Float
        args.update(min=lo, max=hi, step=step)
    args.update(extra)
    return kind.Input(name, **{k: v for k, v in args.items() if v is not None})


def upscale_inputs() -> list[io.Input]:
    """The upscale options shared by the image and the video node, each with its tooltip."""
    max_memory_gb = io.Float.Input(
        "max_memory_gb",
        default=0.0,
        min=0.0,
        max=1024.0,
        step=0.5,
        tooltip="Memory budget in GiB for the run (0 = no budget). The engine picks tile size and "
        "overlap to fit it and retries with smaller tiles on out-of-memory.",
    )
    own = {"seed": {"control_after_generate": True}}
    return [
        max_memory_gb if name == "max_memory_gb" else option_input(name, **own.get(name, {})) for name in UPSCALE_INPUTS
    ]


def node_options(node: str, options: dict, extra: tuple[str, ...] = ()) -> dict:
    """The library keywords of an upscale node's option inputs (``execute(cls, model, media, **options)``),
    through the option table: an input the node does not have is a TypeError naming it; each value takes its
    option's type (ComfyUI may hand an int for a float); ``max_memory_gb`` becomes ``max_memory`` (bytes, None
    for 0); the upscale options are checked by flashvsr.UpscaleOptions (a bad value: flashvsr.InputError).
    ``extra``: the node's own inputs of the table (the video node's crf)."""
    unknown = sorted(set(options) - set(UPSCALE_INPUTS) - set(extra))
    if unknown:
        raise TypeError(f"{node}.execute() got unexpected input(s): {', '.join(unknown)}")
    kwargs = {}
    for name, value in options.items():
        if name == "max_memory_gb":
            kwargs["max_memory"] = int(value * 2**30) if value > 0 else None
            continue
        kind = SPECS[name]["type"]
        kwargs[name] = int(value) if kind == "int" else float(value) if kind == "float" else value
    flashvsr.UpscaleOptions(**{k: v for k, v in kwargs.items() if SPECS[k]["group"] == "upscale"})
    return kwargs


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
