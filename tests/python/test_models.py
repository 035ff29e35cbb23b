"""Checkpoint contracts from Python: manifests and key hashes, test weights in the published formats,
the engine's own readers against files written by torch/safetensors, and the networks' Python faces."""

import collections
import pickle
import zipfile

import flashvsr
import pytest
import torch
from flashvsr import models, nn
from safetensors.torch import load_file, save_file


@pytest.mark.parametrize(
    "component,count,params,hash_",
    [
        ("dit", 825, 1_418_996_800, "9269f8db9040a9d860eaca435be61814"),
        ("vae", 194, 126_892_531, "ccc42284ea13e1ad04693284c7a09be6"),
        ("lq_proj", 8, 287_845_888, None),
        ("tcdecoder", 66, 45_338_371, None),
    ],
)
def test_full_manifests_match_the_release(component, count, params, hash_):
    m = models.parameter_manifest(component, "full")
    assert len(m) == count
    total = 0
    for _, shape in m:
        n = 1
        for d in shape:
            n *= d
        total += n
    assert total == params
    if hash_:
        assert models.key_hash(m) == hash_


def test_unknown_component_or_size_is_an_input_error():
    with pytest.raises(flashvsr.InputError, match="component"):
        models.parameter_manifest("unet")
    with pytest.raises(flashvsr.InputError):
        models.parameter_manifest("dit", "huge")


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("w") / "FlashVSR-v1.1"
    flashvsr.testing.make_random_weights(d, size="tiny", seed=1)
    return d


def test_random_weights_are_in_the_published_formats(tiny_dir):
    dit = load_file(str(tiny_dir / "diffusion_pytorch_model_streaming_dmd.safetensors"))
    assert {k: tuple(v.shape) for k, v in dit.items()} == dict(models.parameter_manifest("dit", "tiny"))
    assert all(v.dtype == torch.float32 for v in dit.values())
    lq = torch.load(tiny_dir / "LQ_proj_in.ckpt", weights_only=True)
    assert isinstance(lq, collections.OrderedDict)
    assert {k: tuple(v.shape) for k, v in lq.items()} == dict(models.parameter_manifest("lq_proj", "tiny"))
    assert all(v.dtype == torch.bfloat16 for v in lq.values())
    tc = torch.load(tiny_dir / "TCDecoder.ckpt", weights_only=True)
    assert set(tc) == {k for k, _ in models.parameter_manifest("tcdecoder", "tiny")}
    vae = torch.load(tiny_dir / "Wan2.1_VAE.pth", weights_only=True)
    assert len(vae) == 194 and any(k.startswith("encoder.") for k in vae)
    prompt = torch.load(tiny_dir / "posi_prompt.pth", weights_only=True)
    assert prompt.dtype == torch.bfloat16 and prompt.shape == (1, 512, 64)
    assert prompt[0, 32:].abs().max().item() == 0  # padded rows are zero, like the released prompt


def test_inspect_reports_version_counts_and_dtypes(tiny_dir):
    info = models.inspect(tiny_dir)
    assert info["version"] == "v1.1" and info["version_source"] == "manifest"
    files = {f["name"]: f for f in info["files"]}
    assert files["LQ_proj_in.ckpt"]["dtypes"] == ["bf16"]
    assert files["Wan2.1_VAE.pth"]["tensors"] == 194
    assert files["diffusion_pytorch_model_streaming_dmd.safetensors"]["config"].startswith("dim=256 layers=2")
    assert info["missing"] == [] and info["warnings"] == []


def test_engine_readers_match_torch_and_safetensors(tmp_path):
    torch.manual_seed(0)
    base = torch.randn(6, 8)
    sd = collections.OrderedDict(a=torch.randn(3, 4).bfloat16(), b=base[1:5, ::2], c=base.t(), h=torch.randn(5).half())
    torch.save(sd, tmp_path / "sd.pth")
    torch.save(dict(sd), tmp_path / "plain.ckpt")
    torch.save(torch.arange(6.0).reshape(2, 3), tmp_path / "bare.pt")
    save_file({k: v.contiguous() for k, v in sd.items()}, str(tmp_path / "m.safetensors"))
    for name in ("sd.pth", "plain.ckpt", "m.safetensors"):
        got = models.load_tensors(tmp_path / name)
        assert set(got) == set(sd)
        for k, v in sd.items():
            assert got[k].dtype == v.dtype and torch.equal(got[k], v), (name, k)
    assert torch.equal(models.load_tensors(tmp_path / "bare.pt")[""], torch.arange(6.0).reshape(2, 3))


def test_pickles_naming_other_globals_are_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    path = tmp_path / "evil.ckpt"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("evil/data.pkl", pickle.dumps({"w": Evil()}, protocol=2))
        z.writestr("evil/version", "3\n")
    with pytest.raises(flashvsr.ModelError, match=r"forbidden global '(__builtin__|builtins)\.print'"):
        models.load_tensors(path)
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint at all")
    with pytest.raises(flashvsr.ModelError, match="junk.pth"):
        models.load_tensors(tmp_path / "junk.pth")


def test_networks_from_python(tiny_dir):
    proj = nn.LQProjector(tiny_dir / "LQ_proj_in.ckpt")
    st = nn.LQProjState()
    video = torch.rand(1, 3, 5, 128, 128) * 2 - 1
    assert proj.stream(video[:, :, :1], st) is None  # priming call
    tokens = proj.stream(video[:, :, 1:5], st)
    assert tokens.shape == (1, 64, 256) and st.clip_index == 2 and st.bytes > 0

    dit = nn.DiT(tiny_dir / "diffusion_pytorch_model_streaming_dmd.safetensors")
    consts = dit.prepare(torch.load(tiny_dir / "posi_prompt.pth", weights_only=True).float())
    ds = nn.DiTState()
    v = dit.forward_chunk(torch.randn(1, 16, 6, 16, 16), torch.zeros(1, 6 * 64, 256), consts, ds)
    assert v.shape == (1, 16, 6, 16, 16) and ds.chunk_index == 1

    tc = nn.TCDecoder(tiny_dir / "TCDecoder.ckpt")
    ts = nn.TCDecoderState()
    frames = tc.decode(torch.randn(1, 16, 6, 16, 16), torch.rand(1, 3, 21, 128, 128) * 2 - 1, ts)
    assert frames.shape == (1, 3, 21, 128, 128)

    vae = nn.VAEDecoder(tiny_dir / "Wan2.1_VAE.pth")
    vs = nn.VAEDecodeState()
    out = vae.decode(torch.randn(1, 16, 2, 4, 4), vs)
    assert out.shape == (1, 3, 5, 32, 32) and out.abs().max() <= 1

    with pytest.raises(flashvsr.ModelError, match="missing key"):
        nn.TCDecoder({"decoder.1.weight": torch.zeros(64, 784, 3, 3)})


def test_published_file_names():
    assert flashvsr.models.FILES == {
        "dit": "diffusion_pytorch_model_streaming_dmd.safetensors",
        "lq_proj": "LQ_proj_in.ckpt",
        "tcdecoder": "TCDecoder.ckpt",
        "vae": "Wan2.1_VAE.pth",
        "prompt": "posi_prompt.pth",
    }
