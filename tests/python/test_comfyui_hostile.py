"""The ComfyUI nodes with hostile inputs (against the stand-ins of comfy_standins.py): a malformed model folder,
a damaged video, a corrupt IMAGE batch each give the node's error, and the next prompt with good inputs runs."""

import os
import pathlib
import shutil

import comfy_standins
import flashvsr
import pytest
import torch

DIT = "diffusion_pytorch_model_streaming_dmd.safetensors"


@pytest.fixture(scope="module")
def models_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("comfy_hostile_models")
    good = root / "FlashVSR-v1.1"
    flashvsr.testing.make_random_weights(good, size="tiny", seed=3, prompt_tokens=64)
    # Malformed folders (each still lists as a model: it holds posi_prompt.pth)
    truncated = root / "FlashVSR-v1.1-truncated"
    shutil.copytree(good, truncated)
    with open(truncated / DIT, "r+b") as f:
        f.truncate(os.path.getsize(truncated / DIT) // 2)
    manifest = root / "FlashVSR-v1.1-bad-manifest"
    shutil.copytree(good, manifest)
    (manifest / "flashvsr_manifest.json").write_text('{"version": "v1.1", "files": {"x": {"size": 1e300}}}')
    link = root / "FlashVSR-v1.1-link"
    shutil.copytree(good, link)
    os.replace(link / DIT, root / "elsewhere.safetensors")
    os.symlink(root / "elsewhere.safetensors", link / DIT)
    garbage = root / "FlashVSR-v1.1-garbage"
    shutil.copytree(good, garbage)
    (garbage / "TCDecoder.ckpt").write_bytes(b"PK\x03\x04" + os.urandom(2000))
    return root


@pytest.fixture()
def comfy(monkeypatch, models_root, tmp_path):
    with comfy_standins.node_registry(monkeypatch, models_root, tmp_path / "temp") as registry:
        yield registry


OPTIONS = dict(
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


def _load(nodes, model="FlashVSR-v1.1"):
    return (
        nodes["FlashVSRModelLoader"]
        .execute(model=model, version="auto", mode="tiny", precision="fp32", device="comfy")
        .values[0]
    )


def _upscale(nodes, patcher, images):
    return nodes["FlashVSRUpscale"].execute(model=patcher, images=images, **OPTIONS).values[0]


def _good_prompt_runs(nodes):
    out = _upscale(nodes, _load(nodes), torch.rand(3, 16, 24, 3))
    assert out.shape == (3, 32, 48, 3) and out.dtype == torch.float32


@pytest.mark.parametrize(
    "folder, names",
    [
        ("FlashVSR-v1.1-truncated", [DIT]),
        ("FlashVSR-v1.1-bad-manifest", ["flashvsr_manifest.json"]),
        ("FlashVSR-v1.1-link", [DIT, "outside the folder"]),
        ("FlashVSR-v1.1-garbage", ["TCDecoder.ckpt"]),
    ],
)
def test_malformed_model_folder_is_a_node_error_and_the_next_prompt_runs(comfy, folder, names):
    _, nodes = comfy
    with pytest.raises(flashvsr.Error) as e:  # at load, or at the first run (the engine loads lazily)
        _upscale(nodes, _load(nodes, folder), torch.rand(2, 16, 24, 3))
    for n in names:
        assert n in str(e.value)
    assert "\n" not in str(e.value).strip()
    _good_prompt_runs(nodes)


@pytest.mark.parametrize(
    "images",
    [
        torch.rand(2, 16, 24, 2),  # two channels
        torch.rand(0, 16, 24, 3),  # no frame
        torch.rand(16, 24, 3),  # no batch dimension
        torch.full((2, 16, 24, 3), float("nan")),  # NaN everywhere
    ],
)
def test_corrupt_image_batch_is_a_node_error_or_a_valid_result(comfy, images):
    _, nodes = comfy
    patcher = _load(nodes)
    try:
        out = _upscale(nodes, patcher, images)
    except (ValueError, flashvsr.Error):
        pass
    else:  # accepted: then the result is a valid IMAGE
        assert out.dtype == torch.float32 and torch.isfinite(out).all()
        assert out.min() >= 0.0 and out.max() <= 1.0
    _good_prompt_runs(nodes)


def test_damaged_video_is_a_node_error_and_the_next_prompt_runs(comfy, tmp_path):
    mods, nodes = comfy
    if "FlashVSRUpscaleVideo" not in nodes:
        pytest.fail("the stand-ins provide VIDEO, so the video node must be listed")
    src = tmp_path / "in.mp4"
    flashvsr.io.write_synthetic_clip(str(src), width=32, height=24, frames=9, audio=True)
    data = src.read_bytes()
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(data[:200])  # the header breaks off: no stream to decode
    node = nodes["FlashVSRUpscaleVideo"]
    video_cls = mods["comfy_api.latest"].InputImpl.VideoFromFile
    with pytest.raises(Exception) as e:
        node.execute(model=_load(nodes), video=video_cls(str(bad)), crf=18, **OPTIONS)
    assert not isinstance(e.value, (SystemExit, KeyboardInterrupt))
    temp = pathlib.Path(mods["folder_paths"].get_temp_directory()) / "flashvsr"
    assert not list(temp.glob("*.part")), "a partial output was left behind"
    out = node.execute(model=_load(nodes), video=video_cls(str(src)), crf=18, **OPTIONS).values[0]
    assert os.path.getsize(out.get_stream_source()) > 0
    _good_prompt_runs(nodes)
