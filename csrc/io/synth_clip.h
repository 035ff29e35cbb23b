// A synthetic test clip (moving pattern + sine tone) written with libavcodec/libavformat.
// Used by tests and, later, by `flashvsr demo`, so no external sample video is ever needed.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace flashvsr::io {

struct SynthClipOptions {
    int width = 160;  // even (yuv420p)
    int height = 96;
    int frames = 24;
    int fps_num = 24;  // frame rate as a fraction: 24000/1001 = 23.976
    int fps_den = 1;
    bool audio = true;  // add an AAC mono track with a sine tone
    double tone_hz = 440.0;
    int sample_rate = 48000;
    std::string video_encoder = "libx264";  // any libavcodec encoder accepting yuv420p
};

/// Frame i of the pattern as packed RGB24, [height][width][3] bytes: a diagonal gradient that moves
/// by 2 px per frame plus a white square that moves by 3 px per frame.
std::vector<uint8_t> synthetic_frame_rgb(int width, int height, int index);

/// Writes the clip to `path` (container chosen from the extension). The file is written under a temporary
/// name in the same folder and renamed when complete, so a failed write never leaves `path` behind.
/// Throws InputError naming the problem (unknown encoder, odd size, unwritable folder, ...).
void write_synthetic_clip(const std::string& path, const SynthClipOptions& opt);

}  // namespace flashvsr::io
