"""Small stand-ins for the parts of ComfyUI the nodes use, written for these tests (no ComfyUI code).

They mirror the behaviour of ComfyUI 0.3.64: ``folder_paths``
(add_model_folder_path / get_folder_paths), ``comfy.model_management`` (load_models_gpu registers a patcher
and loads it; unload_all_models detaches every registered model; the interrupt flag protocol),
``comfy.model_patcher.ModelPatcher`` (load -> model.to(load_device) + ON_LOAD; detach -> model.to(offload)
+ ON_DETACH), ``comfy.utils.ProgressBar`` (the hook checks the interrupt flag on every update) and
``comfy_api.latest`` (io schema classes that keep what they are given).
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import types


class InterruptProcessingException(Exception):
    pass


class OOMException(RuntimeError):  # ComfyUI's OOM_EXCEPTION is torch.cuda.OutOfMemoryError
    pass


def _module(name, **attrs):
    m = types.ModuleType(name)
    m.__dict__.update(attrs)
    return m


def build(models_dir: str, temp_dir: str):
    """A dict {module name: module} of fresh stand-ins."""
    # ---- folder_paths
    folder_names_and_paths: dict = {}

    def add_model_folder_path(name, path, is_default=False):
        paths, exts = folder_names_and_paths.setdefault(name, ([], set()))
        if path in paths:
            paths.remove(path)
        if is_default:
            paths.insert(0, path)
        else:
            paths.append(path)

    folder_paths = _module(
        "folder_paths",
        models_dir=models_dir,
        folder_names_and_paths=folder_names_and_paths,
        add_model_folder_path=add_model_folder_path,
        get_folder_paths=lambda name: list(folder_names_and_paths[name][0]),
        get_temp_directory=lambda: temp_dir,
    )

    # ---- comfy.model_management
    state = {"interrupt": False, "loaded": []}
    import torch

    def processing_interrupted():
        return state["interrupt"]

    def interrupt_current_processing(value=True):
        state["interrupt"] = value

    def throw_exception_if_processing_interrupted():
        if state["interrupt"]:
            state["interrupt"] = False
            raise InterruptProcessingException()

    def load_models_gpu(models, **_):
        for p in models:
            if p not in state["loaded"]:
                p.load(p.load_device)
                state["loaded"].insert(0, p)

    def unload_all_models():
        while state["loaded"]:
            state["loaded"].pop().detach(True)

    mm = _module(
        "comfy.model_management",
        InterruptProcessingException=InterruptProcessingException,
        OOM_EXCEPTION=OOMException,
        processing_interrupted=processing_interrupted,
        interrupt_current_processing=interrupt_current_processing,
        throw_exception_if_processing_interrupted=throw_exception_if_processing_interrupted,
        load_models_gpu=load_models_gpu,
        unload_all_models=unload_all_models,
        get_torch_device=lambda: torch.device("cpu"),
        intermediate_device=lambda: torch.device("cpu"),
        current_loaded_models=state["loaded"],
        _state=state,
    )

    # ---- comfy.patcher_extension / comfy.model_patcher
    class CallbacksMP:
        ON_LOAD = "on_load"
        ON_DETACH = "on_detach"

    class ModelPatcher:
        def __init__(self, model, load_device, offload_device, size=0, weight_inplace_update=False):
            self.model, self.load_device, self.offload_device, self.size = model, load_device, offload_device, size
            self.callbacks = {CallbacksMP.ON_LOAD: [], CallbacksMP.ON_DETACH: []}
            self.model.device = offload_device
            self.model.model_loaded_weight_memory = 0

        def add_callback(self, kind, fn):
            self.callbacks[kind].append(fn)

        def model_size(self):
            return self.size

        def load(self, device_to):
            self.model.to(device_to)
            self.model.device = device_to
            self.model.model_loaded_weight_memory = self.size
            for fn in self.callbacks[CallbacksMP.ON_LOAD]:
                fn(self, device_to, 0, False, True)

        def detach(self, unpatch_all=True):
            self.model.to(self.offload_device)
            self.model.model_loaded_weight_memory = 0
            for fn in self.callbacks[CallbacksMP.ON_DETACH]:
                fn(self, unpatch_all)
            return self.model

    model_patcher = _module("comfy.model_patcher", ModelPatcher=ModelPatcher)
    patcher_extension = _module("comfy.patcher_extension", CallbacksMP=CallbacksMP)

    # ---- comfy.utils.ProgressBar (with the server's hook: every update is a cancellation point)
    progress_log: list = []

    class ProgressBar:
        def __init__(self, total, node_id=None):
            self.total, self.node_id, self.current = total, node_id, 0

        def update_absolute(self, value, total=None, preview=None):
            throw_exception_if_processing_interrupted()
            self.current = value
            progress_log.append((value, total if total is not None else self.total, self.node_id))

    utils = _module("comfy.utils", ProgressBar=ProgressBar, progress_log=progress_log)
    comfy = _module(
        "comfy", model_management=mm, model_patcher=model_patcher, patcher_extension=patcher_extension, utils=utils
    )

    # ---- comfy_api.latest
    class _Input:
        def __init__(self, id, *args, **kwargs):
            self.id, self.args, self.kwargs = id, args, kwargs
            self.tooltip = kwargs.get("tooltip")
            self.default = kwargs.get("default")
            self.options = kwargs.get("options", args[0] if args else None)

    class _Output:
        def __init__(self, *args, **kwargs):
            self.kwargs = kwargs

    def _type(io_type):
        return type(
            io_type,
            (),
            {
                "io_type": io_type,
                "Input": type("Input", (_Input,), {"io_type": io_type}),
                "Output": type("Output", (_Output,), {"io_type": io_type}),
            },
        )

    class Schema:
        def __init__(
            self,
            node_id,
            display_name=None,
            category=None,
            description=None,
            inputs=(),
            outputs=(),
            hidden=(),
            **kwargs,
        ):
            self.node_id, self.display_name, self.category = node_id, display_name, category
            self.description, self.inputs, self.outputs, self.hidden = (
                description,
                list(inputs),
                list(outputs),
                list(hidden),
            )

    class NodeOutput:
        def __init__(self, *values, ui=None):
            self.values, self.ui = values, ui

    class Hidden:
        unique_id = "UNIQUE_ID"

    class ComfyNode:
        hidden = types.SimpleNamespace(unique_id=None)

    class ComfyExtension:
        async def on_load(self):
            return None

        async def get_node_list(self):
            raise NotImplementedError

    io = _module(
        "comfy_api.latest.io",
        Schema=Schema,
        NodeOutput=NodeOutput,
        Hidden=Hidden,
        ComfyNode=ComfyNode,
        Int=_type("INT"),
        Float=_type("FLOAT"),
        Combo=_type("COMBO"),
        Image=_type("IMAGE"),
        Video=_type("VIDEO"),
        Custom=_type,
        Input=_Input,
    )

    class VideoFromFile:
        def __init__(self, path):
            self.path = path

        def get_stream_source(self):
            return self.path

    latest = _module(
        "comfy_api.latest",
        io=io,
        ComfyExtension=ComfyExtension,
        InputImpl=types.SimpleNamespace(VideoFromFile=VideoFromFile),
    )
    comfy_api = _module("comfy_api", latest=latest)
    return {
        "folder_paths": folder_paths,
        "comfy": comfy,
        "comfy.model_management": mm,
        "comfy.model_patcher": model_patcher,
        "comfy.patcher_extension": patcher_extension,
        "comfy.utils": utils,
        "comfy_api": comfy_api,
        "comfy_api.latest": latest,
    }


def install(monkeypatch, models_dir, temp_dir):
    modules = build(str(models_dir), str(temp_dir))
    for name, module in modules.items():
        monkeypatch.setitem(sys.modules, name, module)
    package = sys.modules.get("flashvsr.comfyui")
    for name in [n for n in sys.modules if n.startswith("flashvsr.comfyui.")]:
        monkeypatch.delitem(sys.modules, name)  # the node modules import the stand-ins afresh
        if package is not None:  # `from . import nodes` would otherwise return the old module
            monkeypatch.delattr(package, name.rsplit(".", 1)[1], raising=False)
    return modules


@contextlib.contextmanager
def node_registry(monkeypatch, models_dir, temp_dir):
    """Stand-ins installed, our nodes loaded through comfy_entrypoint: yields (modules, {node_id: node})."""
    modules = install(monkeypatch, models_dir, temp_dir)
    from flashvsr import comfyui

    nodes = asyncio.run(asyncio.run(comfyui.comfy_entrypoint()).get_node_list())
    try:
        yield modules, {n.define_schema().node_id: n for n in nodes}
    finally:
        modules["comfy.model_management"].unload_all_models()
