"""flashvsr.distributed (docs/SCALE_OUT.md) on a local Ray instance (127.0.0.1, 2 CPUs), tiny random
weights, one intra-op thread per worker: segments equal to one stream (bit for bit where the warm-up reaches
chunk 0, within the replay bound after a seam), N frames in -> N out, a SIGKILLed worker retried with the same
output, a failing segment failing the job cleanly, cancellation by callback and by Ctrl-C (SIGINT to the command),
video output joined by stream copy, the message without Ray."""

import os
import pathlib
import re
import signal
import subprocess
import sys
import time

import flashvsr
import flashvsr.distributed as fd
import pytest
import torch

N = 8 * 9 + 13 + 3  # 88 frames: chunks 0..9, the last one padded at the tail
H, W = 32, 48


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("models") / "FlashVSR-v1.1"
    flashvsr.testing.make_random_weights(d, size="tiny", seed=3, prompt_tokens=64)
    return d


@pytest.fixture(scope="module")
def frames_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("frames")
    g = torch.Generator().manual_seed(12)
    base = torch.rand(H, W, 3, generator=g)
    for i in range(N):  # a slowly moving pattern with noise: some temporal coherence for the caches
        f = (torch.roll(base, shifts=i % W, dims=1) * 0.7 + 0.3 * torch.rand(H, W, 3, generator=g)).clamp(0, 1)
        flashvsr.io.write_image(str(d / f"f_{i:04d}.png"), f, 16)
    return d


@pytest.fixture(scope="module")
def reference(model_dir, frames_dir):
    """The single-process run on the same 16-bit frames, in 16-bit levels as the output files hold them."""
    torch.set_num_threads(1)
    engine = flashvsr.load(model_dir, device="cpu")
    seq = flashvsr.io.image_sequence(str(frames_dir))
    frames = torch.stack([flashvsr.io.read_image(f) for f in seq["files"]])
    out = engine.upscale(frames, scale=2)
    engine.close()
    return levels(out)


@pytest.fixture(scope="module")
def ray_local():
    import builtins

    print_before = builtins.print
    os.environ.setdefault("RAY_TQDM_PATCH_PRINT", "0")  # as upscale_file does: Ray keeps its hands off print
    import ray

    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        address="local",
        _node_ip_address="127.0.0.1",
        object_store_memory=80 * 1024 * 1024,
    )
    yield ray
    ray.shutdown()
    assert builtins.print is print_before  # later tests pickle print (test_models): it must be the builtin


def options(model_dir, **kw):
    return dict(
        model_dir=model_dir, device="cpu", scale=2, bits=16, threads=1, workers=2, segment_frames=24, quiet=True, **kw
    )


def levels(x):
    return torch.round(x * 65535).to(torch.int32)


def read_output(folder):
    """File names and the frames in 16-bit levels."""
    names = sorted(os.listdir(folder))
    return names, levels(torch.stack([flashvsr.io.read_image(str(folder / n)) for n in names]))


def test_plan_segments():
    segs = fd.plan_segments(N, segment_frames=24)
    assert [(s.first_chunk, s.end_chunk) for s in segs] == [(0, 3), (3, 6), (6, 9), (9, -1)]
    assert [(s.output_begin, s.output_end) for s in segs] == [(0, 37), (37, 61), (61, 85), (85, -1)]
    # The default warm-up is the replay depth, 6 chunks = 48 frames; it starts at chunk 0 where it can.
    assert [s.warmup_chunks for s in segs] == [6] * 4
    assert [s.input_begin for s in segs] == [0, 0, 0, 8 * 3 + 13]
    assert segs[3].warmup_frames == 48
    assert segs[1].input_end == 8 * 5 + 25  # 4 frames past the segment's last output frame
    assert fd.chunks_of(1) == fd.chunks_of(21) == 1 and fd.chunks_of(22) == 2 and fd.chunks_of(N) == 10
    assert [s.warmup_chunks for s in fd.plan_segments(N, 24, warmup_frames=16)] == [2] * 4
    assert len(fd.plan_segments(10_000, 2048)) == 5
    with pytest.raises(ValueError, match="warmup_frames must be a multiple of 8"):
        fd.plan_segments(N, 24, warmup_frames=12)
    with pytest.raises(ValueError, match="segment_frames must be >= 8"):
        fd.plan_segments(N, 4)


def test_segments_equal_one_stream(ray_local, model_dir, frames_dir, reference, tmp_path):
    out = tmp_path / "up"
    r = fd.upscale_file(str(frames_dir), str(out) + "/", **options(model_dir))
    assert r["frames"] == N and r["segments"] == 4 and r["restarts"] == 0
    names, got = read_output(out)
    assert names == [f"{i:06d}.png" for i in range(N)]  # N in -> N out, numbered from 0
    assert got.shape == reference.shape
    # Segments 0-2 warm up from chunk 0: bit-identical to one stream (after the same 16-bit quantization).
    assert torch.equal(got[:85], reference[:85])
    # Segment 3 warms up from chunk 3 (cold): within the replay bound, but not a copy.
    d = (got[85:] - reference[85:]).abs().double() / 65535
    assert 0 < d.max().item() <= 1e-3 and d.mean().item() <= 1e-4
    assert not os.path.exists(str(out) + f".tmp-{os.getpid()}")


def test_killed_worker_is_retried_with_the_same_output(ray_local, model_dir, frames_dir, tmp_path):
    ref_dir = tmp_path / "ref"
    fd.upscale_file(str(frames_dir), str(ref_dir) + "/", **options(model_dir))
    killed = []

    def kill_segment_2(info):
        s = info["segments"].get(2)
        if not killed and s and s["chunks"] >= 2:  # segment 2 is mid-way (9 chunks: 6 warm-up, 3 its own)
            os.kill(s["pid"], signal.SIGKILL)
            killed.append(s["pid"])

    out = tmp_path / "up"
    r = fd.upscale_file(str(frames_dir), str(out) + "/", progress=kill_segment_2, **options(model_dir))
    assert len(killed) == 1 and r["restarts"] >= 1
    names, got = read_output(out)
    ref_names, ref = read_output(ref_dir)
    assert names == ref_names and len(names) == N
    assert torch.equal(got, ref)


def test_failing_segment_fails_the_job(ray_local, model_dir, frames_dir, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    for f in sorted(frames_dir.iterdir()):
        os.link(f, bad / f.name)
    os.unlink(bad / "f_0086.png")  # read by segments 2 (frames 0..87) and 3 (37..87), whichever gets there first
    (bad / "f_0086.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    out = tmp_path / "up"
    with pytest.raises(fd.SegmentFailed) as e:
        fd.upscale_file(str(bad), str(out) + "/", **options(model_dir))
    msg = str(e.value)
    assert "\n" not in msg
    assert re.match(r"segment (2 \(frames 61\.\.85\)|3 \(frames 85\.\.end\)) on \S+ \(pid \d+\) failed: ", msg), msg
    assert msg.endswith("f_0086.png' is a damaged PNG file (truncated header)"), msg
    assert not out.exists()
    assert not os.path.exists(str(out) + f".tmp-{os.getpid()}")  # the job's folder is removed


def test_cancel_stops_every_task(ray_local, model_dir, frames_dir, tmp_path, monkeypatch):
    seen = []
    killed = []  # ray.cancel is only the last resort: the tasks stop by themselves at their next chunk
    monkeypatch.setattr(ray_local, "cancel", lambda ref, **kw: killed.append(ref))

    def stop_when_running(info):
        seen.append(info["done"])
        return not any(s["chunks"] > 0 for s in info["segments"].values())

    out = tmp_path / "up"
    with pytest.raises(flashvsr.Cancelled, match="cancelled by the progress callback"):
        fd.upscale_file(str(frames_dir), str(out) + "/", progress=stop_when_running, **options(model_dir))
    assert not out.exists() and not os.path.exists(str(out) + f".tmp-{os.getpid()}")
    assert max(seen) < N
    assert killed == []


def test_video_input(ray_local, model_dir, tmp_path):
    # Video in, images out: each worker streams its frames from the decoder (flashvsr.io.VideoReader, bounded
    # memory); both segments warm up from chunk 0, so the images equal a single-process upscale_file's.
    clip = tmp_path / "clip.mp4"
    flashvsr.io.write_synthetic_clip(str(clip), width=48, height=32, frames=45, audio=False)
    out = tmp_path / "up"
    r = fd.upscale_file(str(clip), str(out / "%05d.png"), **options(model_dir))
    assert r["frames"] == 45 and r["segments"] == 2
    assert sorted(os.listdir(out)) == [f"{i:05d}.png" for i in range(45)]
    one = flashvsr.upscale_file(
        clip, tmp_path / "one" / "%05d.png", model_dir=model_dir, device="cpu", scale=2, bit_depth=16
    )
    assert one["frames_out"] == 45
    names_a, a = read_output(out)
    names_b, b = read_output(tmp_path / "one")
    assert names_a == names_b and torch.equal(a, b)


def test_video_reader_streams_in_batches(tmp_path):
    clip = tmp_path / "clip.mp4"
    flashvsr.io.write_synthetic_clip(str(clip), width=48, height=32, frames=20, audio=False)
    reader = flashvsr.io.VideoReader(str(clip))
    assert (reader.width, reader.height) == (48, 32)
    sizes = []
    while True:
        b = reader.read(8)
        if b.shape[0] == 0:
            break
        assert b.dtype == torch.float32 and b.shape[1:] == (32, 48, 3)
        sizes.append(b.shape[0])
    assert sizes == [8, 8, 4] and reader.frames_read == 20
    whole = flashvsr.io.read_video_rgb24(str(clip)).float()
    reader = flashvsr.io.VideoReader(str(clip))
    assert torch.equal(torch.round(reader.read(20) * 255), whole)  # 8-bit source: the same levels
    with pytest.raises(flashvsr.InputError, match="max_frames"):
        reader.read(0)


def test_video_output_joined_equals_one_run(ray_local, model_dir, tmp_path):
    # Video in, video out: segments encoded by the workers (lossless x264 with B-frames, no audio), joined by
    # stream copy with the source's audio; both segments warm up from chunk 0, so the frames equal one run's.
    clip = tmp_path / "clip.mkv"
    flashvsr.io.write_synthetic_clip(str(clip), width=48, height=32, frames=45, fps_num=24000, fps_den=1001)
    enc = {"encoder_options": {"x264-params": "qp=0:no-mbtree=1"}}
    one = flashvsr.upscale_file(clip, tmp_path / "one.mkv", model_dir=model_dir, device="cpu", scale=2, **enc)
    r = fd.upscale_file(str(clip), str(tmp_path / "dist.mkv"), **options(model_dir), **enc)
    assert r["frames"] == one["frames_out"] == 45 and r["segments"] == 2
    a = flashvsr.io.read_video_rgb24(str(tmp_path / "one.mkv"))
    b = flashvsr.io.read_video_rgb24(str(tmp_path / "dist.mkv"))
    assert a.shape == (45, 64, 96, 3) and torch.equal(a, b)
    streams = flashvsr.io.probe(str(tmp_path / "dist.mkv"))["streams"]
    assert [s["type"] for s in streams] == ["video", "audio"]
    assert streams[0]["duration"] == pytest.approx(
        flashvsr.io.probe(str(tmp_path / "one.mkv"))["streams"][0]["duration"]
    )
    assert sorted(os.listdir(tmp_path)) == ["clip.mkv", "dist.mkv", "one.mkv"]  # the segments' folder is gone


def test_bad_arguments(model_dir, frames_dir, tmp_path):
    with pytest.raises(TypeError, match="unknown option.*colour_fix"):
        fd.upscale_file(str(frames_dir), str(tmp_path / "o") + "/", model_dir=model_dir, colour_fix="adain")
    (tmp_path / "o.mp4").write_bytes(b"x")
    with pytest.raises(flashvsr.InputError, match="exists"):
        fd.upscale_file(str(frames_dir), str(tmp_path / "o.mp4"), model_dir=model_dir)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x.txt").write_text("x")
    with pytest.raises(flashvsr.InputError, match="is not empty"):
        fd.upscale_file(str(frames_dir), str(tmp_path / "full") + "/", model_dir=model_dir)


def test_without_ray_the_command_says_how_to_get_it(monkeypatch, model_dir, frames_dir, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    from flashvsr.distributed.__main__ import main

    rc = main([str(frames_dir), str(tmp_path / "o") + "/", "--model-dir", str(model_dir), "--quiet"])
    assert rc == 1
    assert "pip install '.[distributed]'" in capsys.readouterr().err
    with pytest.raises(ImportError, match=r"pip install '\.\[distributed\]'"):
        fd.upscale_file(str(frames_dir), str(tmp_path / "o") + "/", model_dir=model_dir)


def test_command_help():
    r = subprocess.run([sys.executable, "-m", "flashvsr.distributed", "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "--segment-frames" in r.stdout and "--warmup-frames" in r.stdout
    # every model and upscale option of the library's table is a flag of the command, as in `flashvsr upscale`
    specs = [s for s in flashvsr._C.option_specs() if s["group"] in ("engine", "upscale")]
    assert len(specs) == 16
    for s in specs:
        assert s["cli_flag"] in r.stdout, s["name"]
    assert "{adain,wavelet,none}" in r.stdout  # choices from the table


def test_command_passes_only_the_options_given(monkeypatch):
    import flashvsr.distributed.__main__ as cmd

    seen = {}

    def fake_upscale_file(input, output, **kw):
        seen.update(kw)
        return {"frames": 0, "segments": 0, "seconds": 1.0, "fps": 0.0, "output": output}

    monkeypatch.setattr(cmd, "upscale_file", fake_upscale_file)
    assert cmd.main(["in/", "out/", "--color-fix", "wavelet", "--kv-ratio", "2.5", "--quiet"]) == 0
    assert seen["color_fix"] == "wavelet" and seen["kv_ratio"] == 2.5
    assert "scale" not in seen and "mode" not in seen  # the library's defaults apply
    with pytest.raises(SystemExit):
        cmd.main(["in/", "out/", "--color-fix", "sharp"])  # not a choice of the table


def test_ctrl_c_cancels_every_task(model_dir, frames_dir, tmp_path):
    # The command in its own process with its own local Ray: SIGINT once the first frames are written.
    out = tmp_path / "up"
    p = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "flashvsr.distributed",
            str(frames_dir),
            str(out) + "/",
            "--model-dir",
            str(model_dir),
            "--device",
            "cpu",
            "--scale",
            "2",
            "--workers",
            "2",
            "--threads",
            "1",
            "--segment-frames",
            "24",
        ],
        # SIGINT back to its default in the child: a test run started in the background by a non-interactive
        # shell (`bash .ci/run &`) passes SIGINT on ignored, and Python then keeps ignoring it.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    tmp = pathlib.Path(f"{out}.tmp-{p.pid}")
    deadline = time.monotonic() + 120
    while p.poll() is None and time.monotonic() < deadline and not (tmp.is_dir() and any(tmp.iterdir())):
        time.sleep(0.05)
    assert p.poll() is None, p.communicate()
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 130, err
    assert "cancelled (Ctrl-C): every segment task was cancelled, no output written" in err
    assert not out.exists() and not tmp.exists()
