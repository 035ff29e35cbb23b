"""The repository root works as a ComfyUI custom-node folder: it exports only the V3 entrypoint."""

import asyncio
import importlib.util
import sys
import types


def _install_standin_comfy_api(monkeypatch):
    latest = types.ModuleType("comfy_api.latest")

    class ComfyExtension:  # the stand-in of comfy_api.latest.ComfyExtension
        async def on_load(self):
            return None

        async def get_node_list(self):
            raise NotImplementedError

    latest.ComfyExtension = ComfyExtension
    pkg = types.ModuleType("comfy_api")
    pkg.latest = latest
    monkeypatch.setitem(sys.modules, "comfy_api", pkg)
    monkeypatch.setitem(sys.modules, "comfy_api.latest", latest)
    return ComfyExtension


def _load_custom_node(repo_root):
    # ComfyUI imports custom_nodes/<dir>/__init__.py as a package under the folder's name.
    spec = importlib.util.spec_from_file_location(
        "flashvsr_custom_node", repo_root / "__init__.py", submodule_search_locations=[str(repo_root)]
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_root_exports_only_the_v3_entrypoint(repo_root, monkeypatch):
    base = _install_standin_comfy_api(monkeypatch)
    module = _load_custom_node(repo_root)
    assert hasattr(module, "comfy_entrypoint")
    assert not hasattr(module, "NODE_CLASS_MAPPINGS")  # ComfyUI would take the V1 branch otherwise
    extension = asyncio.run(module.comfy_entrypoint())
    assert isinstance(extension, base)
    nodes = asyncio.run(extension.get_node_list())
    assert isinstance(nodes, list)
