#!/usr/bin/env python3
"""Writes the seed corpora of the libFuzzer harnesses (fuzz/corpus/<harness>/seed_*) from small valid files.

Run in the project's environment (torch and the installed flashvsr package):
    .venv/bin/python fuzz/make_corpus.py
Seeds are rewritten; other files in the corpus folders (regression inputs, named crash_* / regress_*) are
kept. Every seed is a few hundred bytes to a few KB, so the corpora stay small in the repository.
"""
import collections
import io
import json
import os
import pathlib
import struct
import sys
import tempfile
import zipfile
import zlib

import torch

ROOT = pathlib.Path(__file__).resolve().parent / "corpus"


def put(harness, name, data):
    d = ROOT / harness
    d.mkdir(parents=True, exist_ok=True)
    (d / f"seed_{name}").write_bytes(data)


def clear_seeds():
    for d in ROOT.glob("*"):
        for f in d.glob("seed_*"):
            f.unlink()


# ---- safetensors ------------------------------------------------------------------------------------------

def safetensors_bytes(tensors, metadata=None):
    header, blobs, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for key, (dtype, shape, raw) in tensors.items():
        header[key] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(blobs)


def safetensors_seeds():
    f32 = struct.pack("<6f", 0, 1, -1, 0.5, 2, 3)
    put("safetensors", "f32_2x3", safetensors_bytes({"w": ("F32", [2, 3], f32)}))
    put("safetensors", "mixed", safetensors_bytes({
        "a.weight": ("BF16", [2, 2], bytes(range(8))),
        "a.bias": ("F16", [2], bytes(4)),
        "b": ("I64", [1], struct.pack("<q", -7)),
        "c": ("U8", [3], b"abc"),
        "d": ("BOOL", [2], b"\x00\x01"),
        "e": ("F8_E4M3", [2], b"\x38\x40"),
        "s": ("F64", [], struct.pack("<d", 1.5)),
        "z": ("I32", [0, 4], b""),
    }, metadata={"format": "pt", "origin": "seed"}))
    put("safetensors", "empty_header", safetensors_bytes({}))
    # the DiT's key layout, tiny shapes
    put("safetensors", "dit_like", safetensors_bytes({
        "blocks.0.self_attn.q.weight": ("BF16", [4, 4], bytes(32)),
        "blocks.0.self_attn.q.bias": ("BF16", [4], bytes(8)),
        "patch_embedding.weight": ("BF16", [4, 16, 1, 2, 2], bytes(512)),
    }))


# ---- torch.save zip archives and their data.pkl -----------------------------------------------------------

def torch_bytes(obj, **kw):
    b = io.BytesIO()
    torch.save(obj, b, **kw)
    return b.getvalue()


def torch_seeds():
    base = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    objects = {
        "ordered_dict": collections.OrderedDict(
            [("conv.weight", torch.ones(2, 3)), ("conv.bias", torch.zeros(2, dtype=torch.bfloat16))]),
        "plain_dict": {"x": torch.tensor([1, 2, 3], dtype=torch.int16), "y": torch.tensor([True, False])},
        "bare_tensor": torch.linspace(0, 1, 8, dtype=torch.bfloat16).reshape(2, 4),
        "shared_views": {"full": base, "row": base[1], "col": base[:, 2], "t": base.t()},
        "float8": {"f8": torch.zeros(4, dtype=torch.float8_e4m3fn), "f8b": torch.ones(2, dtype=torch.float8_e5m2)},
        "parameter": collections.OrderedDict([("p", torch.nn.Parameter(torch.ones(3)))]),
        "dtypes": {"f64": torch.ones(2, dtype=torch.float64), "f16": torch.ones(2, dtype=torch.float16),
                   "i64": torch.ones(2, dtype=torch.int64), "i8": torch.ones(2, dtype=torch.int8),
                   "u8": torch.ones(2, dtype=torch.uint8), "i32": torch.ones(2, dtype=torch.int32)},
        "empty": {"e": torch.zeros(0, 3)},
        "scalar": torch.tensor(3.5),
    }
    for name, obj in objects.items():
        data = torch_bytes(obj)
        put("torch_zip", name, data)
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            pkl = [n for n in z.namelist() if n.endswith("/data.pkl")][0]
            put("torch_pickle", name, z.read(pkl))
    put("torch_zip", "legacy_format", torch_bytes({"w": torch.ones(2)}, _use_new_zipfile_serialization=False))


# ---- images -----------------------------------------------------------------------------------------------

def png_bytes(width, height, color_type, bit_depth, pixels):
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    raw = b"".join(b"\x00" + pixels[y] for y in range(height))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def image_seeds():
    import flashvsr.io

    put("image_decode", "grey8.png", png_bytes(3, 2, 0, 8, [b"\x00\x80\xff", b"\x10\x20\x30"]))
    put("image_decode", "grey16.png", png_bytes(2, 2, 0, 16, [b"\x00\x00\xff\xff", b"\x80\x00\x12\x34"]))
    put("image_decode", "grey_alpha.png", png_bytes(2, 1, 4, 8, [b"\x40\xff\x80\x00"]))
    put("image_decode", "rgba8.png", png_bytes(2, 1, 6, 8, [b"\xff\x00\x00\xff\x00\xff\x00\x80"]))
    rgb = torch.rand(3, 4, 3, generator=torch.Generator().manual_seed(0))
    with tempfile.TemporaryDirectory() as tmp:
        for name, bits in [("rgb8.png", 8), ("rgb16.png", 16), ("rgb8.tif", 8), ("rgb16.tiff", 16),
                           ("half.exr", 16), ("float.exr", 32), ("rgb.jpg", 8), ("rgb.bmp", 8),
                           ("rgb.ppm", 8), ("rgb.webp", 8)]:
            path = os.path.join(tmp, name)
            try:
                flashvsr.io.write_image(path, rgb, bits)
            except flashvsr.Error as e:  # an OpenCV build without this codec
                print(f"make_corpus: skipping {name}: {e}", file=sys.stderr)
                continue
            put("image_decode", name, pathlib.Path(path).read_bytes())


# ---- model folders and image sequences (the harnesses' own input layouts) ---------------------------------

def model_dir_seeds():
    manifest = {"version": "v1.1", "origin": "make-test-weights size=tiny seed=0", "files": {
        "diffusion_pytorch_model_streaming_dmd.safetensors": {"version": "v1.1", "size": 1, "sha256": "ab" * 32},
        "LQ_proj_in.ckpt": {"version": "v1.0", "size": 1},
        "TCDecoder.ckpt": {"version": "v1.1", "size": 5},
    }}
    text = json.dumps(manifest, indent=2).encode()
    put("model_dir", "all_files_manifest", bytes([0x40 | 1, 0x1F]) + text)
    put("model_dir", "links", bytes([0x40 | 4, 0xFF]) + text)
    put("model_dir", "no_manifest_v10_name", bytes([0x40, 0x1F]))
    put("model_dir", "version_option", bytes([0x08 | 4, 0x0F]) + b'{"version": "v1.0"}')
    put("model_dir", "bad_manifest", bytes([1, 0x01]) + b'{"version": 11, "files": []}')


def sequence_seeds():
    put("image_sequence", "folder", b"\n\n\n+f1.png\n+f2.png\n+f10.png\nnotes.txt\n")
    put("image_sequence", "pattern", b"f_%04d.png\n\n24000/1001\n+f_0007.png\n+f_0008.png\n+f_0009.png\n")
    put("image_sequence", "start_number", b"im%d.png\n2\n29.97\n+im1.png\n+im2.png\n+im3.png\n")
    put("image_sequence", "gap", b"%03d.png\n\n25\n+001.png\n+003.png\n")
    put("image_sequence", "sizes", b"\n\n\n+a1.png\n*a2.png\n")
    put("image_sequence", "empty_file", b"\n\n\n+a1.png\na2.png\n")
    put("image_sequence", "mixed", b"\n\n\n+a1.png\n+a2.tif\n")
    put("image_sequence", "spaces", b"s%5d.png\n\n\n+s    1.png\n+s    2.png\n")


if __name__ == "__main__":
    clear_seeds()
    safetensors_seeds()
    torch_seeds()
    image_seeds()
    model_dir_seeds()
    sequence_seeds()
    total = sum(f.stat().st_size for f in ROOT.rglob("seed_*"))
    print(f"make_corpus: {len(list(ROOT.rglob('seed_*')))} seeds, {total} bytes in {ROOT}")
