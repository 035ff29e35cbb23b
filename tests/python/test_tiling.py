"""Tiling options and the memory report from Python (tiny random weights, CPU)."""

import flashvsr
import pytest
import torch


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    d = tmp_path_factory.mktemp("models") / "FlashVSR-v1.1"
    flashvsr.testing.make_random_weights(d, size="tiny", seed=4, prompt_tokens=64)
    return flashvsr.load(d, device="cpu")


def test_one_tile_equals_untiled_and_tiles_keep_the_contract(engine):
    torch.manual_seed(0)
    frames = torch.rand(9, 40, 72, 3)  # x2 -> 80x144, padded 128x256
    ref = engine.upscale(frames, scale=2)
    whole = engine.upscale(frames, scale=2, tile_size=128)  # 256 output pixels: one tile covers the frame
    assert torch.equal(ref, whole)
    tiled = engine.upscale(frames, scale=2, tile_size=64, tile_overlap=16)  # 128-pixel tiles
    assert tiled.shape == (9, 80, 144, 3) and tiled.dtype == torch.float32
    assert 0.0 <= tiled.min().item() and tiled.max().item() <= 1.0
    assert not torch.equal(tiled, ref)  # really tiled


def test_stream_reports_its_tiles(engine):
    s = engine.stream(scale=2, tile_size=64, tile_overlap=16)
    s.push(torch.rand(3, 40, 72, 3))
    # 128x256 padded frame, 128-pixel tiles, >= 32 overlap: three tiles overlapping by 64 (evenly spread)
    assert s.tiles == [(0, 0, 128, 128), (0, 64, 128, 128), (0, 128, 128, 128)]
    s.finish()
    assert s.pull().shape == (3, 80, 144, 3)


def test_bad_tiling_options_name_the_option(engine):
    frames = torch.rand(1, 8, 8, 3)
    with pytest.raises(flashvsr.InputError, match="tile_size"):
        engine.upscale(frames, scale=2, tile_size=-1)
    with pytest.raises(flashvsr.InputError, match="tile_overlap"):
        engine.upscale(frames, scale=2, tile_size=64, tile_overlap=40)
    with pytest.raises(flashvsr.InputError, match="max_memory"):
        engine.stream(scale=2, max_memory=-5)
    with pytest.raises(flashvsr.InputError, match="max_memory"):
        engine.upscale(frames, scale=2, max_memory=1000)  # below the weights


def test_memory_report(engine):
    m = engine.memory()
    assert m["rss_bytes"] > 10 * 2**20
    assert m["peak_rss_bytes"] >= m["rss_bytes"]
    assert m["cuda"] == torch.cuda.is_available() or not m["cuda"]
    if not m["cuda"]:
        assert "cuda_allocated_bytes" not in m
    assert flashvsr.memory_report()["rss_bytes"] > 0


def test_park_tile_state_kwarg(tmp_path):
    model_dir = tmp_path / "FlashVSR-v1.1"
    flashvsr.testing.make_random_weights(model_dir, size="tiny", seed=6, prompt_tokens=64)
    engine = flashvsr.load(model_dir, device="cpu")
    frames = torch.rand(5, 32, 64, 3)
    ref = engine.upscale(frames, scale=4, tile_size=32, tile_overlap=16)
    parked = engine.upscale(frames, scale=4, tile_size=32, tile_overlap=16, park_tile_state="on")
    assert torch.equal(parked, ref)  # parking moves state, it never changes numbers
    with pytest.raises(flashvsr.InputError, match="park_tile_state"):
        engine.upscale(frames, scale=4, park_tile_state="maybe")
