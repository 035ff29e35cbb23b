"""ComfyUI integration (V3 node schema).

ComfyUI loads the repository's root ``__init__.py``, which re-exports :func:`comfy_entrypoint` from here.
Only the V3 entrypoint is exported (no ``NODE_CLASS_MAPPINGS``): ComfyUI takes the V1 branch whenever
that name exists. ``comfy_api`` is imported lazily so that this module imports without ComfyUI.
The nodes themselves arrive with the "Python API and ComfyUI nodes" issue; until then the extension
registers no node.
"""


def _node_list() -> list:
    return []


async def comfy_entrypoint():
    from comfy_api.latest import ComfyExtension

    class FlashVSRExtension(ComfyExtension):
        async def get_node_list(self) -> list:
            return _node_list()

    return FlashVSRExtension()
