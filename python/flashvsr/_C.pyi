# Type stubs for the compiled module flashvsr._C.
from collections.abc import Callable
from os import PathLike
from types import ModuleType

import torch

__version__: str

class Error(RuntimeError): ...
class InputError(Error): ...
class ModelError(Error): ...
class Cancelled(Error): ...
class OutOfMemory(Error): ...

def version() -> str: ...
def build_info() -> dict: ...
def segment_frames(first_chunk: int, end_chunk: int = -1, warmup_chunks: int = -1, kv_ratio: float = 3.0) -> dict:
    """{"warmup_chunk", "input_begin", "input_end", "output_begin", "output_end"} (global frame indices,
    half-open; -1 = to the end of the video) of the segment stream [first_chunk, end_chunk)."""

def memory_report() -> dict:
    """{"rss_bytes", "peak_rss_bytes", "cuda": bool, and with CUDA "cuda_allocated_bytes",
    "cuda_reserved_bytes", "cuda_peak_allocated_bytes"}."""

ProgressFn = Callable[[int, int], bool | None]

class Stream:
    def push(self, frames: torch.Tensor) -> None: ...
    def pull(self) -> torch.Tensor: ...
    def finish(self) -> None: ...
    def set_progress(self, progress: ProgressFn | None) -> None: ...
    @property
    def frames_pushed(self) -> int: ...
    @property
    def frames_done(self) -> int: ...
    @property
    def chunks_done(self) -> int: ...
    @property
    def state_bytes(self) -> int: ...
    @property
    def tiles(self) -> list[tuple[int, int, int, int]]:
        """(top, left, height, width) of each tile in output pixels of the padded frame."""

class Engine:
    def __init__(
        self,
        model_dir: str | PathLike,
        *,
        version: str | None = None,
        mode: str = "tiny",
        device: str = "auto",
        dtype: str = "auto",
        legacy_v10_cache_order: bool = False,
    ) -> None: ...
    @property
    def info(self) -> dict: ...
    def memory(self) -> dict:
        """memory_report() of the process."""
    @property
    def closed(self) -> bool: ...
    def close(self) -> None: ...
    def to(self, device: str | torch.device) -> Engine:
        """Moves the weights to ``device`` ("cpu", "cuda", "cuda:N", "auto" or a torch.device) without
        reading the model folder; returns the engine. Raises InputError while a stream made from this
        engine is alive, OutOfMemory when the device cannot hold the weights (they stay where they were)."""
    def upscale(
        self,
        frames: torch.Tensor,
        *,
        scale: int = 4,
        color_fix: str = "adain",
        sparse_ratio: float = 2.0,
        kv_ratio: float = 3.0,
        local_range: int = 11,
        seed: int = 0,
        tile_size: int = 0,
        tile_overlap: int = 0,
        max_memory: int | None = None,
        park_tile_state: str = "auto",
        progress: ProgressFn | None = None,
    ) -> torch.Tensor: ...
    def stream(
        self,
        *,
        scale: int = 4,
        color_fix: str = "adain",
        sparse_ratio: float = 2.0,
        kv_ratio: float = 3.0,
        local_range: int = 11,
        seed: int = 0,
        tile_size: int = 0,
        tile_overlap: int = 0,
        max_memory: int | None = None,
        park_tile_state: str = "auto",
        progress: ProgressFn | None = None,
        first_chunk: int = 0,
        end_chunk: int = -1,
        warmup_chunks: int = -1,
    ) -> Stream:
        """first_chunk/end_chunk/warmup_chunks: a segment of a longer video (scale-out, docs/SCALE_OUT.md):
        push frames from segment_frames(...)["input_begin"] on; it emits frames output_begin..output_end-1."""

def option_specs() -> list[dict]:
    """The option tables: one dict per option with name, group ("engine" | "upscale" | "transcode"), type
    ("int" | "float" | "bool" | "choice" | "str" | "dict"), default, choices, range ((min, max, step) or None),
    cli_flag, meta, help, cli and python (bools: `flashvsr upscale` / the Python keywords take it)."""

def normalize_options(group: str, kwargs: dict) -> dict:
    """Every option of `group` after setting `kwargs` through the table (TypeError for an unknown name or a
    wrong type), validated (InputError; engine options only when model_dir is set)."""

class CancelToken:
    def __init__(self) -> None: ...
    def cancel(self) -> None: ...
    @property
    def cancelled(self) -> bool: ...

class TranscodeProgress:
    @property
    def frames_done(self) -> int: ...
    @property
    def frames_total(self) -> int:
        """-1 while unknown."""
    @property
    def elapsed_s(self) -> float: ...
    @property
    def fps(self) -> float: ...
    @property
    def eta_s(self) -> float:
        """-1 while unknown."""
    @property
    def final(self) -> bool: ...

UPSCALE_FILE_OPTIONS: list[str]

def upscale_file(
    input: str | PathLike,
    output: str | PathLike,
    *,
    engine: Engine | None = None,
    progress: Callable[[TranscodeProgress], bool | None] | None = None,
    cancel: CancelToken | None = None,
    verbose: bool = False,
    model_dir: str | PathLike | None = None,
    version: str | None = None,
    mode: str = "tiny",
    device: str = "auto",
    dtype: str = "auto",
    legacy_v10_cache_order: bool = False,
    scale: int = 4,
    color_fix: str = "adain",
    sparse_ratio: float = 2.0,
    kv_ratio: float = 3.0,
    local_range: int = 11,
    seed: int = 0,
    tile_size: int = 0,
    tile_overlap: int = 0,
    max_memory: int | None = None,
    park_tile_state: str = "auto",
    codec: str = "libx264",
    pix_fmt: str | None = None,
    crf: int = 18,
    encoder_options: dict[str, str] | None = None,
    copy_audio: bool = True,
    copy_subtitles: bool = True,
    start: float = 0.0,
    end: float | None = None,
    max_pixels: int = 67108864,
    overwrite: bool = False,
    keep_partial: bool = True,
    batch: int = 4,
    pipeline_depth: int = 2,
    start_number: int | None = None,
    fps: str | float = 25,
    bit_depth: int = 0,
    first_chunk: int = 0,
    end_chunk: int = -1,
    warmup_chunks: int = -1,
) -> dict: ...

class VideoReader:
    """Streaming decoder of a file's best video stream (float32 [n,H,W,3] in [0,1] batches)."""

    def __init__(self, path: str, max_pixels: int = 67108864, start_frame: int = 0) -> None:
        """start_frame: the first frame read, reached by a frame-accurate seek (the same frames as from the start)."""
    def read(self, max_frames: int) -> torch.Tensor:
        """The next frames (at most max_frames); an empty batch at the end."""
    @property
    def frames_read(self) -> int: ...
    @property
    def frames_decoded(self) -> int:
        """Frames decoded, those dropped before start_frame included."""
    @property
    def seeked(self) -> bool:
        """Whether start_frame was reached by a seek."""
    @property
    def notes(self) -> list[str]:
        """Notes since the last call (a start_frame reached without a seek, and why)."""
    @property
    def width(self) -> int: ...
    @property
    def height(self) -> int: ...

class _IO(ModuleType):
    VideoReader: type[VideoReader]
    def probe(self, path: str) -> dict: ...
    def read_video_rgb24(self, path: str, max_frames: int = -1) -> torch.Tensor: ...
    def read_image(self, path: str, max_pixels: int = 67108864) -> torch.Tensor: ...
    def write_image(self, path: str, rgb: torch.Tensor, bits: int = 8) -> None: ...
    def image_sequence(self, spec: str, start_number: int = -1) -> dict: ...
    def concat_segments(
        self,
        segments: list[str],
        source: str,
        output: str,
        copy_audio: bool = True,
        copy_subtitles: bool = True,
        overwrite: bool = False,
    ) -> dict: ...
    def is_image_sequence_output(self, spec: str) -> bool: ...
    def is_image_sequence_input(self, spec: str) -> bool: ...
    def write_synthetic_clip(
        self,
        path: str,
        width: int = 160,
        height: int = 96,
        frames: int = 24,
        fps_num: int = 24,
        fps_den: int = 1,
        audio: bool = True,
        tone_hz: float = 440.0,
        video_encoder: str = "libx264",
    ) -> None: ...

class _Models(ModuleType):
    FILES: dict[str, str]
    def parameter_manifest(self, component: str, size: str = "full") -> list: ...
    def key_hash(self, manifest: list) -> str: ...
    def inspect_json(self, dir: str, version: str | None = None) -> str: ...
    def load_tensors(self, path: str) -> dict: ...
    def make_test_weights(
        self, dir: str, size: str = "tiny", version: str = "v1.1", seed: int = 0, prompt_tokens: int = 512
    ) -> list: ...

io: _IO
models: _Models
nn: ModuleType
