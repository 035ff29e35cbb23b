"""The option table (C++ flashvsr/options.h, read through flashvsr._C.option_specs()) and the faces built on it
agree: the Python option classes, Engine.upscale/stream's signatures, upscale_file's keywords, the _C.pyi
stubs and the CLI's --help. (The ComfyUI schema: test_comfyui_nodes.py::test_schema_reads_the_option_table.)"""

import ast
import subprocess

import flashvsr
import pytest

SPECS = {s["name"]: s for s in flashvsr._C.option_specs()}
UPSCALE = [n for n, s in SPECS.items() if s["group"] == "upscale"]
ENGINE = [n for n, s in SPECS.items() if s["group"] == "engine"]
NONE_MEANS_UNSET = {"max_memory": 0, "version": "", "model_dir": ""}  # Python spells "not set" as None


def _py_default(name, value):
    return NONE_MEANS_UNSET[name] if value is None and name in NONE_MEANS_UNSET else value


def test_table_shape():
    assert UPSCALE == [
        "scale",
        "color_fix",
        "sparse_ratio",
        "kv_ratio",
        "local_range",
        "seed",
        "tile_size",
        "tile_overlap",
        "max_memory",
        "park_tile_state",
    ]
    assert ENGINE == ["model_dir", "version", "mode", "device", "dtype", "legacy_v10_cache_order"]
    for s in SPECS.values():
        assert s["help"] and s["cli_flag"] == "--" + s["name"].replace("_", "-")
        assert (s["type"] == "choice") == bool(s["choices"]), s
        if s["type"] == "choice" and s["default"]:
            assert s["default"] in s["choices"], s
        if s["range"] is not None:
            lo, hi, step = s["range"]
            assert lo <= s["default"] <= hi and step > 0, s


def test_option_classes_follow_the_table():
    assert flashvsr.UpscaleOptions().as_dict() == {n: SPECS[n]["default"] for n in UPSCALE}
    assert flashvsr.EngineOptions().as_dict() == {n: SPECS[n]["default"] for n in ENGINE}
    assert flashvsr.UpscaleOptions.names() == UPSCALE
    u = flashvsr.UpscaleOptions(scale=2, tile_size=256, max_memory=None)
    assert (u.scale, u.tile_size, u.max_memory, u.color_fix) == (2, 256, 0, "adain")
    assert u == flashvsr.UpscaleOptions(tile_size=256, scale=2) and "scale=2" in repr(u)
    with pytest.raises(TypeError, match="unexpected keyword argument 'scael'"):
        flashvsr.UpscaleOptions(scael=2)
    with pytest.raises(TypeError, match="option 'scale' must be an int, got float"):
        flashvsr.UpscaleOptions(scale=2.0)
    with pytest.raises(TypeError, match="unexpected keyword argument 'mode'"):
        flashvsr.UpscaleOptions(mode="tiny")  # an engine option
    with pytest.raises(flashvsr.InputError, match="scale must be 2, 3 or 4"):
        flashvsr.UpscaleOptions(scale=5)
    with pytest.raises(flashvsr.InputError, match="park_tile_state must be auto, on or off"):
        flashvsr.UpscaleOptions(park_tile_state="maybe")
    with pytest.raises(flashvsr.InputError, match="mode"):
        flashvsr.EngineOptions(model_dir="/x", mode="huge")
    with pytest.raises(AttributeError):
        u.scale = 3


def test_engine_signatures_take_the_table_defaults():
    for method in (flashvsr.Engine.upscale, flashvsr.Engine.stream):
        doc = method.__doc__
        for name in UPSCALE:
            value = eval(doc.split(f"{name}: ", 1)[1].split(" = ", 1)[1].split(",")[0].split(")")[0])
            assert _py_default(name, value) == SPECS[name]["default"], (method.__name__, name)


def test_options_class_feeds_the_engine(tmp_path):
    d = tmp_path / "FlashVSR-v1.1"
    flashvsr.testing.make_random_weights(d, size="tiny", seed=1, prompt_tokens=64)
    import torch

    engine = flashvsr.load(**flashvsr.EngineOptions(model_dir=str(d), device="cpu").as_dict())
    frames = torch.rand(3, 16, 16, 3, generator=torch.Generator().manual_seed(0))
    opts = flashvsr.UpscaleOptions(scale=2, seed=3)
    assert torch.equal(engine.upscale(frames, **opts.as_dict()), engine.upscale(frames, scale=2, seed=3))


def test_stubs_agree_with_the_table(repo_root):
    tree = ast.parse((repo_root / "python/flashvsr/_C.pyi").read_text())

    def defaults(fn):
        args = fn.args.args + fn.args.kwonlyargs
        values = [None] * (len(fn.args.args) - len(fn.args.defaults)) + fn.args.defaults + fn.args.kw_defaults
        return {a.arg: ast.literal_eval(v) for a, v in zip(args, values, strict=False) if v is not None}

    fns = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    engine = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Engine")
    methods = {n.name: n for n in engine.body if isinstance(n, ast.FunctionDef)}
    for fn, names in (
        (methods["upscale"], UPSCALE),
        (methods["stream"], UPSCALE),
        (methods["__init__"], ENGINE),
        (fns["upscale_file"], UPSCALE + ENGINE),
    ):
        got = defaults(fn)
        for name in names:
            if name == "model_dir" and fn.name == "__init__":
                continue  # required there
            assert name in got, (fn.name, name)
            assert _py_default(name, got[name]) == SPECS[name]["default"], (fn.name, name)
    keywords = {a.arg for a in fns["upscale_file"].args.kwonlyargs}
    assert keywords == set(flashvsr.UPSCALE_FILE_OPTIONS) | {"engine", "progress", "cancel", "verbose"}


def test_cli_help_follows_the_table(cli):
    out = subprocess.run([str(cli), "upscale", "--help"], capture_output=True, text=True, check=True).stdout
    lines = {ln.split()[0]: ln for ln in out.splitlines() if ln.startswith("  -")}
    for name, s in SPECS.items():
        line = lines[s["cli_flag"]]
        if name in ("model_dir", "version", "max_memory"):
            continue  # the CLI's own words (search order, the folder's version, sizes like 8G)
        assert s["help"] in line, line
        if s["type"] == "bool":
            assert "[default" not in line
        else:
            text = str(s["default"]) if not isinstance(s["default"], float) else f"{s['default']:g}"
            assert f"[default: {text}]" in line, line
