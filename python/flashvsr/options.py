"""The engine's and the upscale's options as classes, built from the library's one option table
(``flashvsr._C.option_specs()``, C++ ``flashvsr/options.h``): the same names, types, defaults, choices and
help lines as the CLI's flags and the ComfyUI inputs.

    opts = flashvsr.UpscaleOptions(scale=2, tile_size=256)   # unknown name or wrong type: TypeError;
    out = engine.upscale(frames, **opts.as_dict())           # a bad value: flashvsr.InputError
"""

from __future__ import annotations

from . import _C

SPECS: dict[str, dict] = {s["name"]: s for s in _C.option_specs()}


class _Options:
    _group = ""

    def __init__(self, **kwargs):
        # set through the C++ table (names and types checked) and validated by the struct's validate()
        values = _C.normalize_options(self._group, kwargs)
        object.__setattr__(self, "_values", dict(values))

    @classmethod
    def names(cls) -> list[str]:
        return [n for n, s in SPECS.items() if s["group"] == cls._group]

    def as_dict(self) -> dict:
        return dict(self._values)

    def __getattr__(self, name):
        try:
            return self.__dict__["_values"][name]
        except KeyError:
            raise AttributeError(f"{type(self).__name__} has no option '{name}'") from None

    def __setattr__(self, name, value):
        raise AttributeError(f"{type(self).__name__} is immutable: make a new one ({name}=...)")

    def __eq__(self, other):
        return type(self) is type(other) and self._values == other._values

    def __repr__(self):
        return f"{type(self).__name__}(" + ", ".join(f"{k}={v!r}" for k, v in self._values.items()) + ")"


class EngineOptions(_Options):
    """How to load the model: ``flashvsr.load(**EngineOptions(...).as_dict())``. Validated when model_dir is set."""

    _group = "engine"


class UpscaleOptions(_Options):
    """How to upscale: ``engine.upscale(frames, **UpscaleOptions(...).as_dict())``, ``engine.stream(...)``,
    ``flashvsr.upscale_file(...)``."""

    _group = "upscale"
