"""The FlashVSR ComfyUI nodes (V3 schema). Imported lazily by ``comfy_entrypoint`` (needs ComfyUI)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

import folder_paths
from comfy_api.latest import io

from . import management, model_folders

CATEGORY = "FlashVSR"
FlashVSRModel = io.Custom("FLASHVSR_MODEL")
NO_MODEL = "(no model found: see tooltip)"

# Defaults and ranges of the engine's options, as the Python API has them (a test compares the defaults with
# the compiled signature of flashvsr.Engine.upscale).
DEFAULTS = {"scale": 4, "color_fix": "adain", "sparse_ratio": 2.0, "kv_ratio": 3.0, "local_range": 11, "seed": 0,
            "tile_size": 0, "tile_overlap": 0, "park_tile_state": "auto"}
COLOR_FIXES = ["adain", "wavelet", "none"]


def _options() -> list[io.Input]:
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


def _engine_kwargs(scale, tile_size, tile_overlap, max_memory_gb, park_tile_state, color_fix, sparse_ratio, kv_ratio,
                   local_range, seed) -> dict:
    return dict(scale=int(scale), tile_size=int(tile_size), tile_overlap=int(tile_overlap),
                max_memory=int(max_memory_gb * 2**30) if max_memory_gb > 0 else None,
                park_tile_state=park_tile_state, color_fix=color_fix,
                sparse_ratio=float(sparse_ratio), kv_ratio=float(kv_ratio), local_range=int(local_range),
                seed=int(seed))


class FlashVSRModelLoader(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        labels = list(model_folders.available(folder_paths)) or [NO_MODEL]
        searched = ", ".join(folder_paths.get_folder_paths(model_folders.FOLDER_KEY))
        return io.Schema(
            node_id="FlashVSRModelLoader",
            display_name="FlashVSR Model Loader",
            category=CATEGORY,
            description="Loads a FlashVSR model folder for the FlashVSR Upscale nodes. The weights are registered "
                        "with ComfyUI's model management: 'Unload models' / 'Free memory' release them.",
            inputs=[
                io.Combo.Input("model", options=labels, default=labels[0],
                               tooltip="A folder with the published FlashVSR files, searched in: " + searched
                                       + " (and sub-folders; add more with the 'FlashVSR' key of "
                                       "extra_model_paths.yaml). `flashvsr download` fetches the files."),
                io.Combo.Input("version", options=["auto", "v1.0", "v1.1"], default="auto",
                               tooltip="Model version; auto reads the folder (manifest, name, weights)."),
                io.Combo.Input("mode", options=["tiny", "tiny-long", "full"], default="tiny",
                               tooltip="Decoder: tiny / tiny-long use the fast TCDecoder, full the Wan VAE "
                                       "(sharper, much slower, more memory)."),
                io.Combo.Input("precision", options=["auto", "bf16", "fp16", "fp32", "int8"], default="auto",
                               tooltip="Compute precision (auto: bf16 on CUDA, fp32 on CPU). int8 (opt-in) "
                                       "runs the DiT's linear layers in int8 with half the weight memory of "
                                       "bf16; its quality on the real weights is unmeasured. The output is "
                                       "always float32."),
                io.Combo.Input("device", options=["comfy", "cpu", "cuda"], default="comfy",
                               tooltip="Where the engine runs; comfy follows ComfyUI's device (--cpu gives cpu)."),
            ],
            outputs=[FlashVSRModel.Output(display_name="model", tooltip="The FlashVSR engine handle.")],
        )

    @classmethod
    def execute(cls, model, version, mode, precision, device) -> io.NodeOutput:
        model_dir = model_folders.resolve(folder_paths, model)
        patcher = management.make_patcher(model_dir, None if version == "auto" else version, mode, device, precision)
        return io.NodeOutput(patcher)


def upscale_schema(node_id: str, display_name: str, description: str, media: io.Input, output,
                   extra: tuple = ()) -> io.Schema:
    """The schema shared by the upscale nodes: model, the media input, the engine options, `extra`."""
    return io.Schema(node_id=node_id, display_name=display_name, category=CATEGORY, description=description,
                     inputs=[FlashVSRModel.Input("model", tooltip="From FlashVSR Model Loader."), media]
                            + _options() + list(extra),
                     outputs=[output], hidden=[io.Hidden.unique_id])


class FlashVSRUpscale(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return upscale_schema(
            "FlashVSRUpscale", "FlashVSR Upscale",
            "One-step diffusion video super-resolution of an IMAGE batch (the batch is the video, in order). N "
            "frames in, N frames out, exactly width*scale x height*scale, float32 in [0,1]. An alpha channel is "
            "upscaled bicubically and kept.",
            io.Image.Input("images", tooltip="Video frames [B,H,W,C] in [0,1], in temporal order."),
            io.Image.Output(display_name="images", tooltip="Upscaled frames, float32 [B,H*s,W*s,C]."))

    @classmethod
    def execute(cls, model, images, scale, tile_size, tile_overlap, max_memory_gb, park_tile_state, color_fix,
                sparse_ratio, kv_ratio, local_range, seed) -> io.NodeOutput:
        if images.dim() != 4 or images.shape[-1] not in (3, 4) or images.shape[0] == 0:
            raise ValueError(f"FlashVSR Upscale: images must be [B,H,W,3|4] with B >= 1, got {list(images.shape)}")
        if not torch.isfinite(images).all():
            raise ValueError("FlashVSR Upscale: images contain NaN or infinite values")
        engine = management.acquire(model)
        reporter = management.ProgressReporter(images.shape[0], node_id=cls.hidden.unique_id)
        kwargs = _engine_kwargs(scale, tile_size, tile_overlap, max_memory_gb, park_tile_state, color_fix,
                                sparse_ratio, kv_ratio, local_range, seed)
        rgb = images[..., :3].float().contiguous()
        out = management.run_interruptible(lambda: engine.upscale(rgb, progress=reporter, **kwargs), reporter)
        if images.shape[-1] == 4:
            alpha = images[..., 3:].float().movedim(-1, 1)  # [B,H,W,1] -> [B,1,H,W]
            alpha = F.interpolate(alpha, size=out.shape[1:3], mode="bicubic", align_corners=False).movedim(1, -1)
            out = torch.cat([out, alpha], dim=-1)  # [B,H*s,W*s,3] + [B,H*s,W*s,1] -> [B,H*s,W*s,4]
        out = out.to(device=management.intermediate_device(), dtype=torch.float32).clamp_(0.0, 1.0).contiguous()
        return io.NodeOutput(out)


def node_list() -> list[type[io.ComfyNode]]:
    nodes: list[type[io.ComfyNode]] = [FlashVSRModelLoader, FlashVSRUpscale]
    if hasattr(io, "Video"):  # ComfyUI versions with a VIDEO type get the streaming video node
        from .video_node import FlashVSRUpscaleVideo

        nodes.append(FlashVSRUpscaleVideo)
    return nodes
