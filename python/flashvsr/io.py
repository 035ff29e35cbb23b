"""Media helpers of the native engine: probing, reading clips and images, writing a synthetic test clip."""

from ._C import io as _io

probe = _io.probe
read_video_rgb24 = _io.read_video_rgb24
VideoReader = _io.VideoReader
read_image = _io.read_image
write_image = _io.write_image
write_synthetic_clip = _io.write_synthetic_clip
image_sequence = _io.image_sequence
concat_segments = _io.concat_segments
is_image_sequence_input = _io.is_image_sequence_input
is_image_sequence_output = _io.is_image_sequence_output

__all__ = [
    "probe",
    "read_video_rgb24",
    "VideoReader",
    "read_image",
    "write_image",
    "write_synthetic_clip",
    "image_sequence",
    "concat_segments",
    "is_image_sequence_input",
    "is_image_sequence_output",
]
