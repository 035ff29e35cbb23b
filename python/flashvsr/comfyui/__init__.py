"""ComfyUI integration (V3 node schema).

ComfyUI loads the repository's root ``__init__.py``, which re-exports :func:`comfy_entrypoint` from here.
Only the V3 entrypoint is exported (no ``NODE_CLASS_MAPPINGS``): ComfyUI takes the V1 branch whenever
that name exists. ComfyUI's modules are imported lazily, so this module imports without ComfyUI.

Nodes (category "FlashVSR"): FlashVSR Model Loader -> FLASHVSR_MODEL; FlashVSR Upscale (IMAGE -> IMAGE);
FlashVSR Upscale Video (VIDEO -> VIDEO, streaming, audio kept) where the ComfyUI version has VIDEO.
Layout: ``model_folders`` (folder_paths registration and discovery), ``management`` (the only code that
touches comfy.model_management / ModelPatcher / ProgressBar), ``schema`` (what the upscale nodes share, read
from the library's option table), ``nodes`` and ``video_node`` (the nodes; ``video_node`` runs
``flashvsr.upscale_file``).
"""


def _node_list() -> list:
    import folder_paths

    from . import model_folders

    model_folders.register(folder_paths)
    from . import nodes

    _register_routes()
    return nodes.node_list()


def _register_routes() -> None:
    """GET /flashvsr/status: loaded engines and process memory (for users and the end-to-end test)."""
    try:
        from server import PromptServer
    except ImportError:  # not inside a ComfyUI server (unit tests)
        return
    instance = getattr(PromptServer, "instance", None)
    if instance is None or getattr(instance, "_flashvsr_routes", False):
        return
    from aiohttp import web

    import flashvsr

    from . import management

    @instance.routes.get("/flashvsr/status")
    async def _status(request):
        return web.json_response(
            {
                "version": flashvsr.__version__,
                "loaded_engines": management.loaded_engine_count(),
                "offloaded_engines": management.offloaded_engine_count(),
                "memory": flashvsr.memory_report(),
            }
        )

    instance._flashvsr_routes = True


async def comfy_entrypoint():
    from comfy_api.latest import ComfyExtension

    class FlashVSRExtension(ComfyExtension):
        async def get_node_list(self) -> list:
            return _node_list()

    return FlashVSRExtension()
