"""What the FlashVSR nodes share: the category, the model type, the upscale options with their defaults,
ranges and tooltips, and the schema of an upscale node. Imported by ``nodes`` and ``video_node`` (which do not
import each other's names)."""

from __future__ import annotations

from comfy_api.latest import io

CATEGORY = "FlashVSR"
FlashVSRModel = io.Custom("FLASHVSR_MODEL")

# Defaults and ranges of the engine's options, as the Python API has them (a test compares the defaults with
# the compiled signature of flashvsr.Engine.upscale).
DEFAULTS = {"scale": 4, "color_fix": "adain", "sparse_ratio": 2.0, "kv_ratio": 3.0, "local_range": 11, "seed": 0,
            "tile_size": 0, "tile_overlap": 0, "park_tile_state": "auto"}
COLOR_FIXES = ["adain", "wavelet", "none"]


def upscale_inputs() -> list[io.Input]:
    """The upscale options shared by the image and the video node, each with its tooltip."""
    return [
        io.Int.Input("scale", default=DEFAULTS["scale"], min=2, max=4, step=1,
                     tooltip="Upscale factor: output is exactly width*scale x height*scale, one frame out per frame in."),
        io.Int.Input("tile_size", default=DEFAULTS["tile_size"], min=0, max=4096, step=16,
                     tooltip="Tile size in input pixels (0 = automatic: one tile, or what max_memory_gb allows). "
                             "Each tile is an independent stream; tiles are blended with no seams or dark borders."),
        io.Int.Input("tile_overlap", default=DEFAULTS["tile_overlap"], min=0, max=1024, step=8,
                     tooltip="Overlap between neighbouring tiles in input pixels (0 = automatic)."),
        io.Float.Input("max_memory_gb", default=0.0, min=0.0, max=1024.0, step=0.5,
                       tooltip="Memory budget in GiB for the run (0 = no budget). The engine picks tile size and "
                               "overlap to fit it and retries with smaller tiles on out-of-memory."),
        io.Combo.Input("park_tile_state", options=["auto", "on", "off"], default=DEFAULTS["park_tile_state"],
                       tooltip="Keep each tile's caches in host memory while other tiles compute (GPU): lets "
                               "max_memory_gb go below the whole frame's state at the cost of copies. auto = "
                               "when the budget needs it."),
        io.Combo.Input("color_fix", options=COLOR_FIXES, default=DEFAULTS["color_fix"],
                       tooltip="Colour correction of the output against the input: adain (per-channel mean/std), "
                               "wavelet (low frequencies from the input), none."),
        io.Float.Input("sparse_ratio", default=DEFAULTS["sparse_ratio"], min=0.5, max=4.0, step=0.1,
                       tooltip="Sparse attention budget (official default 2.0; 1.5 is faster, slightly softer)."),
        io.Float.Input("kv_ratio", default=DEFAULTS["kv_ratio"], min=1.0, max=4.0, step=0.5,
                       tooltip="How many past chunks of keys/values the attention keeps (official default 3.0)."),
        io.Int.Input("local_range", default=DEFAULTS["local_range"], min=3, max=31, step=2,
                     tooltip="Local attention window in latent blocks (official: 9 or 11)."),
        io.Int.Input("seed", default=DEFAULTS["seed"], min=0, max=2**63 - 1, control_after_generate=True,
                     tooltip="Noise seed. Noise is keyed by pixel position, so tiling does not change it."),
    ]


def engine_kwargs(scale, tile_size, tile_overlap, max_memory_gb, park_tile_state, color_fix, sparse_ratio, kv_ratio,
                   local_range, seed) -> dict:
    return dict(scale=int(scale), tile_size=int(tile_size), tile_overlap=int(tile_overlap),
                max_memory=int(max_memory_gb * 2**30) if max_memory_gb > 0 else None,
                park_tile_state=park_tile_state, color_fix=color_fix,
                sparse_ratio=float(sparse_ratio), kv_ratio=float(kv_ratio), local_range=int(local_range),
                seed=int(seed))


def upscale_schema(node_id: str, display_name: str, description: str, media: io.Input, output,
                   extra: tuple = ()) -> io.Schema:
    """The schema shared by the upscale nodes: model, the media input, the engine options, `extra`."""
    return io.Schema(node_id=node_id, display_name=display_name, category=CATEGORY, description=description,
                     inputs=[FlashVSRModel.Input("model", tooltip="From FlashVSR Model Loader."), media]
                            + upscale_inputs() + list(extra),
                     outputs=[output], hidden=[io.Hidden.unique_id])
