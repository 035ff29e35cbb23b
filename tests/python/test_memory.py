"""Memory over repeated use from Python: 10 load / upscale / close cycles leave RSS where the first left it."""

import ctypes
import gc

import flashvsr
import torch

_libc = ctypes.CDLL("libc.so.6")


def _settled_rss() -> int:
    gc.collect()
    _libc.malloc_trim(0)  # hand freed heap pages back, so RSS shows what is still in use
    return flashvsr.memory_report()["rss_bytes"]


def test_rss_flat_over_10_load_upscale_close_cycles(tmp_path):
    model_dir = tmp_path / "FlashVSR-v1.1"
    flashvsr.testing.make_random_weights(model_dir, size="tiny", seed=4, prompt_tokens=64)
    frames = torch.rand(9, 16, 16, 3)
    rss = []
    for _ in range(10):
        engine = flashvsr.load(model_dir, device="cpu")
        out = engine.upscale(frames, scale=2)
        assert out.shape == (9, 32, 32, 3)
        engine.close()
        del engine, out
        rss.append(_settled_rss())
    growth = max(rss[1:]) - rss[0]
    print("RSS after each cycle (MiB):", [round(r / 2**20, 1) for r in rss])
    assert growth <= 5 * 2**20, f"RSS grew by {growth / 2**20:.2f} MiB over 10 cycles: {rss}"
