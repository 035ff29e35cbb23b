"""python -m flashvsr.distributed IN OUT [options]: flashvsr.distributed.upscale_file as a command."""

from __future__ import annotations

import argparse
import sys

from .. import _C
from .job import INSTALL_HINT, upscale_file
from .plan import DEFAULT_SEGMENT_FRAMES

# The model and upscale flags come from the library's option table (the CLI's and Python's names, types,
# choices and help); the job's own flags (segments, Ray, encoder) are this command's.
_TABLE_SPECS = [s for s in _C.option_specs() if s["group"] in ("engine", "upscale")]
_TABLE_OPTIONS = [s["name"] for s in _TABLE_SPECS]
_TYPES = {"int": int, "float": float, "str": str}


def _add_table_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model and upscale options (as `flashvsr upscale`)")
    for s in _TABLE_SPECS:
        default = f" (default: {s['default']})" if s["default"] not in ("", None) else ""
        if s["name"] == "model_dir":
            default = " (default: $FLASHVSR_MODEL_DIR)"
        if s["type"] == "bool":
            g.add_argument(s["cli_flag"], dest=s["name"], action="store_true", default=None, help=s["help"])
        elif s["type"] == "choice":
            g.add_argument(s["cli_flag"], dest=s["name"], choices=s["choices"], default=None, help=s["help"] + default)
        else:
            g.add_argument(
                s["cli_flag"],
                dest=s["name"],
                type=_TYPES[s["type"]],
                metavar=s["meta"] or None,
                default=None,
                help=s["help"] + default,
            )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m flashvsr.distributed",
        description="Upscale one video across many Ray workers: segments on chunk boundaries, each with a "
        "discarded warm-up, joined seam-free (docs/SCALE_OUT.md).",
    )
    p.add_argument("input", help="video file, image folder or pattern (dir/f_%%05d.png)")
    p.add_argument("output", help="video file (segments joined by stream copy), or dir/%%05d.png or dir/")
    p.add_argument("--address", default=None, help="Ray cluster (auto or HOST:PORT); default: start a local one")
    p.add_argument("--workers", type=int, default=None, help="segments in flight (default: the cluster's CPUs/GPUs)")
    p.add_argument("--segment-frames", type=int, default=DEFAULT_SEGMENT_FRAMES, help="frames per segment")
    p.add_argument("--warmup-frames", type=int, default=None, help="warm-up frames per segment (default 48)")
    p.add_argument("--threads", type=int, default=0, help="intra-op threads per worker (0: default)")
    p.add_argument("--max-retries", type=int, default=3, help="retries of a segment whose worker died")
    _add_table_options(p)
    p.add_argument("--bits", type=int, default=0, help="image bits (0: as the CLI chooses)")
    p.add_argument("--codec", default=None, help="video encoder (default libx264)")
    p.add_argument("--crf", type=int, default=None)
    p.add_argument("--pix-fmt", default=None)
    p.add_argument("--no-audio", action="store_true")
    p.add_argument("--no-subtitles", action="store_true")
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--quiet", action="store_true")
    a = p.parse_args(argv)
    # the model and upscale options the user gave (the rest keep the library's defaults)
    options = {n: getattr(a, n) for n in _TABLE_OPTIONS if getattr(a, n) is not None}
    options.update(bits=a.bits, overwrite=a.overwrite)
    for k in ("codec", "crf", "pix_fmt"):
        if getattr(a, k) is not None:
            options[k] = getattr(a, k)
    if a.no_audio:
        options["copy_audio"] = False
    if a.no_subtitles:
        options["copy_subtitles"] = False
    try:
        r = upscale_file(
            a.input,
            a.output,
            address=a.address,
            workers=a.workers,
            segment_frames=a.segment_frames,
            warmup_frames=a.warmup_frames,
            threads=a.threads,
            max_retries=a.max_retries,
            quiet=a.quiet,
            **options,
        )
    except ImportError as e:
        if INSTALL_HINT in str(e):
            print(f"flashvsr.distributed: {e}", file=sys.stderr)
            return 1
        raise
    except _C.Cancelled as e:
        print(f"flashvsr.distributed: {e}", file=sys.stderr)
        return 130
    except (_C.Error, ValueError) as e:
        print(f"flashvsr.distributed: {str(e).splitlines()[0]}", file=sys.stderr)
        return 1
    print(
        f"{r['frames']} frames in {r['segments']} segments, {r['seconds']:.1f} s ({r['fps']:.2f} fps) -> {r['output']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
