"""Hostile media through the CLI and the Python readers (the damaged set of hostile_media.py, >= 200 files):
every run ends with exit 0 and a valid output, or exit 1 and one error line naming the input; never a
signal, a hang (60 s), an output left after an error, or a process above the memory bound."""

import concurrent.futures
import json
import os
import pathlib
import signal
import subprocess
import sys

import flashvsr
import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import hostile_media  # noqa: E402

TIMEOUT_S = 60
RSS_BOUND_KIB = 1024 * 1024  # per CLI process: torch + tiny weights + a few frames, whatever the file claims


@pytest.fixture(scope="module")
def hostile_set(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    cases = hostile_media.make_hostile_set(root / "in")
    yield root, cases
    hostile_media.cleanup(root)


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory, cli):
    d = tmp_path_factory.mktemp("hostile_weights") / "FlashVSR-v1.1"
    subprocess.run([str(cli), "make-test-weights", str(d), "--size", "tiny"], check=True, capture_output=True)
    return d


# The CLI runs as the grandchild of this process, under a small Python runner that reports its wait4()
# status and ru_maxrss. Linux carries a process's RSS high-water mark through fork and exec, so a child
# forked straight from this pytest process (torch, engines and Ray loaded by earlier tests: ~1 GiB) would
# report at least that, whatever the CLI used. The runner starts small, so its child's figure is the CLI's.
_RUNNER = """
import json, os, subprocess, sys, time
timeout, out, err, cmd = float(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4:]
with open(out, "wb") as o, open(err, "wb") as e:
    p = subprocess.Popen(cmd, stdout=o, stderr=e, env=dict(os.environ, OMP_NUM_THREADS="1"))
deadline, timed_out = time.monotonic() + timeout, False
while True:
    pid, status, ru = os.wait4(p.pid, os.WNOHANG)
    if pid == p.pid:
        break
    if time.monotonic() > deadline:
        p.kill()
        _, status, ru = os.wait4(p.pid, 0)
        timed_out = True
        break
    time.sleep(0.02)
p.returncode = 0  # reaped here
print(json.dumps([status, ru.ru_maxrss, timed_out]))
"""


def run_limited(cmd, log_base: pathlib.Path):
    """Runs `cmd` with stdout/stderr to files; returns (exit status from wait4, max RSS KiB, timed out)."""
    r = subprocess.run(
        [sys.executable, "-c", _RUNNER, str(TIMEOUT_S), f"{log_base}.out", f"{log_base}.err", *map(str, cmd)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S + 60,
    )
    assert r.returncode == 0, r.stderr
    status, rss, timed_out = json.loads(r.stdout)
    return status, rss, timed_out


def test_damaged_files_through_the_cli(hostile_set, tiny_weights, cli, tmp_path):
    root, cases = hostile_set
    assert len(cases) >= 200
    out_dir = tmp_path / "out"
    out_dir.mkdir()

    def one(case):
        out = out_dir / f"{case.name}.mp4"
        cmd = [
            str(cli),
            "upscale",
            str(case.input),
            "-o",
            str(out),
            "--model-dir",
            str(tiny_weights),
            "--scale",
            "2",
            "--no-progress",
        ]
        status, rss, timed_out = run_limited(cmd, tmp_path / case.name)
        err = (tmp_path / f"{case.name}.err").read_text(errors="replace")
        problems = []
        if timed_out:
            problems.append(f"no exit within {TIMEOUT_S} s")
        elif os.WIFSIGNALED(status):
            problems.append(f"killed by {signal.Signals(os.WTERMSIG(status)).name}")
        rc = os.waitstatus_to_exitcode(status)
        left = sorted(
            p.name
            for p in out_dir.iterdir()
            if p.name.startswith(case.name + ".") or p.name.startswith(case.name + "_")
        )
        if not timed_out and rc == 0:
            if left != [out.name]:
                problems.append(f"exit 0 but the output folder holds {left}")
            else:
                first = flashvsr.io.read_video_rgb24(str(out), max_frames=1)
                if first.shape[0] != 1 or first.shape[3] != 3:
                    problems.append(f"exit 0 but the output reads as {tuple(first.shape)}")
        elif not timed_out and rc == 1:
            errors = [line for line in err.splitlines() if "error" in line]
            if len(errors) != 1 or case.input.name not in errors[0]:
                problems.append(f"exit 1 without one error line naming {case.input.name}: {err[-400:]!r}")
            if left:
                problems.append(f"exit 1 but {left} were left")
        elif not timed_out:
            problems.append(f"exit {rc}: {err[-300:]!r}")
        if rss > RSS_BOUND_KIB:
            problems.append(f"peak RSS {rss // 1024} MiB above the bound of {RSS_BOUND_KIB // 1024} MiB")
        for p in out_dir.iterdir():  # keep the disk small: valid outputs are checked, then removed
            if p.name.startswith(case.name):
                p.unlink() if p.is_file() else None
        return case, rc, rss, problems

    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, min(2, os.cpu_count() or 1))) as pool:
        results = list(pool.map(one, cases))
    failures = [f"{c.name}: {'; '.join(p)}" for c, _, _, p in results if p]
    ok = sum(1 for _, rc, _, p in results if rc == 0 and not p)
    refused = sum(1 for _, rc, _, p in results if rc == 1 and not p)
    peak = max(rss for _, _, rss, _ in results)
    print(
        f"\nhostile media (CLI): {len(results)} damaged inputs, {ok} upscaled (exit 0), {refused} refused "
        f"(exit 1, one line), peak RSS {peak // 1024} MiB (bound {RSS_BOUND_KIB // 1024} MiB)"
    )
    assert not failures, "\n".join(failures)


def test_damaged_files_through_python(hostile_set):
    root, cases = hostile_set
    paths = [str(c.image) if c.image is not None else str(c.input) for c in cases]
    # In a child process: a crash there fails this test instead of ending the session.
    r = subprocess.run(
        [sys.executable, hostile_media.__file__, *paths],
        capture_output=True,
        text=True,
        errors="replace",
        timeout=300,
        env=dict(os.environ, OMP_NUM_THREADS="1"),
    )
    assert r.returncode == 0, r.stderr[-2000:]
    counts = json.loads(r.stdout.strip().splitlines()[-1])
    print(f"\nhostile media (Python): {counts['ok']} read, {counts['error']} refused with flashvsr.Error")
    assert counts["ok"] + counts["error"] == len(paths)
    assert counts["error"] > 0 and counts["ok"] > 0
