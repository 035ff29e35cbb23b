"""The FlashVSR ComfyUI nodes (V3 schema). Imported lazily by ``comfy_entrypoint`` (needs ComfyUI)."""

from __future__ import annotations

import folder_paths
import torch
import torch.nn.functional as F
from comfy_api.latest import io

from . import management, model_folders
from .schema import CATEGORY, DEFAULTS, SPECS, FlashVSRModel, node_options, upscale_schema

__all__ = ["DEFAULTS", "FlashVSRModelLoader", "FlashVSRUpscale", "node_list"]

NO_MODEL = "(no model found: see tooltip)"


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
                io.Combo.Input(
                    "model",
                    options=labels,
                    default=labels[0],
                    tooltip="A folder with the published FlashVSR files, searched in: "
                    + searched
                    + " (and sub-folders; add more with the 'FlashVSR' key of "
                    "extra_model_paths.yaml). `flashvsr download` fetches the files.",
                ),
                io.Combo.Input(
                    "version",
                    options=["auto"] + SPECS["version"]["choices"],
                    default="auto",
                    tooltip="Model version; auto reads the folder (manifest, name, weights).",
                ),
                io.Combo.Input(
                    "mode",
                    options=SPECS["mode"]["choices"],
                    default=SPECS["mode"]["default"],
                    tooltip=SPECS["mode"]["help"] + ".",
                ),
                io.Combo.Input(
                    "precision",
                    options=SPECS["dtype"]["choices"],
                    default=SPECS["dtype"]["default"],
                    tooltip=SPECS["dtype"]["help"] + ". The output is always float32.",
                ),
                io.Combo.Input(
                    "device",
                    options=["comfy", "cpu", "cuda"],
                    default="comfy",
                    tooltip="Where the engine runs; comfy follows ComfyUI's device (--cpu gives cpu).",
                ),
            ],
            outputs=[FlashVSRModel.Output(display_name="model", tooltip="The FlashVSR engine handle.")],
        )

    @classmethod
    def execute(cls, model, version, mode, precision, device) -> io.NodeOutput:
        model_dir = model_folders.resolve(folder_paths, model)
        patcher = management.make_patcher(model_dir, None if version == "auto" else version, mode, device, precision)
        return io.NodeOutput(patcher)


class FlashVSRUpscale(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return upscale_schema(
            "FlashVSRUpscale",
            "FlashVSR Upscale",
            "One-step diffusion video super-resolution of an IMAGE batch (the batch is the video, in order). N "
            "frames in, N frames out, exactly width*scale x height*scale, float32 in [0,1]. An alpha channel is "
            "upscaled bicubically and kept.",
            io.Image.Input("images", tooltip="Video frames [B,H,W,C] in [0,1], in temporal order."),
            io.Image.Output(display_name="images", tooltip="Upscaled frames, float32 [B,H*s,W*s,C]."),
        )

    @classmethod
    def execute(cls, model, images, **options) -> io.NodeOutput:
        kwargs = node_options("FlashVSRUpscale", options)
        if images.dim() != 4 or images.shape[-1] not in (3, 4) or images.shape[0] == 0:
            raise ValueError(f"FlashVSR Upscale: images must be [B,H,W,3|4] with B >= 1, got {list(images.shape)}")
        if not torch.isfinite(images).all():
            raise ValueError("FlashVSR Upscale: images contain NaN or infinite values")
        engine = management.acquire(model)
        reporter = management.ProgressReporter(images.shape[0], node_id=cls.hidden.unique_id)
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
