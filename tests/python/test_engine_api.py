"""The Python engine API: contract, streaming, progress, cancellation, GIL, errors, memory."""

import threading
import time

import flashvsr
import pytest
import torch


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("models") / "FlashVSR-v1.1"
    flashvsr.testing.make_random_weights(d, size="tiny", seed=2, prompt_tokens=64)
    return d


@pytest.fixture(scope="module")
def engine(model_dir):
    return flashvsr.load(model_dir, device="cpu")


def test_int8_is_opt_in_and_keeps_the_contract(engine, model_dir):
    q8 = flashvsr.load(model_dir, dtype="int8", device="cpu")
    assert q8.info["dtype"] == "int8"
    assert q8.info["weight_bytes"] < engine.info["weight_bytes"]
    frames = torch.rand(5, 32, 48, 3, generator=torch.Generator().manual_seed(0))
    out = q8.upscale(frames, scale=2)
    assert out.shape == (5, 64, 96, 3) and out.dtype == torch.float32
    assert 0.0 <= out.min().item() and out.max().item() <= 1.0
    ref = engine.upscale(frames, scale=2)
    assert 0 < (out - ref).abs().max().item() < 0.1
    q8.close()


def test_info(engine, model_dir):
    info = engine.info
    assert info["version"] == "v1.1" and info["mode"] == "tiny"
    assert info["device"] == "cpu" and info["dtype"] == "fp32"
    assert info["weight_bytes"] > 0
    # the files' parameters alone; the held weights add the decoder's phase weights and the prompt constants
    assert 0 < info["checkpoint_bytes"] < info["weight_bytes"]


@pytest.mark.parametrize("n", [1, 2, 21, 22])
def test_n_frames_in_n_frames_out(engine, n):
    frames = torch.rand(n, 19, 27, 3)
    out = engine.upscale(frames, scale=2)
    assert out.shape == (n, 38, 54, 3)
    assert out.dtype == torch.float32 and out.device.type == "cpu"
    assert 0.0 <= out.min().item() and out.max().item() <= 1.0


def test_uint8_input_equals_float_input(engine):
    u8 = (torch.rand(3, 16, 16, 3) * 255).to(torch.uint8)
    assert torch.equal(engine.upscale(u8, scale=2), engine.upscale(u8.float() / 255, scale=2))


def test_stream_equals_upscale(engine):
    frames = torch.rand(37, 16, 16, 3)
    ref = engine.upscale(frames, scale=2, seed=7)
    s = engine.stream(scale=2, seed=7)
    parts = []
    for i in range(0, 37, 5):
        s.push(frames[i : i + 5])
        parts.append(s.pull())
    s.finish()
    parts.append(s.pull())
    assert torch.equal(torch.cat(parts), ref)
    assert s.frames_done == 37 and s.chunks_done == 3


def test_progress_and_cancel(engine):
    frames = torch.rand(45, 8, 8, 3)  # 4 chunks
    seen = []
    engine.upscale(frames, scale=2, progress=lambda done, total: seen.append((done, total)))
    assert seen == [(21, 45), (29, 45), (37, 45), (45, 45)]
    calls = []

    def stop(done, total):
        calls.append(done)
        return False

    with pytest.raises(flashvsr.Cancelled):
        engine.upscale(frames, scale=2, progress=stop)
    assert calls == [21]  # stopped within one chunk


def test_gil_is_released(engine):
    ticks = 0
    stop = threading.Event()

    def ticker():
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            time.sleep(0.001)

    t = threading.Thread(target=ticker)
    t.start()
    before = ticks
    engine.upscale(torch.rand(30, 16, 16, 3), scale=2)
    during = ticks - before
    stop.set()
    t.join()
    assert during > 10, "the Python thread did not run while the engine computed"


def test_non_finite_input_is_refused_naming_the_frame(engine):
    frames = torch.rand(5, 8, 8, 3)
    frames[3, 2, 4, 0] = float("nan")
    with pytest.raises(flashvsr.InputError, match=r"^push: frame 3 \(index 3 of this batch\) contains NaN or infinite"):
        engine.upscale(frames, scale=2)
    stream = engine.stream(scale=2)
    stream.push(torch.rand(2, 8, 8, 3))
    with pytest.raises(flashvsr.InputError, match=r"^push: frame 2 \(index 0 of this batch\)"):
        stream.push(torch.full((1, 8, 8, 3), float("-inf")))
    assert stream.frames_pushed == 2


def test_errors_are_typed_and_actionable(engine, tmp_path):
    with pytest.raises(flashvsr.InputError, match="scale must be 2, 3 or 4"):
        engine.upscale(torch.rand(2, 8, 8, 3), scale=5)
    with pytest.raises(flashvsr.InputError, match="color_fix"):
        engine.upscale(torch.rand(2, 8, 8, 3), color_fix="sepia")
    with pytest.raises(flashvsr.ModelError, match="does not exist"):
        flashvsr.load(tmp_path / "nowhere")
    with pytest.raises(flashvsr.ModelError, match="pass the version explicitly"):
        (tmp_path / "weights").mkdir()
        flashvsr.load(tmp_path / "weights")
    with pytest.raises(RuntimeError, match=r"\[F,H,W,3\]"):
        engine.upscale(torch.rand(2, 8, 8), scale=2)


def test_close_frees_and_refuses_further_use(model_dir):
    e = flashvsr.load(model_dir, device="cpu")
    e.close()
    assert e.closed
    with pytest.raises(flashvsr.InputError, match="closed"):
        e.upscale(torch.rand(1, 8, 8, 3))


def test_to_moves_without_reading_the_disk_and_refuses_with_live_streams(model_dir):
    e = flashvsr.load(model_dir, mode="tiny", device="cpu")
    frames = torch.rand(3, 16, 24, 3, generator=torch.Generator().manual_seed(4))
    before = e.upscale(frames, scale=2)
    assert e.to("cpu") is e and e.to(torch.device("cpu")) is e  # CPU to CPU: a no-op, the call works
    assert e.info["device"] == "cpu"
    assert torch.equal(e.upscale(frames, scale=2), before)
    s = e.stream(scale=2)
    with pytest.raises(flashvsr.InputError, match=r"1 stream\(s\) made from this engine are still alive"):
        e.to("cpu")
    del s
    e.to("cpu")
    with pytest.raises(flashvsr.InputError, match="device must be auto, cpu, cuda or cuda:N, got 'tpu'"):
        e.to("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(flashvsr.InputError, match="no CUDA device is available"):
            e.to("cuda")
    e.close()
    with pytest.raises(flashvsr.InputError, match="closed"):
        e.to("cpu")
