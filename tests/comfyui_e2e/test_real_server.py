"""End-to-end against a real ComfyUI server (CPU). Skipped unless COMFYUI_DIR points at a ComfyUI checkout.

    COMFYUI_DIR=/path/to/ComfyUI COMFYUI_PYTHON=/path/to/its/python python -m pytest tests/comfyui_e2e -v -s

COMFYUI_PYTHON (default: this interpreter) must have ComfyUI's requirements and the installed `flashvsr`
package. The test makes a throw-away base directory (custom_nodes/ links to this repository, tiny random
weights in models/FlashVSR-v1.1, a 5-frame APNG in input/), starts `main.py --cpu` on a free port with only
this node pack enabled, and checks: /object_info lists the three nodes with tooltips; the example workflow
examples/comfyui/flashvsr_upscale_api.json (LoadImage -> loader -> upscale -> SaveImage) succeeds with 5 PNGs
of exactly 4x the size; progress messages arrive per chunk over the websocket; POST /interrupt stops a long
run promptly; POST /free unloads the engine (GET /flashvsr/status) and RSS drops. Nothing of ComfyUI is in
this repository.
"""

import base64
import json
import os
import pathlib
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

import pytest

COMFYUI_DIR = os.environ.get("COMFYUI_DIR")
pytestmark = pytest.mark.skipif(not COMFYUI_DIR, reason="COMFYUI_DIR is not set (real-server test)")
REPO = pathlib.Path(__file__).resolve().parents[2]
CLIENT_ID = uuid.uuid4().hex


class Server:
    def __init__(self, url):
        self.url = url

    def http(self, method, path, body=None, timeout=30):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            self.url + path, data=data, method=method, headers={"Content-Type": "application/json"} if data else {}
        )
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                raw = r.read()
                return r.status, (json.loads(raw) if "json" in r.headers.get("Content-Type", "") else raw)
        except urllib.error.HTTPError as e:
            raw = e.read()
            try:
                return e.code, json.loads(raw)
            except ValueError:
                return e.code, raw

    def queue(self, prompt):
        pid = str(uuid.uuid4())
        st, resp = self.http("POST", "/prompt", {"prompt": prompt, "client_id": CLIENT_ID, "prompt_id": pid})
        assert st == 200, f"/prompt rejected {st}: {json.dumps(resp)[:3000]}"
        return pid

    def history(self, pid, timeout=600):
        t0 = time.time()
        while time.time() - t0 < timeout:
            st, h = self.http("GET", f"/history/{pid}")
            if st == 200 and pid in h:
                return h[pid]
            time.sleep(0.2)
        raise AssertionError(f"prompt {pid} did not finish in {timeout} s")


class WebSocket:
    """Just enough RFC 6455 to read ComfyUI's messages (server frames are unmasked)."""

    def __init__(self, host, port, path):
        self.s = socket.create_connection((host, port), timeout=10)
        key = base64.b64encode(os.urandom(16)).decode()
        self.s.sendall(
            (
                f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        buf = b""
        while b"\r\n\r\n" not in buf:
            buf += self.s.recv(4096)
        head, self.buf = buf.split(b"\r\n\r\n", 1)
        assert b" 101 " in head.split(b"\r\n")[0], head
        self.s.settimeout(None)

    def _read(self, n):
        while len(self.buf) < n:
            chunk = self.s.recv(65536)
            if not chunk:
                raise EOFError
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def recv(self):
        b0, b1 = self._read(2)
        op, n = b0 & 0x0F, b1 & 0x7F
        if n == 126:
            n = struct.unpack(">H", self._read(2))[0]
        elif n == 127:
            n = struct.unpack(">Q", self._read(8))[0]
        data = self._read(n)
        if op == 0x8:
            raise EOFError
        return op, data


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    python = os.environ.get("COMFYUI_PYTHON", sys.executable)
    base = tmp_path_factory.mktemp("comfy_base")
    for d in ("custom_nodes", "input", "output", "temp", "user", "web", "models"):
        (base / d).mkdir()
    (base / "custom_nodes" / "flashvsr").symlink_to(REPO)
    subprocess.run(
        [
            python,
            "-c",
            "import sys, flashvsr.testing as t; t.make_random_weights(sys.argv[1], "
            "size='tiny', seed=5, prompt_tokens=64)",
            str(base / "models" / "FlashVSR-v1.1"),
        ],
        check=True,
    )
    subprocess.run(
        [
            python,
            "-c",
            "import sys; from PIL import Image; fs = [Image.new('RGB', (64, 48), "
            "(40 * k, 255 - 40 * k, 128)) for k in range(5)]; fs[0].save(sys.argv[1], save_all=True, "
            "append_images=fs[1:], duration=40)",
            str(base / "input" / "clip.png"),
        ],
        check=True,
    )
    subprocess.run(
        [
            python,
            "-c",
            "import sys, flashvsr; flashvsr.io.write_synthetic_clip(sys.argv[1], width=48, "
            "height=32, frames=21, fps_num=30000, fps_den=1001, audio=True)",
            str(base / "input" / "clip.mp4"),
        ],
        check=True,
    )
    port = _free_port()
    log = open(base / "server.log", "w")
    proc = subprocess.Popen(
        [
            python,
            os.path.join(COMFYUI_DIR, "main.py"),
            "--cpu",
            "--listen",
            "127.0.0.1",
            "--port",
            str(port),
            "--base-directory",
            str(base),
            "--disable-auto-launch",
            "--disable-api-nodes",
            "--disable-all-custom-nodes",
            "--whitelist-custom-nodes",
            "flashvsr",
            "--front-end-root",
            str(base / "web"),
            "--database-url",
            "sqlite:///:memory:",
            "--disable-metadata",
            "--log-stdout",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=COMFYUI_DIR,
    )
    srv = Server(f"http://127.0.0.1:{port}")
    srv.base, srv.port, srv.events = base, port, []
    t0 = time.time()
    while True:
        assert proc.poll() is None, (base / "server.log").read_text()[-5000:]
        try:
            if srv.http("GET", "/system_stats", timeout=5)[0] == 200:
                break
        except (TimeoutError, urllib.error.URLError, ConnectionError):
            pass
        assert time.time() - t0 < 300, "ComfyUI did not come up in 300 s"
        time.sleep(0.5)

    def listen():
        try:
            ws = WebSocket("127.0.0.1", port, f"/ws?clientId={CLIENT_ID}")
            while True:
                op, data = ws.recv()
                if op == 1:
                    srv.events.append(json.loads(data))
        except (EOFError, OSError):
            pass

    threading.Thread(target=listen, daemon=True).start()
    time.sleep(0.5)
    yield srv
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()
    text = (base / "server.log").read_text()
    assert "IMPORT FAILED" not in "\n".join(line for line in text.splitlines() if "flashvsr" in line), text[-5000:]


def test_object_info_lists_the_nodes_with_tooltips(server):
    st, info = server.http("GET", "/object_info")
    assert st == 200
    for node in ("FlashVSRModelLoader", "FlashVSRUpscale", "FlashVSRUpscaleVideo"):
        assert node in info, f"{node} missing; server log:\n" + (server.base / "server.log").read_text()[-4000:]
        assert info[node]["category"] == "FlashVSR"
        for name, spec in info[node]["input"]["required"].items():
            assert spec[1].get("tooltip"), f"{node}.{name} has no tooltip"
    assert info["FlashVSRModelLoader"]["input"]["required"]["model"][1]["options"] == ["FlashVSR-v1.1"]
    assert info["FlashVSRUpscale"]["output"] == ["IMAGE"]


def test_example_workflow_runs_and_reports_progress(server):
    prompt = json.loads((REPO / "examples" / "comfyui" / "flashvsr_upscale_api.json").read_text())
    prompt["2"]["inputs"]["precision"] = "fp32"
    pid = server.queue(prompt)
    entry = server.history(pid)
    assert entry["status"]["status_str"] == "success", json.dumps(entry["status"])[:3000]
    images = entry["outputs"]["4"]["images"]
    assert len(images) == 5
    for im in images:
        st, raw = server.http(
            "GET", "/view?" + urllib.parse.urlencode({k: im[k] for k in ("filename", "subfolder", "type")})
        )
        assert st == 200 and raw[:8] == b"\x89PNG\r\n\x1a\n"
        assert struct.unpack(">II", raw[16:24]) == (256, 192)
    progress = [e["data"] for e in server.events if e.get("type") == "progress" and e["data"].get("prompt_id") == pid]
    assert progress and progress[-1]["value"] == progress[-1]["max"] == 5, progress


def test_interrupt_stops_a_long_run_promptly(server):
    long_run = {
        "1": {"class_type": "LoadImage", "inputs": {"image": "clip.png"}},
        "5": {"class_type": "RepeatImageBatch", "inputs": {"image": ["1", 0], "amount": 120}},  # 600 frames
        "2": {
            "class_type": "FlashVSRModelLoader",
            "inputs": {
                "model": "FlashVSR-v1.1",
                "version": "auto",
                "mode": "tiny",
                "precision": "fp32",
                "device": "comfy",
            },
        },
        "3": {
            "class_type": "FlashVSRUpscale",
            "inputs": {
                "model": ["2", 0],
                "images": ["5", 0],
                "scale": 4,
                "tile_size": 0,
                "tile_overlap": 0,
                "max_memory_gb": 0.0,
                "park_tile_state": "auto",
                "color_fix": "adain",
                "sparse_ratio": 2.0,
                "kv_ratio": 3.0,
                "local_range": 11,
                "seed": 1,
            },
        },
        "4": {"class_type": "SaveImage", "inputs": {"images": ["3", 0], "filename_prefix": "flashvsr/long"}},
    }
    pid = server.queue(long_run)
    t0 = time.time()
    while not any(e.get("type") == "progress" and e["data"].get("prompt_id") == pid for e in server.events):
        assert time.time() - t0 < 120, "the long run never reported progress"
        time.sleep(0.05)
    t_interrupt = time.time()
    assert server.http("POST", "/interrupt", {"prompt_id": pid})[0] == 200
    entry = server.history(pid, timeout=120)
    latency = time.time() - t_interrupt
    kinds = [m[0] for m in entry["status"]["messages"]]
    assert entry["status"]["status_str"] == "error" and "execution_interrupted" in kinds, kinds
    done = max(
        e["data"]["value"] for e in server.events if e.get("type") == "progress" and e["data"].get("prompt_id") == pid
    )
    print(f"interrupt honoured {latency:.2f} s after POST /interrupt, at frame {done} of 600")
    assert done < 600
    assert latency < 30


def test_video_workflow_streams_with_audio(server):
    prompt = {
        "1": {"class_type": "LoadVideo", "inputs": {"file": "clip.mp4"}},
        "2": {
            "class_type": "FlashVSRModelLoader",
            "inputs": {
                "model": "FlashVSR-v1.1",
                "version": "auto",
                "mode": "tiny",
                "precision": "fp32",
                "device": "comfy",
            },
        },
        "3": {
            "class_type": "FlashVSRUpscaleVideo",
            "inputs": {
                "model": ["2", 0],
                "video": ["1", 0],
                "scale": 2,
                "tile_size": 0,
                "tile_overlap": 0,
                "max_memory_gb": 0.0,
                "park_tile_state": "auto",
                "color_fix": "adain",
                "sparse_ratio": 2.0,
                "kv_ratio": 3.0,
                "local_range": 11,
                "seed": 0,
                "crf": 18,
            },
        },
        "4": {
            "class_type": "SaveVideo",
            "inputs": {"video": ["3", 0], "filename_prefix": "flashvsr/video", "format": "auto", "codec": "auto"},
        },
    }
    entry = server.history(server.queue(prompt))
    assert entry["status"]["status_str"] == "success", json.dumps(entry["status"])[:3000]
    saved = [v for out in entry["outputs"].values() for v in out.get("images", [])]
    assert len(saved) == 1, entry["outputs"]
    path = server.base / "output" / saved[0]["subfolder"] / saved[0]["filename"]
    python = os.environ.get("COMFYUI_PYTHON", sys.executable)
    probe = subprocess.run(
        [
            python,
            "-c",
            "import sys, av, json; c = av.open(sys.argv[1]); v = c.streams.video[0]; "
            "n = sum(1 for _ in c.decode(video=0)); print(json.dumps([n, v.width, v.height, "
            "len(c.streams.audio)]))",
            str(path),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    assert json.loads(probe.stdout.strip().splitlines()[-1]) == [21, 96, 64, 1]


def test_free_unloads_the_engine(server):
    st, status = server.http("GET", "/flashvsr/status")
    assert st == 200 and status["loaded_engines"] == 1, status
    rss_before = status["memory"]["rss_bytes"]
    assert server.http("POST", "/free", {"unload_models": True, "free_memory": True})[0] == 200
    t0 = time.time()
    while server.http("GET", "/flashvsr/status")[1]["loaded_engines"] != 0:
        assert time.time() - t0 < 30, "POST /free did not unload the FlashVSR engine"
        time.sleep(0.2)
    time.sleep(1.0)
    rss_after = server.http("GET", "/flashvsr/status")[1]["memory"]["rss_bytes"]
    print(f"RSS before /free {rss_before / 2**20:.1f} MiB, after {rss_after / 2**20:.1f} MiB")
    assert rss_before - rss_after >= 20 * 2**20  # at least the tiny weights (23.5 MB) come back
