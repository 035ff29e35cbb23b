"""The ComfyUI nodes against the stand-ins of tests/python/comfy_standins.py: schema, model folders,
execution, float32 CPU output, progress, interrupt within one chunk, unload releasing the engine, video."""

import gc
import hashlib
import re

import comfy_standins
import flashvsr
import pytest
import torch


@pytest.fixture(scope="module")
def models_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("comfy_models")
    flashvsr.testing.make_random_weights(root / "FlashVSR-v1.1", size="tiny", seed=3, prompt_tokens=64)
    return root


@pytest.fixture()
def comfy(monkeypatch, models_root, tmp_path):
    with comfy_standins.node_registry(monkeypatch, models_root, tmp_path / "temp") as registry:
        yield registry


def _inputs(schema):
    return {i.id: i for i in schema.inputs}


def _load(nodes, **kw):
    args = dict(model="FlashVSR-v1.1", version="auto", mode="tiny", precision="fp32", device="comfy")
    args.update(kw)
    return nodes["FlashVSRModelLoader"].execute(**args).values[0]


def _upscale(nodes, patcher, images, **kw):
    args = dict(
        scale=2,
        tile_size=0,
        tile_overlap=0,
        max_memory_gb=0.0,
        park_tile_state="auto",
        color_fix="adain",
        sparse_ratio=2.0,
        kv_ratio=3.0,
        local_range=11,
        seed=0,
    )
    args.update(kw)
    return nodes["FlashVSRUpscale"].execute(model=patcher, images=images, **args).values[0]


def test_schema_ids_tooltips_and_v3_only(comfy):
    _, nodes = comfy
    assert sorted(nodes) == ["FlashVSRModelLoader", "FlashVSRUpscale", "FlashVSRUpscaleVideo"]
    for node in nodes.values():
        schema = node.define_schema()
        assert schema.category == "FlashVSR" and schema.description
        missing = [i.id for i in schema.inputs if not i.tooltip]
        assert missing == [], f"{schema.node_id}: inputs without a tooltip: {missing}"
    up = _inputs(nodes["FlashVSRUpscale"].define_schema())
    assert up["images"].io_type == "IMAGE" and up["model"].io_type == "FLASHVSR_MODEL"
    assert up["color_fix"].options == ["adain", "wavelet", "none"]
    assert _inputs(nodes["FlashVSRUpscaleVideo"].define_schema())["video"].io_type == "VIDEO"


def test_defaults_equal_the_engine_api(comfy):
    # The node defaults must be the Python API's: parse the compiled signature of Engine.upscale.
    from flashvsr.comfyui import nodes as node_module

    doc = flashvsr.Engine.upscale.__doc__
    for name, value in node_module.DEFAULTS.items():
        m = re.search(rf"\b{name}: [^=]+ = ([^,)]+)", doc)
        assert m, f"{name} not in {doc}"
        assert m.group(1).strip("'\"") == str(value), (name, m.group(1), value)
    up = _inputs(comfy[1]["FlashVSRUpscale"].define_schema())
    assert all(up[k].default == v for k, v in node_module.DEFAULTS.items())


def test_model_folders_registered_and_listed(comfy, models_root, tmp_path):
    mods, nodes = comfy
    fp = mods["folder_paths"]
    paths = fp.get_folder_paths("FlashVSR")
    assert str(models_root / "FlashVSR") in paths and str(models_root / "FlashVSR-v1.1") in paths
    # a user's extra_model_paths.yaml entry (applied through the same function) with a model in a sub-folder
    extra = tmp_path / "big_disk"
    flashvsr.testing.make_random_weights(extra / "copy", size="tiny", seed=3, prompt_tokens=64)
    fp.add_model_folder_path("FlashVSR", str(extra))
    options = _inputs(nodes["FlashVSRModelLoader"].define_schema())["model"].options
    assert options == ["FlashVSR-v1.1", "big_disk/copy"]
    with pytest.raises(ValueError, match="not found.*posi_prompt.pth.*FlashVSR-v1.1"):
        _load(nodes, model="nope")


def test_upscale_float32_cpu_exact_size_and_equal_to_api(comfy, models_root):
    _, nodes = comfy
    patcher = _load(nodes)
    frames = torch.rand(5, 16, 24, 3)
    out = _upscale(nodes, patcher, frames)
    assert out.shape == (5, 32, 48, 3) and out.dtype == torch.float32 and out.device.type == "cpu"
    assert out.is_contiguous() and out.min().item() >= 0.0 and out.max().item() <= 1.0
    ref = flashvsr.load(models_root / "FlashVSR-v1.1", device="cpu", dtype="fp32").upscale(frames, scale=2)
    assert torch.equal(out, ref)
    # reduced-precision IMAGE inputs (other nodes may hand bf16/fp16) still give float32
    out16 = _upscale(nodes, patcher, frames.to(torch.float16))
    assert out16.dtype == torch.float32 and out16.shape == out.shape


def test_rgba_alpha_kept(comfy):
    _, nodes = comfy
    frames = torch.rand(2, 16, 16, 4)
    frames[..., 3] = 0.25
    out = _upscale(nodes, _load(nodes), frames)
    assert out.shape == (2, 32, 32, 4)
    assert torch.allclose(out[..., 3], torch.full((2, 32, 32), 0.25), atol=1e-6)


def test_progress_per_chunk(comfy):
    mods, nodes = comfy
    log = mods["comfy.utils"].progress_log
    log.clear()
    _upscale(nodes, _load(nodes), torch.rand(45, 8, 8, 3))  # 45 frames = 4 chunks
    assert [v for v, _, _ in log] == sorted(v for v, _, _ in log) and log[-1][0] == 45 and len(log) >= 4


def test_interrupt_stops_within_one_chunk(comfy):
    mods, nodes = comfy
    mm = mods["comfy.model_management"]
    log = mods["comfy.utils"].progress_log
    log.clear()
    patcher = _load(nodes)
    calls = {"n": 0}
    orig = mods["comfy.utils"].ProgressBar.update_absolute

    def press_cancel_after_first_chunk(self, value, total=None, preview=None):
        orig(self, value, total, preview)
        calls["n"] += 1
        mm.interrupt_current_processing(True)  # the user presses Cancel while chunk 2 computes

    mods["comfy.utils"].ProgressBar.update_absolute = press_cancel_after_first_chunk
    with pytest.raises(mm.InterruptProcessingException):
        _upscale(nodes, patcher, torch.rand(45, 8, 8, 3))
    assert calls["n"] == 1  # the engine stopped at the next chunk boundary
    assert not mm.processing_interrupted()  # the flag was consumed, as ComfyUI expects
    mods["comfy.utils"].ProgressBar.update_absolute = orig
    assert _upscale(nodes, patcher, torch.rand(3, 8, 8, 3)).shape == (3, 16, 16, 3)  # usable afterwards


def test_engine_out_of_memory_becomes_comfyui_oom(comfy):
    from flashvsr.comfyui import management

    mods, _ = comfy
    reporter = management.ProgressReporter(1)

    def run():
        raise flashvsr.OutOfMemory("out of memory at tile 512x512 with a 1 GiB budget")

    with pytest.raises(mods["comfy.model_management"].OOM_EXCEPTION, match="tile 512x512 with a 1 GiB budget"):
        management.run_interruptible(run, reporter)


def test_unload_releases_and_next_run_reloads(comfy):
    from flashvsr.comfyui import management

    mods, nodes = comfy
    mm = mods["comfy.model_management"]
    patcher = _load(nodes)
    assert management.loaded_engine_count() == 0  # the loader node does not read weights yet
    _upscale(nodes, patcher, torch.rand(2, 8, 8, 3))
    engine = patcher.model.engine
    assert management.loaded_engine_count() == 1 and patcher.model.loads == 1
    weight_bytes = engine.info["weight_bytes"]
    gc.collect()
    rss_loaded = flashvsr.memory_report()["rss_bytes"]
    mm.unload_all_models()  # what "Unload models" / POST /free do
    assert engine.closed and patcher.model.engine is None and management.loaded_engine_count() == 0
    gc.collect()
    freed = rss_loaded - flashvsr.memory_report()["rss_bytes"]
    assert freed >= 0.8 * weight_bytes, f"unload gave back {freed} bytes of {weight_bytes} weight bytes"
    _upscale(nodes, patcher, torch.rand(2, 8, 8, 3))
    assert patcher.model.loads == 2


def test_offload_to_host_keeps_the_engine_and_free_releases_it(comfy):
    """With a GPU, ComfyUI's detach offloads the weights to host RAM and the next run brings them back (no
    disk read); here the moves are CPU no-ops, but the calls and the bookkeeping are the same."""
    from flashvsr.comfyui import management

    mods, nodes = comfy
    mm = mods["comfy.model_management"]
    patcher = _load(nodes)
    assert patcher.model.offload_to_host is False  # CPU: load device == offload device, detach frees
    patcher.model.offload_to_host = True  # what make_patcher sets when ComfyUI's devices differ
    images = torch.rand(2, 8, 8, 3, generator=torch.Generator().manual_seed(2))
    first = _upscale(nodes, patcher, images)
    engine = patcher.model.engine
    assert patcher.model.loads == 1 and patcher.model.moves == []
    mm.unload_all_models()  # "Unload models", or another model's memory request -> ON_DETACH
    assert patcher.model.engine is engine and not engine.closed  # kept, in host RAM
    assert patcher.model.offloaded and patcher.model.moves == ["cpu"]
    assert management.loaded_engine_count() == 1 and management.offloaded_engine_count() == 1
    mm.unload_all_models()  # not registered any more: nothing happens
    assert patcher.model.moves == ["cpu"]
    second = _upscale(nodes, patcher, images)  # load_models_gpu -> back on the compute device
    assert patcher.model.loads == 1 and patcher.model.moves == ["cpu", "cpu"] and not patcher.model.offloaded
    assert management.offloaded_engine_count() == 0
    assert torch.equal(first, second)

    # A stream made from the engine is alive: the engine refuses to move, so detaching frees it instead.
    stream = patcher.model.engine.stream(scale=2)
    mm.unload_all_models()
    assert engine.closed and patcher.model.engine is None and patcher.model.moves == ["cpu", "cpu"]
    del stream
    _upscale(nodes, patcher, images)
    assert patcher.model.loads == 2

    # POST /free {"unload_models": true, "free_memory": true}: detach (offload), then ComfyUI drops its output
    # cache, which held the loader's patcher: the offloaded engine is freed with it.
    weight_bytes = patcher.model.engine.info["weight_bytes"]
    gc.collect()
    rss_loaded = flashvsr.memory_report()["rss_bytes"]
    mm.unload_all_models()
    assert management.offloaded_engine_count() == 1
    del patcher, engine
    gc.collect()
    assert management.loaded_engine_count() == 0
    freed = rss_loaded - flashvsr.memory_report()["rss_bytes"]
    assert freed >= 0.8 * weight_bytes, f"/free gave back {freed} bytes of {weight_bytes} weight bytes"


def _packets(path, kind):
    import av

    with av.open(str(path)) as c:
        s = c.streams.video[0] if kind == "video" else c.streams.audio[0]
        return [(p.pts, hashlib.md5(bytes(p)).hexdigest()) for p in c.demux(s) if p.size]


def test_video_node_streams_keeps_frames_timestamps_and_audio(comfy, tmp_path):
    import av

    mods, nodes = comfy
    mods["comfy.utils"].progress_log.clear()
    src = tmp_path / "in.mp4"
    flashvsr.io.write_synthetic_clip(str(src), width=32, height=24, frames=21, fps_num=30000, fps_den=1001, audio=True)
    video = mods["comfy_api.latest"].InputImpl.VideoFromFile(str(src))
    node = nodes["FlashVSRUpscaleVideo"]
    result = node.execute(
        model=_load(nodes),
        video=video,
        scale=2,
        tile_size=0,
        tile_overlap=0,
        max_memory_gb=0.0,
        park_tile_state="auto",
        color_fix="adain",
        sparse_ratio=2.0,
        kv_ratio=3.0,
        local_range=11,
        seed=0,
        crf=18,
    ).values[0]
    out = result.get_stream_source()
    assert out.endswith(".mp4") and not list(tmp_path.glob("temp/flashvsr/*.part"))
    with av.open(str(src)) as a, av.open(out) as b:
        fa = [f.time for f in a.decode(video=0)]
        fb = list(b.decode(video=0))
        assert len(fb) == 21 and (fb[0].width, fb[0].height) == (64, 48)
        assert [round(f.time, 4) for f in fb] == [round(t, 4) for t in fa]
    log = mods["comfy.utils"].progress_log
    assert log and log[-1][:2] == (21, 21) and all(t == 21 for _, t, _ in log), log  # total known up front
    audio_in, audio_out = _packets(src, "audio"), _packets(out, "audio")
    assert len(audio_in) > 5 and [h for _, h in audio_out] == [h for _, h in audio_in]


def test_example_workflows_agree_with_the_schema(comfy, repo_root):
    # examples/comfyui: the UI-format workflow's widget values, read in schema order, are the API-format inputs.
    import json

    _, nodes = comfy
    ui = json.loads((repo_root / "examples/comfyui/flashvsr_upscale.json").read_text())
    api = json.loads((repo_root / "examples/comfyui/flashvsr_upscale_api.json").read_text())
    checked = 0
    for node in ui["nodes"]:
        if node["type"] not in nodes:
            continue
        schema = nodes[node["type"]].define_schema()
        widgets = [i for i in schema.inputs if i.io_type in ("INT", "FLOAT", "COMBO")]
        values = list(node["widgets_values"])
        got = {}
        for i in widgets:
            got[i.id] = values.pop(0)
            if i.kwargs.get("control_after_generate"):
                assert values.pop(0) in ("fixed", "increment", "decrement", "randomize")
        assert values == []
        links = {tuple(link[3:5]): link[1] for link in ui["links"]}
        for slot, inp in enumerate(node["inputs"]):
            got[inp["name"]] = [str(links[(node["id"], slot)]), 0]
        assert got == api[str(node["id"])]["inputs"], node["type"]
        assert api[str(node["id"])]["class_type"] == node["type"]
        checked += 1
    assert checked == 2


def _write_bt709_clip(path, frames=9, w=32, h=24):
    # moderately saturated colour blocks, tagged and encoded as BT.709 limited range
    import av
    import numpy as np

    with av.open(str(path), "w", format="mp4") as c:
        s = c.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        s.codec_context.colorspace, s.codec_context.color_range = 1, 1  # BT.709, limited
        s.codec_context.color_primaries, s.codec_context.color_trc = 1, 1
        s.options = {"crf": "0"}
        for k in range(frames):
            img = np.zeros((h, w, 3), np.uint8)
            img[:, : w // 2] = (200, 80, 90 + 5 * k)
            img[:, w // 2 :] = (70, 170, 190)
            f = av.VideoFrame.from_ndarray(img, format="rgb24").reformat(
                format="yuv420p", dst_colorspace=1, dst_color_range=1
            )
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode():
            c.mux(p)


def _decode_rgb(path, force_colorspace=None):
    import av
    import numpy as np

    with av.open(str(path)) as c:
        cc = c.streams.video[0].codec_context
        tags = (cc.colorspace, cc.color_range)
        frames = [
            f.to_ndarray(
                format="rgb24",
                src_colorspace=force_colorspace or f.colorspace or None,
                src_color_range=f.color_range or None,
            )
            for f in c.decode(video=0)
        ]
    return tags, np.stack(frames)


def test_video_node_keeps_bt709_colours_and_tags(comfy, tmp_path, models_root):
    mods, nodes = comfy
    src = tmp_path / "bt709.mp4"
    _write_bt709_clip(src)
    video = mods["comfy_api.latest"].InputImpl.VideoFromFile(str(src))
    result = (
        nodes["FlashVSRUpscaleVideo"]
        .execute(
            model=_load(nodes),
            video=video,
            scale=2,
            tile_size=0,
            tile_overlap=0,
            max_memory_gb=0.0,
            park_tile_state="auto",
            color_fix="adain",
            sparse_ratio=2.0,
            kv_ratio=3.0,
            local_range=11,
            seed=0,
            crf=0,
        )
        .values[0]
    )
    tags_in, rgb_in = _decode_rgb(src)
    tags_out, rgb_out = _decode_rgb(result.get_stream_source())
    assert tags_in == tags_out == (1, 1) and rgb_out.shape == (9, 48, 64, 3)
    # what the engine makes of the same decoded frames, without any file in between
    ref = flashvsr.load(models_root / "FlashVSR-v1.1", device="cpu", dtype="fp32").upscale(
        torch.from_numpy(rgb_in), scale=2
    )
    ref_means = (ref * 255).reshape(9, -1, 3).mean(1).numpy()
    worst = float(abs(rgb_out.reshape(9, -1, 3).mean(1) - ref_means).max())
    _, wrong = _decode_rgb(result.get_stream_source(), force_colorspace=5)  # read as BT.601: the classic mix-up
    worst_wrong = float(abs(wrong.reshape(9, -1, 3).mean(1) - ref_means).max())
    print(f"channel-mean error through the file: {worst:.2f} levels (read with the wrong matrix: {worst_wrong:.2f})")
    assert worst <= 2.0 and worst_wrong > 2 * worst


def _rich_clip(path, frames=21):
    """10-bit H.264 (BT.709 tags) with an AAC tone, a mov_text subtitle and two chapters, by the ffmpeg CLI."""
    import subprocess

    srt = path.parent / "subs.srt"
    srt.write_text("1\n00:00:00,000 --> 00:00:00,500\nhello\n\n2\n00:00:00,500 --> 00:00:00,800\nworld\n\n")
    meta = path.parent / "meta.txt"
    meta.write_text(
        ";FFMETADATA1\ntitle=rich\n[CHAPTER]\nTIMEBASE=1/1000\nSTART=0\nEND=400\ntitle=one\n"
        "[CHAPTER]\nTIMEBASE=1/1000\nSTART=400\nEND=840\ntitle=two\n"
    )
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=32x24:rate=25",
            "-f",
            "lavfi",
            "-i",
            "sine=f=440",
            "-i",
            str(srt),
            "-i",
            str(meta),
            "-map",
            "0:v",
            "-map",
            "1:a",
            "-map",
            "2:s",
            "-map_metadata",
            "3",
            "-map_chapters",
            "3",
            "-frames:v",
            str(frames),
            "-t",
            "0.84",
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv420p10le",
            "-colorspace",
            "bt709",
            "-color_primaries",
            "bt709",
            "-color_trc",
            "bt709",
            "-c:a",
            "aac",
            "-c:s",
            "mov_text",
            str(path),
        ],
        check=True,
    )


def _decoded(path):
    """Every video frame's planes as decoded (no conversion), its time, and the file's streams and chapters."""
    import av
    import numpy as np

    with av.open(str(path)) as c:
        v = c.streams.video[0]
        info = dict(
            pix_fmt=v.codec_context.pix_fmt,
            colorspace=v.codec_context.colorspace,
            types=[s.type for s in c.streams],
            chapters=[ch["metadata"].get("title") for ch in c.chapters()],
        )
        frames = [
            (f.time, np.concatenate([np.frombuffer(bytes(p), np.uint8) for p in f.planes])) for f in c.decode(video=0)
        ]
    return info, frames


def test_video_node_and_cli_make_the_same_frames(comfy, tmp_path, models_root, cli):
    # One pipeline: the node's file and `flashvsr upscale`'s file of the same input with the same options
    # decode to identical frames (crf 0: lossless, so rate control plays no part), with the same 10-bit format,
    # colour tags, timestamps, audio, subtitles and chapters.
    import subprocess

    mods, nodes = comfy
    src = tmp_path / "rich.mp4"
    _rich_clip(src)
    video = mods["comfy_api.latest"].InputImpl.VideoFromFile(str(src))
    result = (
        nodes["FlashVSRUpscaleVideo"]
        .execute(
            model=_load(nodes),
            video=video,
            scale=2,
            tile_size=0,
            tile_overlap=0,
            max_memory_gb=0.0,
            park_tile_state="auto",
            color_fix="adain",
            sparse_ratio=2.0,
            kv_ratio=3.0,
            local_range=11,
            seed=0,
            crf=0,
        )
        .values[0]
    )
    cli_out = tmp_path / "cli.mp4"
    subprocess.run(
        [
            str(cli),
            "upscale",
            str(src),
            "-o",
            str(cli_out),
            "--model-dir",
            str(models_root / "FlashVSR-v1.1"),
            "--scale",
            "2",
            "--device",
            "cpu",
            "--dtype",
            "fp32",
            "--crf",
            "0",
            "--no-progress",
        ],
        check=True,
    )
    node_info, node_frames = _decoded(result.get_stream_source())
    cli_info, cli_frames = _decoded(cli_out)
    src_info, src_frames = _decoded(src)
    assert node_info == cli_info
    assert node_info["pix_fmt"] == "yuv420p10le" and node_info["colorspace"] == src_info["colorspace"] == 1
    # (MP4 writes its chapters as a text track as well: the fourth, "data" stream)
    assert node_info["types"][:3] == ["video", "audio", "subtitle"] and node_info["chapters"] == ["one", "two"]
    assert len(node_frames) == len(cli_frames) == len(src_frames) == 21
    assert [t for t, _ in node_frames] == [t for t, _ in cli_frames] == [t for t, _ in src_frames]
    assert all((a == b).all() for (_, a), (_, b) in zip(node_frames, cli_frames, strict=False))
    assert _packets(result.get_stream_source(), "audio") == _packets(cli_out, "audio")


def test_schema_reads_the_option_table(comfy):
    # The ComfyUI face of the option table: defaults, ranges, choices and tooltips come from flashvsr._C.
    specs = {s["name"]: s for s in flashvsr._C.option_specs()}
    for node_id in ("FlashVSRUpscale", "FlashVSRUpscaleVideo"):
        inputs = _inputs(comfy[1][node_id].define_schema())
        for name in (
            "scale",
            "color_fix",
            "sparse_ratio",
            "kv_ratio",
            "local_range",
            "seed",
            "tile_size",
            "tile_overlap",
            "park_tile_state",
        ):
            s, i = specs[name], inputs[name]
            assert i.default == s["default"] and s["help"][1:] in i.tooltip, name
            if s["type"] == "choice":
                assert i.options == s["choices"], name
            else:
                lo, hi, step = s["range"]
                assert (i.kwargs["min"], i.kwargs["step"]) == (lo, step) and i.kwargs["max"] == min(hi, 2**63 - 1)
    loader = _inputs(comfy[1]["FlashVSRModelLoader"].define_schema())
    assert loader["mode"].options == specs["mode"]["choices"]
    assert loader["precision"].options == specs["dtype"]["choices"]
    assert loader["version"].options == ["auto"] + specs["version"]["choices"]
