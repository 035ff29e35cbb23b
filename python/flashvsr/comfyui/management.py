"""The one adapter between the nodes and ComfyUI's unversioned internals (``comfy.model_management``,
``comfy.model_patcher``, ``comfy.patcher_extension``, ``comfy.utils``).

Model management. The engine's weights live in C++; ComfyUI only unloads what is registered in its
``current_loaded_models`` through ``load_models_gpu``. :class:`EngineModule` is a parameterless
``torch.nn.Module`` facade that ``ModelPatcher`` can drive: it reports the engine's weight bytes as the
model size and loads the engine lazily on first use. When ComfyUI detaches the model ("Unload models",
"Free memory", ``/free``, another model needing the memory, OOM handling) the ``ON_DETACH`` callback
**offloads** the weights to host RAM with ``engine.to("cpu")`` (no disk read), like ComfyUI offloads any
model, and the next run moves them back (``engine.to(device)``). Where there is nothing to offload to
(the engine computes on the CPU, e.g. ``--cpu``) or a stream made from the engine is still alive (the
engine refuses to move), detaching frees the engine (``engine.close()``) and the next run reloads it
from disk. Nothing here keeps a strong module-level reference to an engine: the patcher travels in the
loader node's output, so dropping ComfyUI's output cache (``/free`` with ``free_memory``) frees it, offloaded
or not.

Progress and interrupt follow the protocol of ComfyUI's ``ProgressBar`` hook: the engine calls
:meth:`ProgressReporter.__call__` on the calling thread after every chunk (the GIL is re-taken only for that
call); it returns False when the user pressed Cancel, the engine stops within that chunk and raises
``flashvsr.Cancelled``, which :func:`run_interruptible` turns into ComfyUI's ``InterruptProcessingException``.
"""

from __future__ import annotations

import os
import weakref

import torch

import flashvsr

_live_engines: weakref.WeakSet[EngineModule] = weakref.WeakSet()  # weak: for /flashvsr/status only


def loaded_engine_count() -> int:
    """How many facades hold loaded weights right now (test and status introspection)."""
    return sum(1 for m in list(_live_engines) if m.engine is not None)


def offloaded_engine_count() -> int:
    """How many of those wait in host RAM (offloaded by ComfyUI, moved back on their next run)."""
    return sum(1 for m in list(_live_engines) if m.engine is not None and m.offloaded)


class EngineModule(torch.nn.Module):
    """What ComfyUI's ModelPatcher moves around: no parameters, the engine behind it."""

    def __init__(self, model_dir: str, version: str | None, mode: str, device: str, dtype: str):
        super().__init__()
        self.model_dir, self.version, self.mode = model_dir, version, mode
        self.engine_device, self.engine_dtype = device, dtype
        self.engine: flashvsr.Engine | None = None
        self.weight_bytes = _folder_weight_bytes(model_dir, mode)
        self.loads = 0  # how many times weights were read (tests assert unload -> reload)
        # Detach offloads to host RAM instead of freeing (make_patcher: when ComfyUI's offload device is not
        # the compute device). On the CPU the moves are no-ops, but the calls and this bookkeeping are the same.
        self.offload_to_host = False
        self.offloaded = False  # the weights wait in host RAM until the next run
        self.moves: list[str] = []  # every completed engine.to(), in order (tests assert the bookkeeping)
        self._compute_device = device
        _live_engines.add(self)

    def get_engine(self) -> flashvsr.Engine:
        """The engine on its compute device: loaded from disk the first time (or after a release), moved back
        from host RAM after an offload."""
        if self.engine is None:
            self.engine = flashvsr.load(
                self.model_dir, version=self.version, mode=self.mode, device=self.engine_device, dtype=self.engine_dtype
            )
            self.weight_bytes = int(self.engine.info["weight_bytes"])
            self.loads += 1
            self.offloaded = False
        elif self.offloaded:
            self._move(self._compute_device)
            self.offloaded = False
        return self.engine

    def _move(self, device: str) -> None:
        self.engine.to(device)
        self.moves.append(device)

    def offload(self) -> None:
        """ON_DETACH: the weights to host RAM (kept for the next run), or freed where that is not possible."""
        if self.engine is None or self.offloaded:
            return
        if not self.offload_to_host:
            self.release()
            return
        self._compute_device = self.engine.info["device"]  # resolved, e.g. "cuda:0"
        try:
            self._move("cpu")
        except flashvsr.Error:  # a stream made from the engine is alive (InputError), or no host memory left
            self.release()
            return
        self.offloaded = True

    def release(self) -> None:
        """Free the engine's weights and caches now (they are reloaded on next use)."""
        if self.engine is not None:
            self.engine.close()
            self.engine = None
        self.offloaded = False

    def get_dtype(self) -> torch.dtype:  # ModelPatcher.model_dtype()
        return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.engine_dtype, torch.float32)

    # ModelPatcher calls .to(load_device) on load and .to(offload_device) on every unpatch, including the
    # first step of each load, so .to() cannot tell an offload from a load; it is a no-op here, the moves
    # happen in the ON_DETACH callback (offload) and in get_engine() (back for the next run).
    def to(self, *args, **kwargs):  # noqa: D401 - nn.Module signature
        return self

    def __del__(self):
        try:
            self.release()
        except Exception:  # interpreter shutdown
            pass


def _folder_weight_bytes(model_dir: str, mode: str) -> int:
    """Size estimate before loading (ModelPatcher wants one): the files the mode reads."""
    keys = ["dit", "lq_proj", "prompt", "vae" if mode == "full" else "tcdecoder"]
    names = [flashvsr.models.FILES[k] for k in keys]
    total = sum(
        os.path.getsize(os.path.join(model_dir, n)) for n in names if os.path.isfile(os.path.join(model_dir, n))
    )
    return max(total, 1)


def _device_for(choice: str) -> str:
    """'comfy' follows ComfyUI's device (--cpu gives cpu); anything else is passed to the engine."""
    if choice != "comfy":
        return choice
    import comfy.model_management as mm

    return str(mm.get_torch_device())


def make_patcher(model_dir: str, version: str | None, mode: str, device_choice: str, dtype: str):
    """A ModelPatcher around a lazily loaded engine, registered for unloading by ComfyUI."""
    from comfy.model_patcher import ModelPatcher
    from comfy.patcher_extension import CallbacksMP

    device = _device_for(device_choice)
    module = EngineModule(model_dir, version, mode, device, dtype)
    load_device = torch.device(device)
    offload_device = torch.device("cpu") if load_device.type != "cpu" else load_device
    module.offload_to_host = offload_device != load_device
    patcher = ModelPatcher(module, load_device=load_device, offload_device=offload_device, size=module.weight_bytes)
    patcher.add_callback(CallbacksMP.ON_DETACH, lambda p, unpatch_all: p.model.offload())
    return patcher


def acquire(patcher) -> flashvsr.Engine:
    """Register with ComfyUI for this run (it may evict other models to make room) and load the engine."""
    import comfy.model_management as mm

    mm.load_models_gpu([patcher])
    try:
        return patcher.model.get_engine()
    except flashvsr.OutOfMemory as e:  # moving offloaded weights back did not fit: ComfyUI's OOM handling
        _raise_comfy_oom(e)


class ProgressReporter:
    """progress(done, total) for the engine: ComfyUI's ProgressBar plus the interrupt flag."""

    def __init__(self, total: int, node_id=None):
        import comfy.utils

        self.total = max(int(total), 1)
        self.bar = comfy.utils.ProgressBar(self.total, node_id=node_id)
        self.interrupted = False
        self.calls = 0

    def __call__(self, done: int, total: int) -> bool:
        import comfy.model_management as mm

        self.calls += 1
        if mm.processing_interrupted():  # cheap; does not reset the flag
            self.interrupted = True
            return False
        try:
            # the engine passes total = -1 while a stream's length is unknown: use the caller's estimate
            total = int(total) if total and total > 0 else self.total
            self.bar.update_absolute(int(done), max(total, int(done)))
        except mm.InterruptProcessingException:  # the hook checks the flag and resets it
            self.interrupted = True
            return False
        return True


def run_interruptible(fn, reporter: ProgressReporter):
    """Run fn(); a cancel requested through ComfyUI becomes InterruptProcessingException, and the engine's
    OutOfMemory (raised after its own smaller-tile retries failed) becomes ComfyUI's OOM_EXCEPTION, so ComfyUI
    unloads its models and shows its out-of-memory tip, with our message."""
    import comfy.model_management as mm

    try:
        return fn()
    except flashvsr.OutOfMemory as e:
        _raise_comfy_oom(e)
    except flashvsr.Cancelled:
        if reporter.interrupted:
            mm.throw_exception_if_processing_interrupted()  # raises and resets when still set
            raise mm.InterruptProcessingException() from None
        raise


def _raise_comfy_oom(e: BaseException):
    import comfy.model_management as mm

    oom = getattr(mm, "OOM_EXCEPTION", None)
    if isinstance(oom, type) and issubclass(oom, BaseException):
        raise oom(str(e)) from e
    raise e


def intermediate_device() -> torch.device:
    import comfy.model_management as mm

    return mm.intermediate_device()
