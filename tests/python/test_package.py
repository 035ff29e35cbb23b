"""The installed package: version, build information, the op registry, errors, media helpers, the CLI."""

import json
import re
import subprocess

import flashvsr
import pytest
import torch


def test_version_is_the_project_version(repo_root):
    cmake = (repo_root / "CMakeLists.txt").read_text()
    expected = re.search(r"project\(flashvsr VERSION ([0-9.]+)", cmake).group(1)
    assert flashvsr.__version__ == expected
    assert flashvsr.build_info()["version"] == expected


def test_build_info_contract():
    info = flashvsr.build_info()
    for key in ("version", "torch", "cuda_compiled", "cuda_available", "ffmpeg", "opencv"):
        assert key in info
    assert isinstance(info["cuda_compiled"], bool)
    assert isinstance(info["cuda_available"], bool)
    # The native module was built against the torch that is running (an ABI requirement).
    assert info["torch"] == torch.__version__.split("+")[0]
    assert info["cuda_available"] == torch.cuda.is_available()
    assert info["ffmpeg"]["libavcodec"].startswith("59.")
    assert info["ffmpeg"]["libavformat"].startswith("59.")
    assert set(info["ffmpeg"]) == {"libavcodec", "libavformat", "libavutil", "libswscale", "libswresample"}
    assert info["opencv"].startswith("4.")


def test_error_hierarchy():
    assert issubclass(flashvsr.Error, RuntimeError)
    for cls in (flashvsr.InputError, flashvsr.ModelError, flashvsr.Cancelled):
        assert issubclass(cls, flashvsr.Error)
    with pytest.raises(flashvsr.InputError, match="nope.png"):
        flashvsr.io.read_image("/nonexistent/nope.png")


def test_blend_op_is_registered_for_cpu_and_meta():
    canvas = torch.zeros(2, 40, 70, 3)
    ones = torch.ones(2, 40, 40, 3)
    # two tiles overlapping by 10 columns: complementary ramps sum to exactly one
    torch.ops.flashvsr.blend_accumulate(canvas, ones, 0, 0, [0, 0, 0, 10])
    torch.ops.flashvsr.blend_accumulate(canvas, ones, 0, 30, [0, 0, 10, 0])
    assert torch.allclose(canvas, torch.ones_like(canvas), atol=1e-6)
    meta = torch.empty(2, 40, 70, 3, device="meta")
    torch.ops.flashvsr.blend_accumulate(meta, ones.to("meta"), 0, 0, [0, 0, 0, 10])
    with pytest.raises(RuntimeError, match="does not fit inside canvas"):
        torch.ops.flashvsr.blend_accumulate(canvas, ones, 5, 40, [0, 0, 0, 0])


def test_block_sparse_attention_op_from_python():
    torch.manual_seed(0)
    heads, hd, nq, nk = 2, 16, 3, 5
    q = torch.randn(nq, 128, heads * hd, dtype=torch.float64)
    k = torch.randn(nk, 128, heads * hd, dtype=torch.float64)
    v = torch.randn(nk, 128, heads * hd, dtype=torch.float64)
    mask = torch.rand(heads, nq, nk) < 0.5
    mask[0, 0] = False
    mask[1, 2] = True
    out = torch.ops.flashvsr.block_sparse_attention(q, k, v, mask, heads)
    # reference: dense attention with the block mask expanded to tokens, per head
    dense = mask.repeat_interleave(128, 1).repeat_interleave(128, 2)  # [heads, nq*128, nk*128]
    qh = q.reshape(-1, heads, hd).transpose(0, 1)
    kh = k.reshape(-1, heads, hd).transpose(0, 1)
    vh = v.reshape(-1, heads, hd).transpose(0, 1)
    s = (qh @ kh.transpose(1, 2)) / hd**0.5
    p = torch.softmax(s.masked_fill(~dense, float("-inf")), -1).nan_to_num(0.0)
    ref = (p @ vh).transpose(0, 1).reshape(nq, 128, heads * hd)
    assert (out - ref).abs().max().item() < 1e-12
    assert out[0, :, :hd].abs().max().item() == 0.0  # head 0 of window 0 keeps nothing
    meta = torch.ops.flashvsr.block_sparse_attention(q.to("meta"), k.to("meta"), v.to("meta"), mask.to("meta"), heads)
    assert meta.shape == q.shape and meta.device.type == "meta"


def test_int8_linear_op_from_python():
    torch.manual_seed(0)
    m, k, n = 19, 40, 24
    w = torch.randn(n, k)
    scale = (w.abs().amax(1, keepdim=True) / 127).clamp_min(1e-20)
    qweight = (w / scale).round().clamp(-127, 127).to(torch.int8).t().contiguous()  # [K, N]
    wscale = scale.view(-1).contiguous()
    x, bias = torch.randn(1, m, k), torch.randn(n)
    out = torch.ops.flashvsr.int8_linear(x, qweight, wscale, bias)
    # reference: the per-token int8 arithmetic, one torch op at a time (the fused CPU kernel is bit-identical)
    x2 = x.reshape(m, k)
    amax = x2.abs().amax(1, keepdim=True).clamp_min(1e-20)
    xq = (x2 * (127.0 / amax)).round().to(torch.int8)
    ref = (torch._int_mm(xq, qweight).float() * (amax * (1.0 / 127.0)) * wscale + bias).view(1, m, n)
    assert torch.equal(out, ref)
    assert (out - torch.nn.functional.linear(x, w, bias)).abs().max().item() < 0.05 * ref.abs().max().item()
    meta = torch.ops.flashvsr.int8_linear(x.to("meta"), qweight.to("meta"), wscale.to("meta"), None)
    assert meta.shape == (1, m, n) and meta.device.type == "meta"
    with pytest.raises(RuntimeError, match="qweight must be int8"):
        torch.ops.flashvsr.int8_linear(x, qweight.float(), wscale, bias)


def test_media_helpers_round_trip(tmp_path):
    clip = tmp_path / "clip.mp4"
    flashvsr.io.write_synthetic_clip(str(clip), width=128, height=64, frames=9, fps_num=25, fps_den=1)
    info = flashvsr.io.probe(str(clip))
    video = info["streams"][info["best_video"]]
    assert (video["codec"], video["width"], video["height"], video["fps"]) == ("h264", 128, 64, (25, 1))
    assert [s["type"] for s in info["streams"]].count("audio") == 1
    frames = flashvsr.io.read_video_rgb24(str(clip))
    assert frames.shape == (9, 64, 128, 3) and frames.dtype == torch.uint8

    img = torch.rand(10, 12, 3)
    flashvsr.io.write_image(str(tmp_path / "a.png"), img, bits=16)
    back = flashvsr.io.read_image(str(tmp_path / "a.png"))
    assert back.dtype == torch.float32 and back.shape == (10, 12, 3)
    assert (back - img).abs().max().item() <= 0.5 / 65535 + 1e-6


def test_cli_version_and_build_info(cli):
    out = subprocess.run([str(cli), "--version"], capture_output=True, text=True, check=True).stdout
    assert out.startswith(f"flashvsr {flashvsr.__version__} (torch ")
    info = json.loads(subprocess.run([str(cli), "build-info"], capture_output=True, text=True, check=True).stdout)
    assert info["version"] == flashvsr.__version__
    assert info["ffmpeg"] == flashvsr.build_info()["ffmpeg"]
    bad = subprocess.run([str(cli), "frobnicate"], capture_output=True, text=True)
    assert bad.returncode == 2 and "unknown command 'frobnicate'" in bad.stderr


def test_cli_runs_without_python_environment(cli, tmp_path):
    # No PYTHONPATH, no LD_LIBRARY_PATH, another working directory: the RUNPATHs must suffice.
    out = subprocess.run([str(cli), "--version"], capture_output=True, text=True, cwd=tmp_path, env={}, check=True)
    assert "flashvsr" in out.stdout


def test_no_hard_dependency_on_the_cuda_driver(cli):
    # libcuda.so.1 exists only where a driver is installed: nothing we ship may need it at load time
    # (the CUDA runtime dlopens it lazily), so everything loads on machines without GPU or driver.
    import pathlib
    import shutil

    readelf = shutil.which("readelf")
    assert readelf, "readelf (binutils) is needed for this check"
    pkg = pathlib.Path(flashvsr.__file__).parent
    binaries = [cli, *pkg.glob("_C*.so"), *pkg.glob("libflashvsr_core*.so")]
    assert len(binaries) == 3, binaries
    for b in binaries:
        dyn = subprocess.run([readelf, "-d", str(b)], capture_output=True, text=True, check=True).stdout
        needed = re.findall(r"\(NEEDED\)\s+Shared library: \[(.+?)\]", dyn)
        assert needed, b
        assert not [n for n in needed if n.startswith("libcuda.so")], (b, needed)


def test_comfyui_requirements_never_pull_torch(repo_root):
    # ComfyUI-Manager pip-installs requirements.txt into ComfyUI's environment: a torch (or a package that
    # depends on one) there would replace the user's CUDA torch and break the compiled engine.
    lines = [ln.split("#")[0].strip() for ln in (repo_root / "requirements.txt").read_text().splitlines()]
    reqs = [ln for ln in lines if ln]
    assert not [r for r in reqs if re.match(r"(torch|torchvision|torchaudio|flashvsr)\b", r, re.I)], reqs
