"""The driver: plans segments, runs them as Ray tasks, aggregates progress, handles faults (docs/SCALE_OUT.md)."""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Callable
from typing import Any

from .. import _C
from .plan import DEFAULT_SEGMENT_FRAMES, Segment, plan_segments
from .worker import SegmentTask, run_segment

#: flashvsr.load keywords accepted in **options: the engine option table (flashvsr/options.h).
ENGINE_OPTIONS = tuple(s["name"] for s in _C.option_specs() if s["group"] == "engine")
#: Engine.stream keywords accepted in **options: the upscale option table (flashvsr/options.h).
STREAM_OPTIONS = tuple(s["name"] for s in _C.option_specs() if s["group"] == "upscale")
#: Output and input keywords accepted in **options (video output: the encoder's; copy_* apply to the join).
IO_OPTIONS = ("bits", "start_number", "overwrite", "fps", "max_pixels")
FILE_OPTIONS = ("codec", "pix_fmt", "crf", "encoder_options", "batch", "pipeline_depth")
JOIN_OPTIONS = ("copy_audio", "copy_subtitles")

INSTALL_HINT = "Ray is not installed: pip install '.[distributed]' (or pip install 'flashvsr[distributed]')"


class SegmentFailed(_C.Error):
    """A segment's task failed: the message names the segment, its frames, the worker and the worker's error."""


def _ray():
    # Ray's driver otherwise replaces builtins.print with its tqdm-safe print in the caller's process.
    os.environ.setdefault("RAY_TQDM_PATCH_PRINT", "0")
    try:
        import ray  # noqa: PLC0415
    except ImportError as e:
        raise ImportError(INSTALL_HINT) from e
    return ray


def _hms(s: float) -> str:
    if not (s >= 0) or s > 1e7:
        return "--:--"
    t = int(s + 0.5)
    return f"{t // 3600:02d}:{t // 60 % 60:02d}:{t % 60:02d}"


def progress_line(done: int, total: int, elapsed: float, workers: int) -> str:
    """One line, as the CLI prints it: frames done/total (%), fps, ETA, elapsed, workers busy."""
    fps = done / elapsed if elapsed > 0 else 0.0
    s = f"frames {done}/{total} ({100 * done // max(total, 1)}%)  {fps:.2f} fps"
    if fps > 0:
        s += f"  ETA {_hms((total - done) / fps)}"
    return s + f"  elapsed {_hms(elapsed)}  workers {workers}"


class _Board:
    """Ray actor: the latest report of each segment's task (a retried task starts again from 0), and the job's
    cancel flag, which every report returns to its task (the cooperative cancel: the task stops at its next chunk).
    """

    def __init__(self) -> None:
        self.seg: dict[int, dict] = {}
        self.cancelled = False

    def update(self, index: int, done: int, chunks: int, pid: int, host: str) -> bool:
        old = self.seg.get(index)
        restarts = 0 if old is None else old["restarts"] + (old["pid"] != pid or chunks < old["chunks"])
        self.seg[index] = {"done": done, "chunks": chunks, "pid": pid, "host": host, "restarts": restarts}
        return self.cancelled

    def get(self) -> dict:
        return self.seg

    def cancel(self) -> None:
        self.cancelled = True


def _image_output(output: str) -> tuple[str, str]:
    """(folder, pattern) of an image-sequence output spec: "dir/%05d.png" or "dir/" (-> %06d.png)."""
    if output.endswith("/") or os.path.isdir(output):
        return output.rstrip("/") or "/", "%06d.png"
    folder, name = os.path.split(output)
    if not folder:
        raise _C.InputError(f"output '{output}': an image pattern needs its own folder, e.g. out/%05d.png")
    return folder, name


def _check_output_folder(folder: str, overwrite: bool) -> None:
    if os.path.isdir(folder) and os.listdir(folder):
        if not overwrite:
            raise _C.InputError(f"the output folder '{folder}' is not empty (use overwrite=True to replace it)")


def upscale_file(
    input: str,
    output: str,
    *,
    address: str | None = None,
    workers: int | None = None,
    segment_frames: int = DEFAULT_SEGMENT_FRAMES,
    warmup_frames: int | None = None,
    threads: int = 0,
    max_retries: int = 3,
    progress: Callable[[dict], Any] | None = None,
    quiet: bool = False,
    **options,
) -> dict:
    """Upscales ``input`` into ``output`` with segments on Ray workers. See docs/SCALE_OUT.md.

    ``address``: None starts a local Ray instance (``workers`` CPUs, default os.cpu_count()); "auto" or
    "HOST:PORT" joins a running cluster (``ray start --head`` / ``ray start --address``). ``workers``: the most
    segments in flight. ``segment_frames``: frames per segment (whole chunks of 8). ``warmup_frames``: frames
    decoded and run before each segment with their output discarded (a multiple of 8; None: the replay depth,
    48). ``threads``: intra-op threads per worker (0: the worker's default). ``max_retries``: retries of a task
    whose worker died. ``progress(info)``: called about twice a second with {done, total, fps, eta, segments:
    {index: {done, chunks, pid, host, restarts}}}; returning False cancels the job. ``options``: flashvsr.load's
    (model_dir, version, mode, device, dtype, legacy_v10_cache_order), Engine.stream's (scale, color_fix,
    sparse_ratio, kv_ratio, local_range, seed, tile_size, tile_overlap, max_memory, park_tile_state), ``bits``
    (image output),
    ``start_number``, ``fps`` (image-sequence input), ``max_pixels``, ``overwrite``; video output: the encoder's
    (codec, pix_fmt, crf, encoder_options; every segment with the same settings), ``copy_audio`` and
    ``copy_subtitles`` (copied once, from the source, when the segments are joined), batch, pipeline_depth.

    Output: an image sequence ("dir/%05d.png", "dir/") is written by the workers into "dir.tmp-PID/", renamed
    when complete; a video file is written as one file per segment into "OUT.parts-PID/" (video only) and joined
    by stream copy into OUT (through "OUT.tmp-PID.EXT"), then the folder is removed.

    Returns {frames, segments, seconds, fps, output, restarts (tasks run again after their worker died)}.
    Raises SegmentFailed (a segment's error: no output, the job's folder removed), flashvsr.Cancelled (progress
    returned False, or Ctrl-C: every task is cancelled, no output), flashvsr.InputError for bad arguments,
    ImportError when Ray is missing."""
    unknown = sorted(
        set(options)
        - set(ENGINE_OPTIONS)
        - set(STREAM_OPTIONS)
        - set(IO_OPTIONS)
        - set(FILE_OPTIONS)
        - set(JOIN_OPTIONS)
    )
    if unknown:
        raise TypeError(f"upscale_file: unknown option(s) {', '.join(unknown)}")
    engine_options = {k: options[k] for k in ENGINE_OPTIONS if k in options}
    engine_options.setdefault("model_dir", os.environ.get("FLASHVSR_MODEL_DIR", ""))
    if not engine_options["model_dir"]:
        raise _C.InputError("model_dir is required (or set FLASHVSR_MODEL_DIR)")
    engine_options["model_dir"] = os.path.abspath(str(engine_options["model_dir"]))
    stream_options = {k: options[k] for k in STREAM_OPTIONS if k in options}
    overwrite = bool(options.get("overwrite", False))
    if workers is not None and workers < 1:
        raise _C.InputError(f"workers must be >= 1, got {workers}")
    input, output = str(input), str(output)

    # Input: its frames (image sequences) or their estimated count (video).
    files = None
    if _C.io.is_image_sequence_input(input):
        seq = _C.io.image_sequence(input, int(options.get("start_number", -1)))
        files, frames, source_bits = seq["files"], len(seq["files"]), seq["bits"]
    else:
        info = _C.io.probe(input)
        if info["best_video"] < 0:
            raise _C.InputError(f"'{input}' has no video stream")
        v = info["streams"][info["best_video"]]
        frames = v["frames"]
        if frames <= 0 and v["fps"][1] > 0 and info["duration"] > 0:
            frames = int(info["duration"] * v["fps"][0] / v["fps"][1] + 0.5)
        if frames <= 0:
            raise _C.InputError(f"'{input}': the frame count is unknown (no nb_frames, duration or rate)")
        source_bits = 10 if "10" in v["pix_fmt"] else 8
    video_out = not _C.io.is_image_sequence_output(output)
    if video_out:
        # Segments go to a shared folder beside the output, in its container; joined into the output at the end.
        if os.path.exists(output) and not overwrite:
            raise _C.InputError(f"the output '{output}' exists (use overwrite=True to replace it)")
        folder, pattern, bits = os.path.dirname(os.path.abspath(output)), "", 0
        parts = f"{os.path.abspath(output)}.parts-{os.getpid()}"
        file_options = {k: options[k] for k in FILE_OPTIONS if k in options}
        for k in ("fps", "start_number", "max_pixels"):
            if k in options:
                file_options[k] = options[k]
    else:
        folder, pattern = _image_output(output)
        ext = os.path.splitext(pattern)[1].lower()
        bits = int(options.get("bits", 0)) or ((16 if source_bits > 8 else 8) if ext != ".exr" else 16)
        _check_output_folder(folder, overwrite)
        parts, file_options = f"{folder}.tmp-{os.getpid()}", {}
    kv = float(stream_options.get("kv_ratio", 3.0))
    segments = plan_segments(frames, segment_frames, warmup_frames, kv)

    ray = _ray()
    started = False
    if not ray.is_initialized():
        if address is None:
            # address="local": always a new local instance (never an existing cluster found through
            # RAY_ADDRESS or /tmp/ray, which would also refuse num_cpus)
            ray.init(address="local", num_cpus=workers or os.cpu_count(), include_dashboard=False, log_to_driver=False)
        else:
            ray.init(address=address, log_to_driver=False)
        started = True
    in_flight = workers or max(1, int(ray.cluster_resources().get("GPU" if _on_gpu(engine_options) else "CPU", 1)))

    tmp = parts
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    board = ray.remote(_Board).options(num_cpus=0).remote()
    remote = ray.remote(_run_remote).options(
        max_retries=max_retries,
        retry_exceptions=False,
        **({"num_gpus": 1} if _on_gpu(engine_options) else {"num_cpus": 1}),
    )

    def task_of(seg: Segment) -> SegmentTask:
        f = None
        if files is not None:
            f = files[seg.input_begin : (seg.input_end if seg.input_end >= 0 else len(files))]
        common = dict(
            segment=seg,
            input=input,
            output_dir=tmp,
            engine_options=engine_options,
            stream_options=stream_options,
            threads=threads,
        )
        if video_out:
            name = os.path.join(tmp, f"seg_{seg.index:05d}{os.path.splitext(output)[1]}")
            return SegmentTask(
                **common, input_files=None, output_pattern="", bits=0, output_file=name, file_options=file_options
            )
        return SegmentTask(**common, input_files=f, output_pattern=pattern, bits=bits)

    t0 = time.monotonic()
    queue = list(segments)
    running: dict[Any, Segment] = {}
    results: dict[int, dict] = {}
    total = frames
    tty = sys.stderr.isatty()
    last_print = 0.0
    try:
        while queue or running:
            while queue and len(running) < in_flight:
                seg = queue.pop(0)
                running[remote.remote(task_of(seg), board)] = seg
            ready, _ = ray.wait(list(running), num_returns=1, timeout=0.5)
            for ref in ready:
                seg = running.pop(ref)
                try:
                    results[seg.index] = ray.get(ref)
                except Exception as e:  # noqa: BLE001 (any task failure fails the job)
                    raise SegmentFailed(_describe_failure(seg, e, ray.get(board.get.remote()), max_retries)) from None
            reports = ray.get(board.get.remote())
            done = sum(r["done"] for r in reports.values())
            if results:
                total = max(total, done)
            el = time.monotonic() - t0
            fps = done / el if el > 0 else 0.0
            info = {
                "done": done,
                "total": total,
                "fps": fps,
                "eta": (total - done) / fps if fps > 0 else None,
                "segments": reports,
            }
            if progress is not None and progress(info) is False:
                raise _C.Cancelled(f"cancelled by the progress callback after {done} frames")
            if not quiet and (time.monotonic() - last_print >= (0.25 if tty else 5.0)):
                last_print = time.monotonic()
                line = progress_line(done, total, el, len(running))
                sys.stderr.write(("\r" + line + "\033[K") if tty else line + "\n")
                sys.stderr.flush()
    except BaseException as e:
        _cancel_all(ray, running, board)
        shutil.rmtree(tmp, ignore_errors=True)
        if started:
            ray.shutdown()
        if isinstance(e, KeyboardInterrupt):
            raise _C.Cancelled("cancelled (Ctrl-C): every segment task was cancelled, no output written") from None
        raise
    el = time.monotonic() - t0
    n = sum(r["frames"] for r in results.values())
    restarts = sum(r["restarts"] for r in ray.get(board.get.remote()).values())
    if started:
        ray.shutdown()
    if video_out:
        # The segments' packets joined by stream copy; audio, subtitles, chapters and metadata from the source.
        try:
            files = [results[i]["file"] for i in sorted(results) if results[i]["file"]]
            joined = _C.io.concat_segments(
                files,
                input,
                output,
                bool(options.get("copy_audio", True)),
                bool(options.get("copy_subtitles", True)),
                overwrite,
            )
            if not quiet:
                for w in joined["warnings"]:
                    sys.stderr.write(f"warning: {w}\n")
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        pattern = os.path.basename(output)
        folder = os.path.dirname(output)
    else:
        if os.path.isdir(folder):
            shutil.rmtree(folder)  # empty, or (overwrite) the previous frames
        os.rename(tmp, folder)
    if not quiet:
        line = progress_line(n, n, el, 0)
        sys.stderr.write(("\r" + line + "\033[K\n") if tty else line + "\n")
    return {
        "frames": n,
        "segments": len(segments),
        "seconds": el,
        "fps": n / el if el > 0 else 0.0,
        "output": os.path.join(folder, pattern),
        "restarts": restarts,
    }


def _on_gpu(engine_options: dict) -> bool:
    d = str(engine_options.get("device", "auto"))
    if d.startswith("cuda"):
        return True
    return d == "auto" and bool(_C.build_info().get("cuda_available", False))


def _run_remote(task: SegmentTask, board) -> dict:
    """The Ray task: one segment, reporting to the board after each chunk; it stops (flashvsr.Cancelled) when the
    board says the job is cancelled."""
    ray = _ray()

    def report(i: int, done: int, chunks: int, pid: int, host: str) -> bool:
        return not ray.get(board.update.remote(i, done, chunks, pid, host))

    return run_segment(task, report)


def _describe_failure(seg: Segment, e: BaseException, reports: dict, max_retries: int) -> str:
    cause = getattr(e, "cause", None) or e
    text = str(cause).strip().splitlines()
    where = reports.get(seg.index, {})
    worker = f" on {where.get('host')} (pid {where.get('pid')})" if where else ""
    end = seg.output_end if seg.output_end >= 0 else "end"
    msg = text[0] if text else type(cause).__name__
    if type(cause).__name__ in ("WorkerCrashedError", "NodeDiedError", "OutOfMemoryError"):
        msg = f"{type(cause).__name__}: its worker died and the {max_retries} retries are spent"
    return f"segment {seg.index} (frames {seg.output_begin}..{end}){worker} failed: {msg}"


def _cancel_all(ray, running: dict, board, grace: float = 20.0) -> None:
    """Cancels every task cooperatively: the board's flag, which each task sees at its next report (after every
    chunk) and stops with flashvsr.Cancelled; tasks still running after ``grace`` seconds (stuck outside the
    engine) are killed with ``ray.cancel(force=True)`` as a last resort. No ``ray.cancel`` otherwise: Ray 2.60's
    driver can abort when a cancel races the reply of a task that has just finished ("Tried to complete task that
    was not pending")."""
    refs = list(running)
    try:
        ray.get(board.cancel.remote(), timeout=10)
    except Exception:  # noqa: BLE001 (the board is gone: only the last resort is left)
        grace = 0.0
    if not refs:
        return
    _, pending = ray.wait(refs, num_returns=len(refs), timeout=grace)
    for ref in pending:
        try:
            ray.cancel(ref, force=True)
        except Exception:  # noqa: BLE001 (finished meanwhile)
            pass
    deadline = time.monotonic() + 10
    for ref in refs:
        try:
            ray.get(ref, timeout=max(0.1, deadline - time.monotonic()))
        except Exception:  # noqa: BLE001 (cancelled / failed: what we want to wait for)
            pass
