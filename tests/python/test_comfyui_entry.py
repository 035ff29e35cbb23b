"""The repository root works as a ComfyUI custom-node folder: it exports only the V3 entrypoint."""

import asyncio
import importlib.util

import comfy_standins


def _load_custom_node(repo_root):
    # ComfyUI imports custom_nodes/<dir>/__init__.py as a package under the folder's name.
    spec = importlib.util.spec_from_file_location(
        "flashvsr_custom_node", repo_root / "__init__.py", submodule_search_locations=[str(repo_root)]
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_root_exports_only_the_v3_entrypoint(repo_root, monkeypatch, tmp_path):
    mods = comfy_standins.install(monkeypatch, tmp_path / "models", tmp_path / "temp")
    module = _load_custom_node(repo_root)
    assert hasattr(module, "comfy_entrypoint")
    assert not hasattr(module, "NODE_CLASS_MAPPINGS")  # ComfyUI would take the V1 branch otherwise
    extension = asyncio.run(module.comfy_entrypoint())
    assert isinstance(extension, mods["comfy_api.latest"].ComfyExtension)
    nodes = asyncio.run(extension.get_node_list())
    assert [n.define_schema().node_id for n in nodes] == [
        "FlashVSRModelLoader",
        "FlashVSRUpscale",
        "FlashVSRUpscaleVideo",
    ]
