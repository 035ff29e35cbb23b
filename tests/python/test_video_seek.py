"""flashvsr.io.VideoReader(start_frame=k): a frame-accurate seek giving frames k.. of a read from the start, bit
for bit, while decoding at most a GOP before k; and a distributed segment's worker (no Ray needed) that seeks to
its input writes the same frames as one that decodes from the start (a raw .h264 copy of the stream: no seek)."""

import os
import subprocess

import flashvsr
import flashvsr.distributed as fd
import pytest
import torch
from flashvsr.distributed.worker import SegmentTask, run_segment


def read_all(reader, batch=7):
    parts = []
    while True:
        b = reader.read(batch)
        if b.shape[0] == 0:
            return torch.cat(parts) if parts else torch.empty(0)
        parts.append(b)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """The synthetic clip: libx264 with B-frames, GOP 12, 88 frames, an AAC track."""
    p = tmp_path_factory.mktemp("seek") / "clip.mkv"
    flashvsr.io.write_synthetic_clip(str(p), width=48, height=32, frames=88)
    return p


def test_start_frame_equals_reading_from_the_start(clip):
    whole = read_all(flashvsr.io.VideoReader(str(clip)))
    assert whole.shape == (88, 32, 48, 3)
    for k in (0, 5, 12, 30, 87):
        r = flashvsr.io.VideoReader(str(clip), start_frame=k)
        assert r.seeked == (k > 0) and r.notes == []
        got = read_all(r)
        assert torch.equal(got, whole[k:]), k
        assert 88 - k <= r.frames_decoded <= 88 - k + 11, (k, r.frames_decoded)
    with pytest.raises(flashvsr.InputError, match=r"start frame 88 is past the end of the video \(it has 88 frames\)"):
        flashvsr.io.VideoReader(str(clip), start_frame=88)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("models") / "FlashVSR-v1.1"
    flashvsr.testing.make_random_weights(d, size="tiny", seed=3, prompt_tokens=64)
    return d


def test_segment_worker_seeks_with_the_same_frames(clip, model_dir, tmp_path):
    raw = tmp_path / "clip.h264"  # the same H.264 stream without timestamps: decoded from the start, no seek
    subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(clip), "-c:v", "copy", "-an", str(raw)], check=True, capture_output=True
    )
    r = flashvsr.io.VideoReader(str(raw), start_frame=29)
    assert not r.seeked and "video packets without timestamps" in r.notes[0]
    segments = fd.plan_segments(88, segment_frames=24, warmup_frames=8)
    assert [s.input_begin for s in segments] == [0, 29, 53, 77]
    torch.set_num_threads(1)
    for seg in segments[1:]:  # the ones that seek
        outs = []
        for src in (clip, raw):
            out = tmp_path / f"{src.suffix[1:]}_{seg.index}"
            out.mkdir()
            task = SegmentTask(
                segment=seg,
                input=str(src),
                input_files=None,
                output_dir=str(out),
                output_pattern="%05d.png",
                bits=16,
                engine_options={"model_dir": str(model_dir), "device": "cpu"},
                stream_options={"scale": 2},
            )
            assert run_segment(task)["frames"] == (seg.output_end if seg.output_end >= 0 else 88) - seg.output_begin
            names = sorted(os.listdir(out))
            outs.append((names, torch.stack([flashvsr.io.read_image(str(out / n)) for n in names])))
        assert outs[0][0] == outs[1][0] and torch.equal(outs[0][1], outs[1][1]), seg
