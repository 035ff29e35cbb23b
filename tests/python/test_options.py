"""The option tables (C++ flashvsr/options.h and pipeline/transcode_options.h, read through
flashvsr._C.option_specs()) and the faces built on them agree: the Python option classes, load()/Engine(),
Engine.upscale/stream's signatures, upscale_file's keywords, the _C.pyi stubs, the CLI's --help and the ComfyUI
nodes' inputs. Adding an option means a row in a table (and its help line): every face then has it, and no face
takes a name the tables do not have. (The ComfyUI schema's values: test_comfyui_nodes.py.)"""

import ast
import inspect
import subprocess

import comfy_standins
import flashvsr
import pytest

SPECS = {s["name"]: s for s in flashvsr._C.option_specs()}
UPSCALE = [n for n, s in SPECS.items() if s["group"] == "upscale"]
ENGINE = [n for n, s in SPECS.items() if s["group"] == "engine"]
TRANSCODE = [n for n, s in SPECS.items() if s["group"] == "transcode"]
# Python spells "not set" as None
NONE_MEANS_UNSET = {
    **{"max_memory": 0, "version": "", "model_dir": "", "pix_fmt": "", "end": -1.0, "start_number": -1},
    "encoder_options": {},
}
# the CLI's flags of the run itself (not options of the job); upscale_file's keywords that are not options
CLI_OWN = {"-o", "--report", "--no-progress", "--progress-interval", "--verbose"}
PYTHON_OWN = {"engine", "progress", "cancel", "verbose"}


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
    assert TRANSCODE == [
        "codec",
        "encoder_options",
        "pix_fmt",
        "crf",
        "copy_audio",
        "copy_subtitles",
        "start",
        "end",
        "fps",
        "start_number",
        "bit_depth",
        "overwrite",
        "batch",
        "max_pixels",
        "pipeline_depth",
        "keep_partial",
        "first_chunk",
        "end_chunk",
        "warmup_chunks",
    ]
    assert len(SPECS) == len(UPSCALE) + len(ENGINE) + len(TRANSCODE)  # one namespace for upscale_file
    special = {"codec": "-c:v", "encoder_options": "-e", "copy_audio": "--no-audio", "copy_subtitles": "--no-subtitles"}
    for s in SPECS.values():
        assert s["help"] and s["cli_flag"] == special.get(s["name"], "--" + s["name"].replace("_", "-"))
        assert s["python"] and s["cli"] == (
            s["name"] not in ("keep_partial", "first_chunk", "end_chunk", "warmup_chunks")
        )
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
    assert keywords == set(flashvsr.UPSCALE_FILE_OPTIONS) | PYTHON_OWN
    got = defaults(fns["upscale_file"])
    for name in TRANSCODE:
        value = str(got[name]) if name == "fps" else got[name]  # fps: a str or a number
        assert _py_default(name, value) == SPECS[name]["default"], name
    init = methods["__init__"]
    assert [a.arg for a in init.args.args] == ["self", "model_dir"] and [a.arg for a in init.args.kwonlyargs] == ENGINE[
        1:
    ]


CLI_DEFAULTS = {  # the CLI's words where --help does not print the table's default
    "pix_fmt": "yuv420p",
    "end": "end",
    "start_number": "the lowest present",
    "bit_depth": "16 for PNG/TIFF from a >8-bit input, else 8; EXR 16",
}


def test_cli_help_follows_the_table(cli):
    out = subprocess.run([str(cli), "upscale", "--help"], capture_output=True, text=True, check=True).stdout
    lines = {ln.split()[0]: ln for ln in out.splitlines() if ln.startswith("  -")}
    # every flag is a table row the CLI takes, or one of the run's own; every such row is a flag
    assert set(lines) == {s["cli_flag"] for s in SPECS.values() if s["cli"]} | CLI_OWN
    for name, s in SPECS.items():
        if not s["cli"]:
            continue
        line = lines[s["cli_flag"]]
        if name in ("model_dir", "version", "max_memory"):
            continue  # the CLI's own words (search order, the folder's version, sizes like 8G)
        assert s["help"] in line, line
        if s["type"] == "bool":
            assert "[default" not in line
            assert ("do not " + s["help"] in line) == s["default"], line  # --no-audio: present = False
        elif s["type"] != "dict":
            text = str(s["default"]) if not isinstance(s["default"], float) else f"{s['default']:g}"
            assert f"[default: {CLI_DEFAULTS.get(name, text)}]" in line, line


def test_upscale_file_takes_the_tables_keywords(tmp_path):
    assert flashvsr.UPSCALE_FILE_OPTIONS == ENGINE + UPSCALE + TRANSCODE
    src, out = tmp_path / "in.mp4", tmp_path / "out.mp4"

    def call(**kw):
        flashvsr.upscale_file(src, out, model_dir=tmp_path, **kw)

    with pytest.raises(TypeError, match="unexpected keyword argument 'codecs'"):
        call(codecs="ffv1")
    with pytest.raises(TypeError, match="option 'encoder_options' must be a dict of str to str, got int"):
        call(encoder_options={"preset": 1})
    with pytest.raises(TypeError, match="option 'fps' must be a str or a number, got bool"):
        call(fps=True)
    with pytest.raises(TypeError, match="option 'codec' must be a str, got NoneType"):
        call(codec=None)  # None means "not set" only where the table says what that is
    with pytest.raises(TypeError, match="option 'end' must be a number, got str"):
        call(end="1:00")
    with pytest.raises(flashvsr.InputError, match="abc"):
        call(fps="abc")  # read when set
    with pytest.raises(flashvsr.Error):  # taken (the job then fails: no model, no input), not a TypeError
        call(end=None, start_number=None, pix_fmt=None, encoder_options={"preset": "slow"}, fps=29.97, device="cpu")


def test_load_and_engine_take_the_engine_table(tmp_path):
    d = tmp_path / "FlashVSR-v1.1"
    flashvsr.testing.make_random_weights(d, size="tiny", seed=1, prompt_tokens=64)
    assert list(inspect.signature(flashvsr.load).parameters) == ["model_dir", "options"]
    e = flashvsr.load(d, device="cpu", dtype="fp32", version=None, legacy_v10_cache_order=False)
    assert e.info["dtype"] == "fp32" and e.info["version"] == "v1.1"
    e.close()
    with pytest.raises(TypeError, match="unexpected keyword argument 'scale'"):
        flashvsr.load(d, scale=2)  # an upscale option
    with pytest.raises(TypeError, match="option 'mode' must be a str, got int"):
        flashvsr.Engine(d, mode=1)
    with pytest.raises(TypeError):
        flashvsr.Engine(str(d), "v1.1")  # keywords only
    with pytest.raises(flashvsr.InputError, match="mode"):
        flashvsr.load(d, mode="huge", device="cpu")


def test_comfyui_nodes_take_the_tables_options(monkeypatch, tmp_path):
    # the upscale nodes' option inputs are table rows (or max_memory_gb, the node's spelling of max_memory);
    # execute(cls, model, media, **options) refuses a name that is neither
    flashvsr.testing.make_random_weights(tmp_path / "models" / "FlashVSR-v1.1", size="tiny", seed=3, prompt_tokens=64)
    with comfy_standins.node_registry(monkeypatch, tmp_path / "models", tmp_path / "temp") as (_, nodes):
        for node_id, media, own in (("FlashVSRUpscale", "images", set()), ("FlashVSRUpscaleVideo", "video", {"crf"})):
            ids = [i.id for i in nodes[node_id].define_schema().inputs]
            assert ids[:2] == ["model", media]
            options = set(ids[2:])
            assert options == set(UPSCALE) - {"max_memory"} | {"max_memory_gb"} | own, node_id
            assert own <= set(TRANSCODE)
            sig = inspect.signature(nodes[node_id].execute)
            assert list(sig.parameters) == ["model", media, "options"], node_id
            with pytest.raises(TypeError, match="unexpected input.*: tile_sise"):
                nodes[node_id].execute(model=None, **{media: None}, tile_sise=64)
