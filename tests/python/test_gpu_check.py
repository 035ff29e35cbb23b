"""scripts/gpu_check.sh --cpu: the GPU check's dry run on the CPU (tiny weights, small videos). It runs every
step of the real check, so the script, the measuring program and the report cannot rot while no GPU is
around; this test pins the report's keys and the values the CPU can vouch for."""

import json
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
STEPS = ["build", "ctest", "env", "weights-tiny", "parity", "cycles", "offload", "bench", "budget"]
RUN_KEYS = {
    "frames",
    "output",
    "chunks",
    "tiles",
    "tile",
    "parked",
    "oom_fallbacks",
    "first_chunk_s",
    "first_chunk_fps",
    "steady_fps",
    "steady_chunks",
    "total_s",
    "ms_per_steady_chunk",
    "timing",
    "host_to_device_bytes_per_chunk",
    "device_to_host_bytes_per_chunk",
    "peak_allocated_bytes",
    "peak_reserved_bytes",
}


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("gpu_check")
    r = subprocess.run(
        ["bash", "scripts/gpu_check.sh", "--cpu", str(out)], cwd=REPO, capture_output=True, text=True, timeout=900
    )
    return r, out


def test_every_step_passes(dry_run):
    r, out = dry_run
    report = json.loads((out / "report.json").read_text())
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    assert report["schema"] == 1 and report["mode"] == "cpu" and report["ok"] is True
    assert list(report["steps"]) == STEPS
    for name, step in report["steps"].items():
        assert step["status"] == "pass", (name, step)
        assert step["rc"] == 0 and step["timeout_s"] > 0 and (out / step["log"]).is_file()
        assert all(step["checks"].values()), (name, step["checks"])
    summary = (out / "summary.txt").read_text()
    assert summary.startswith("flashvsr gpu_check (cpu)") and summary.rstrip().endswith("ALL PASSED")
    assert all(f"  {name}" in summary for name in STEPS)


def test_report_keys_and_the_values_a_cpu_can_vouch_for(dry_run):
    _, out = dry_run
    steps = json.loads((out / "report.json").read_text())["steps"]

    parity = steps["parity"]
    for mode in ("tiny", "full"):
        assert parity["results"][mode]["fp32"]["max_abs"] == 0.0  # the CPU against itself
        assert set(parity["results"][mode]) == {"fp32", "bf16", "fp16"}
        assert f"{mode}_fp32_max_abs_le_1e-4" in parity["checks"]
        bf16 = parity["results"][mode]["bf16"]
        if "skipped" in bf16:  # the dry run on a CPU without AVX512-BF16: only the full mode's bf16 VAE
            assert mode == "full" and "AVX512-BF16" in bf16["skipped"]
            assert f"{mode}_bf16_psnr_ge_38db" not in parity["checks"]
        else:
            assert bf16["psnr_db"] > 20
            assert f"{mode}_bf16_psnr_ge_38db" in parity["checks"]

    bench = steps["bench"]["results"]
    for case in ("tiny_768x1408", "tiny_long_768x1408", "tiny_1920x1088_tiled"):
        run = bench[case]
        assert RUN_KEYS <= set(run), case
        assert run["steady_fps"] > 0 and run["first_chunk_fps"] > 0 and run["steady_chunks"] >= 1
        assert set(run["ms_per_steady_chunk"]) == {"lq_proj", "dit", "decoder", "blend", "color_fix"}
        assert run["host_to_device_bytes_per_chunk"] == 0 and run["device_to_host_bytes_per_chunk"] == 0  # CPU
        assert run["timing"] == "wall_clock"
    assert bench["tiny_1920x1088_tiled"]["tiles"] > 1 and bench["tiny_1920x1088_tiled"]["max_memory_bytes"] > 0
    assert steps["bench"]["checks"]["tiny_long_equals_tiny"] is True

    budget = steps["budget"]["results"]
    assert budget["parking"]["on"]["parked"] is True and budget["parking"]["off"]["parked"] is False
    assert budget["injected_fallback"]["oom_fallbacks"] == 1 and budget["injected_fallback"]["tiles"] > 1
    assert budget["budget"]["mechanism"] == "injected" and budget["budget"]["equal_to_injected"] is True
    assert budget["budget"]["run"]["oom_fallbacks"] == 1

    offload = steps["offload"]["results"]
    assert offload["refused_with_live_stream"] is True and offload["max_abs_after_round_trip"] == 0.0
    assert offload["device_while_offloaded"] == "cpu" and offload["weight_bytes"] > 0

    cycles = steps["cycles"]["results"]
    assert len(cycles["cycles"]) == 10 and "rss_growth_cycle2_to_10_bytes" in cycles

    assert steps["env"]["results"]["device"] == "cpu" and "build_info" in steps["env"]["results"]
    assert steps["ctest"]["results"]["label"] == "gpu" and "listed" in steps["ctest"]["results"]
