"""A generated set of damaged media files for the hostile-input tests (test_hostile_media.py).

make_hostile_set(root) writes valid small files (an H.264 MP4 with audio, a Matroska clip, 8/16-bit PNG,
TIFF, half EXR) and damages them: truncations at random offsets, bit flips in the header and in the
payload, wrong extensions, zero-length files, box sizes and frame sizes claiming far more than the file
holds (MP4, PNG, EXR, TIFF and a Y4M header of 100000x100000), a sequence folder of 10,000 empty files,
and sequences whose middle frame is damaged. It returns a list of Case(name, input, kind), where `input`
is what `flashvsr upscale` gets (a file, a folder or a pattern). Deterministic for a given seed.
"""

from __future__ import annotations

import dataclasses
import pathlib
import random
import shutil
import struct
import zlib

import flashvsr
import torch


@dataclasses.dataclass
class Case:
    name: str
    input: pathlib.Path  # a file, or a folder of images
    kind: str  # "video" | "sequence"
    image: pathlib.Path | None = None  # the damaged still image (sequence cases), read through flashvsr.io too


def _flip(data: bytes, rng: random.Random, lo: int, hi: int, bits: int) -> bytes:
    b = bytearray(data)
    hi = max(lo + 1, min(hi, len(b)))
    for _ in range(bits):
        i = rng.randrange(lo, hi)
        b[i] ^= 1 << rng.randrange(8)
    return bytes(b)


def _png_set_size(data: bytes, w: int, h: int) -> bytes:
    b = bytearray(data)
    b[16:24] = struct.pack(">II", w, h)
    b[29:33] = struct.pack(">I", zlib.crc32(bytes(b[12:29])))  # a valid CRC: only the size lies
    return bytes(b)


def _exr_set_window(data: bytes, w: int, h: int) -> bytes:
    at = data.index(b"dataWindow\x00box2i\x00") + len(b"dataWindow\x00box2i\x00") + 4
    return data[:at] + struct.pack("<iiii", 0, 0, w - 1, h - 1) + data[at + 16 :]


def _tiff_set_size(data: bytes, w: int, h: int) -> bytes:
    b = bytearray(data)
    little = b[:2] == b"II"
    end = "<" if little else ">"
    ifd = struct.unpack(end + "I", b[4:8])[0]
    n = struct.unpack(end + "H", b[ifd : ifd + 2])[0]
    for k in range(n):
        e = ifd + 2 + 12 * k
        tag, typ = struct.unpack(end + "HH", b[e : e + 4])
        if tag in (256, 257):
            b[e + 2 : e + 4] = struct.pack(end + "H", 4)  # LONG
            b[e + 8 : e + 12] = struct.pack(end + "I", w if tag == 256 else h)
    return bytes(b)


def _mp4_huge_boxes(data: bytes) -> list[tuple[str, bytes]]:
    """Box sizes far beyond the file: moov 4 GB, mdat as a 64-bit size of 2^62, every stsz entry 2 GB."""
    out = []
    b = bytearray(data)
    i = b.find(b"moov")
    if i >= 4:
        c = bytearray(b)
        c[i - 4 : i] = b"\xff\xff\xff\xff"
        out.append(("moov_size_4g", bytes(c)))
    i = b.find(b"mdat")
    if i >= 4:
        c = bytearray(b[: i - 4]) + struct.pack(">I", 1) + b"mdat" + struct.pack(">Q", 1 << 62) + b[i + 4 :]
        out.append(("mdat_size_2e62", bytes(c)))
    i = b.find(b"stsz")
    if i >= 0:
        c = bytearray(b)
        count = struct.unpack(">I", c[i + 12 : i + 16])[0]
        for k in range(min(count, 64)):
            at = i + 16 + 4 * k
            c[at : at + 4] = struct.pack(">I", 0x7FFFFFFF)
        out.append(("stsz_samples_2g", bytes(c)))
    i = b.find(b"tkhd")
    if i >= 0:
        c = bytearray(b)
        size = struct.unpack(">I", c[i - 4 : i])[0]
        c[i - 4 + size - 8 : i - 4 + size] = struct.pack(
            ">II", 65535 << 16, 65535 << 16
        )  # 16.16 fixed point: the largest size
        out.append(("tkhd_65535x65535", bytes(c)))
    return out


def _images(tmp: pathlib.Path) -> dict[str, bytes]:
    rgb = torch.rand(24, 32, 3, generator=torch.Generator().manual_seed(1))
    out = {}
    for name, bits in [("a.png", 8), ("b.png", 16), ("c.tif", 16), ("d.exr", 16)]:
        p = tmp / name
        flashvsr.io.write_image(str(p), rgb, bits)
        out[name] = p.read_bytes()
    return out


def make_hostile_set(root: pathlib.Path, seed: int = 14) -> list[Case]:
    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    base = root / "valid"
    base.mkdir(exist_ok=True)
    mp4 = base / "clip.mp4"
    mkv = base / "clip.mkv"
    flashvsr.io.write_synthetic_clip(str(mp4), width=64, height=48, frames=6, audio=True)
    flashvsr.io.write_synthetic_clip(str(mkv), width=64, height=48, frames=6, audio=False)
    videos = {"mp4": mp4.read_bytes(), "mkv": mkv.read_bytes()}
    images = _images(base)
    cases: list[Case] = []

    def video(name: str, data: bytes, ext: str = ".mp4") -> None:
        p = root / f"{name}{ext}"
        p.write_bytes(data)
        cases.append(Case(name, p, "video"))

    def sequence(name: str, image_name: str, data: bytes, good: bytes | None = None) -> None:
        """A folder f1, f2, f3: the damaged image in the middle, valid frames around it (when given)."""
        d = root / name
        d.mkdir()
        ext = pathlib.Path(image_name).suffix
        if good is not None:
            (d / f"f1{ext}").write_bytes(good)
            (d / f"f3{ext}").write_bytes(good)
        (d / f"f2{ext}").write_bytes(data)
        cases.append(Case(name, d, "sequence", d / f"f2{ext}"))

    for kind, data in videos.items():
        ext = "." + kind
        n = len(data)
        for k in range(24):
            video(f"{kind}_trunc_{k}", data[: rng.randrange(0, n)], ext)
        for k in range(16):
            video(f"{kind}_hdrflip_{k}", _flip(data, rng, 0, 1024, 1 + k % 4), ext)
        for k in range(14):
            video(f"{kind}_flip_{k}", _flip(data, rng, 0, n, 4 + 4 * k), ext)
    for name, data in _mp4_huge_boxes(videos["mp4"]):
        video(f"mp4_{name}", data)
    video("mp4_zero_length", b"")
    video("png_named_mp4", images["a.png"])
    video("text_named_mp4", b"this is not a video\n" * 20)
    video("mkv_named_mp4", videos["mkv"])
    # a raw YUV4MPEG stream whose header claims 100000x100000 (libavformat believes the header)
    video("y4m_100000x100000", b"YUV4MPEG2 W100000 H100000 F25:1 Ip A1:1 C420jpeg\nFRAME\n" + bytes(4096), ".y4m")

    for name, data in images.items():
        ext = pathlib.Path(name).suffix
        stem = pathlib.Path(name).stem + ext.replace(".", "_")
        n = len(data)
        for k in range(7):
            sequence(f"seq_{stem}_trunc_{k}", name, data[: rng.randrange(0, n)], data)
        for k in range(6):
            sequence(f"seq_{stem}_hdrflip_{k}", name, _flip(data, rng, 0, min(n, 64), 1 + k % 3), data)
        for k in range(5):
            sequence(f"seq_{stem}_flip_{k}", name, _flip(data, rng, 0, n, 2 + 2 * k), data)
        sequence(f"seq_{stem}_zero_length", name, b"", data)
    huge = 100000
    sequence("seq_png_100000x100000", "x.png", _png_set_size(images["a.png"], huge, huge))
    sequence("seq_png16_100000x100000", "x.png", _png_set_size(images["b.png"], huge, huge))
    sequence("seq_exr_100000x100000", "x.exr", _exr_set_window(images["d.exr"], huge, huge))
    sequence("seq_tif_100000x100000", "x.tif", _tiff_set_size(images["c.tif"], huge, huge))
    sequence("seq_png_30000x30000", "x.png", _png_set_size(images["a.png"], 30000, 30000), images["a.png"])
    sequence("seq_mp4_named_png", "x.png", videos["mp4"], images["a.png"])
    sequence("seq_exr_named_png", "x.png", images["d.exr"], images["a.png"])
    sequence("seq_png_named_exr", "x.exr", images["a.png"], images["d.exr"])
    sequence("seq_text_named_tif", "x.tif", b"II*\x00" + b"garbage" * 10, images["c.tif"])
    empty = root / "seq_10000_empty_files"
    empty.mkdir()
    for k in range(10000):
        (empty / f"f{k:05d}.png").touch()
    cases.append(Case(empty.name, empty, "sequence", empty / "f00000.png"))
    return cases


def cleanup(root: pathlib.Path) -> None:
    shutil.rmtree(root, ignore_errors=True)


def read_all(paths: list[str]) -> dict[str, int]:
    """Reads each file through the Python API (read_image for images, probe + read_video_rgb24 for videos):
    counts of 'ok' and 'error' (flashvsr.Error); anything else propagates."""
    counts = {"ok": 0, "error": 0}
    for p in paths:
        try:
            if pathlib.Path(p).suffix.lower() in (".png", ".tif", ".tiff", ".exr"):
                t = flashvsr.io.read_image(p)
                assert t.dim() == 3 and t.shape[2] == 3 and float(t.min()) >= 0.0 and float(t.max()) <= 1.0
            else:
                flashvsr.io.probe(p)
                flashvsr.io.read_video_rgb24(p, max_frames=8)
            counts["ok"] += 1
        except flashvsr.Error:
            counts["error"] += 1
    return counts


if __name__ == "__main__":  # python hostile_media.py FILE...: the Python readers on each file, counts as JSON
    import json
    import sys

    print(json.dumps(read_all(sys.argv[1:])))
