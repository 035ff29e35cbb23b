"""flashvsr.upscale_file: the library's transcode pipeline from Python -- N frames in, N out with the report,
keywords checked by name and type, missing input, cancel (callback, CancelToken, Ctrl-C) never leaving the
final file, the GIL released while it runs."""

import os
import signal
import threading

import flashvsr
import pytest
import torch


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("models") / "FlashVSR-v1.1"
    flashvsr.testing.make_random_weights(d, size="tiny", seed=4, prompt_tokens=64)
    return d


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    path = tmp_path_factory.mktemp("clips") / "in.mp4"
    flashvsr.io.write_synthetic_clip(str(path), width=32, height=24, frames=45, fps_num=25, fps_den=1, audio=True)
    return path


def _run(clip, out, model_dir, **kw):
    return flashvsr.upscale_file(clip, out, model_dir=model_dir, scale=2, device="cpu", **kw)


def test_n_frames_in_n_frames_out_with_report(clip, model_dir, tmp_path):
    seen = []
    out = tmp_path / "out.mkv"
    report = _run(clip, out, model_dir, progress=seen.append)
    assert report["status"] == "completed" and report["output"] == str(out)
    assert report["frames_in"] == report["frames_out"] == 45
    assert report["output_size"] == [64, 48] and report["encoder"] == "libx264"
    assert report["timings_s"]["run"] > 0 and report["model"]["version"] == "v1.1"
    frames = flashvsr.io.read_video_rgb24(str(out))
    assert frames.shape == (45, 48, 64, 3)
    info = flashvsr.io.probe(str(out))
    assert [s["type"] for s in info["streams"]] == ["video", "audio"]
    assert seen and seen[-1].final and seen[-1].frames_done == 45 and seen[-1].frames_total == 45
    assert [p.frames_done for p in seen] == sorted(p.frames_done for p in seen)
    assert sorted(os.listdir(tmp_path)) == ["out.mkv"]  # no temporary file left


def test_given_engine_equals_loaded_one(clip, model_dir, tmp_path):
    engine = flashvsr.load(model_dir, device="cpu")
    a = _run(clip, tmp_path / "a.mp4", model_dir, encoder_options={"x264-params": "no-mbtree=1"})
    b = flashvsr.upscale_file(
        clip, tmp_path / "b.mp4", engine=engine, scale=2, encoder_options={"x264-params": "no-mbtree=1"}
    )
    assert b["timings_s"]["load"] == 0.0 and a["timings_s"]["load"] > 0.0
    assert torch.equal(
        flashvsr.io.read_video_rgb24(str(tmp_path / "a.mp4")), flashvsr.io.read_video_rgb24(str(tmp_path / "b.mp4"))
    )
    engine.close()
    with pytest.raises(flashvsr.InputError, match="closed"):
        flashvsr.upscale_file(clip, tmp_path / "c.mp4", engine=engine)


def test_unknown_or_mistyped_keyword_is_named(clip, model_dir, tmp_path):
    with pytest.raises(TypeError, match="unexpected keyword argument 'scael'"):
        _run(clip, tmp_path / "o.mp4", model_dir, scael=3)
    with pytest.raises(TypeError, match="option 'crf' must be an int, got str"):
        _run(clip, tmp_path / "o.mp4", model_dir, crf="18")
    with pytest.raises(TypeError, match="option 'overwrite' must be a bool, got int"):
        _run(clip, tmp_path / "o.mp4", model_dir, overwrite=1)
    with pytest.raises(flashvsr.InputError, match="scale must be 2, 3 or 4"):
        flashvsr.upscale_file(clip, tmp_path / "o.mp4", model_dir=model_dir, scale=5)
    with pytest.raises(flashvsr.InputError, match="batch must be >= 1"):
        _run(clip, tmp_path / "o.mp4", model_dir, batch=0)
    assert set(flashvsr.UPSCALE_FILE_OPTIONS) >= {"scale", "codec", "crf", "overwrite", "keep_partial", "start"}
    assert os.listdir(tmp_path) == []


def test_missing_input_and_existing_output(clip, model_dir, tmp_path):
    with pytest.raises(flashvsr.InputError, match="missing.mp4"):
        _run(tmp_path / "missing.mp4", tmp_path / "o.mp4", model_dir)
    (tmp_path / "taken.mp4").write_bytes(b"keep")
    with pytest.raises(flashvsr.InputError, match="exists"):
        _run(clip, tmp_path / "taken.mp4", model_dir)
    assert (tmp_path / "taken.mp4").read_bytes() == b"keep"
    assert _run(clip, tmp_path / "taken.mp4", model_dir, overwrite=True)["frames_out"] == 45
    assert sorted(os.listdir(tmp_path)) == ["taken.mp4"]


@pytest.mark.parametrize("keep_partial", [True, False])
def test_cancel_from_progress_leaves_no_final_file(clip, model_dir, tmp_path, keep_partial):
    out = tmp_path / "out.mp4"
    with pytest.raises(flashvsr.Cancelled, match="cancelled after"):
        _run(clip, out, model_dir, keep_partial=keep_partial, progress=lambda p: p.frames_done == 0)
    assert not out.exists()
    if keep_partial:
        kept = flashvsr.io.read_video_rgb24(str(tmp_path / "out.partial.mp4"))
        assert 0 < kept.shape[0] < 45
        assert sorted(os.listdir(tmp_path)) == ["out.partial.mp4"]
    else:
        assert os.listdir(tmp_path) == []


def test_cancel_token_from_another_thread(clip, model_dir, tmp_path):
    token = flashvsr.CancelToken()
    started = threading.Event()

    def progress(p):
        started.set()

    threading.Thread(target=lambda: started.wait(60) and token.cancel()).start()
    with pytest.raises(flashvsr.Cancelled):
        _run(clip, tmp_path / "out.mp4", model_dir, cancel=token, progress=progress, keep_partial=False)
    assert token.cancelled and os.listdir(tmp_path) == []


def test_ctrl_c_raises_keyboard_interrupt_and_keeps_partial(model_dir, tmp_path):
    # 150 frames: once the first frames are out, many chunks remain, so the signal comes while the job runs
    long_clip = tmp_path / "long.mp4"
    flashvsr.io.write_synthetic_clip(str(long_clip), width=32, height=24, frames=150, fps_num=25, fps_den=1)
    first = threading.Event()
    # Python's own Ctrl-C handler for the test, whatever this process inherited: a test run started in the
    # background by a non-interactive shell (`bash .ci/run &`) starts with SIGINT ignored.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        threading.Thread(target=lambda: first.wait(60) and os.kill(os.getpid(), signal.SIGINT)).start()
        with pytest.raises(KeyboardInterrupt):
            _run(long_clip, tmp_path / "out.mp4", model_dir, progress=lambda p: first.set() if p.frames_done else None)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert not (tmp_path / "out.mp4").exists()
    assert sorted(os.listdir(tmp_path)) == ["long.mp4", "out.partial.mp4"]
    assert 0 < flashvsr.io.read_video_rgb24(str(tmp_path / "out.partial.mp4")).shape[0] < 150


def test_gil_is_released_while_it_runs(clip, model_dir, tmp_path):
    ticks = 0
    stop = threading.Event()

    def count():
        nonlocal ticks
        while not stop.is_set():
            ticks += 1

    t = threading.Thread(target=count)
    t.start()
    try:
        _run(clip, tmp_path / "out.mp4", model_dir, pipeline_depth=0)
    finally:
        stop.set()
        t.join()
    assert ticks > 1000
