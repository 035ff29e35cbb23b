// Media probing with libavformat: what streams a file has, their codecs, sizes and rates.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace flashvsr::io {

struct StreamInfo {
    int index = -1;
    std::string type;   // "video", "audio", "subtitle", "data", "attachment", "unknown"
    std::string codec;  // libavcodec short name, e.g. "h264", "aac"
    int width = 0;      // video only
    int height = 0;
    std::string pix_fmt;  // video only, e.g. "yuv420p"
    int fps_num = 0;      // video: guessed frame rate as a fraction (0/0 if unknown)
    int fps_den = 0;
    int64_t frames = 0;   // frame count from the container header (0 when unknown)
    int sample_rate = 0;  // audio only
    int channels = 0;
    double duration_s = 0.0;  // stream duration in seconds (0 when unknown)
};

struct MediaInfo {
    std::string path;
    std::string format;  // demuxer name, e.g. "mov,mp4,m4a,3gp,3g2,mj2"
    double duration_s = 0.0;
    std::vector<StreamInfo> streams;
    int best_video = -1;  // index into streams of the main video stream, -1 if none
};

/// Opens `path` with libavformat and reads its stream table. Throws InputError naming the file when it
/// does not exist or cannot be parsed as media.
MediaInfo probe(const std::string& path);

}  // namespace flashvsr::io
