// Where a frame of a video stream starts: a packet-only scan (no decoding) that maps a frame index of
// VideoDecoder's output to its timestamp and to the keyframe a decoder must start from to produce it
// exactly as a decode from the start does. VideoDecoder uses it for DecoderOptions::start_frame.
#pragma once

#include <cstdint>
#include <string>

extern "C" {
struct AVFormatContext;
}

namespace flashvsr::io {

/// The answer of find_seek_point. All timestamps are in the video stream's time base.
struct SeekPoint {
    bool ok = false;      // false: no frame-accurate seek for this stream; `reason` says why
    std::string reason;   // e.g. "video packets without timestamps"
    int64_t frame = 0;    // the frame asked for (an index of the decoder's output, after begin_pts)
    int64_t pts = 0;      // its presentation timestamp
    int64_t key_pts = 0;  // the keyframe to start decoding from: its pts, its dts (INT64_MIN unknown)
    int64_t key_dts = INT64_MIN;
    int64_t key_packet = 0;    // its position among the stream's video packets (decode order)
    int64_t frames = -1;       // frames of the stream in [begin_pts, end_pts) when the scan reached the end;
                               // -1 when it stopped early (the frame was found)
    int64_t packets_read = 0;  // video packets the scan read (its cost: no decoding)
};

/// Scans the video packets of stream `stream` of `fmt` (a freshly opened demuxer, read from its start and
/// left at an arbitrary position) in decode order. Frame i of a decoder's output is the packet with the
/// (i+1)-th smallest pts among those in [begin_pts, end_pts); the keyframe is the last one at or before
/// that pts such that no packet before it in decode order shows at or after the frame. The scan stops two
/// keyframes past the frame (assumption: B-frame reordering never spans a whole GOP). It refuses (ok =
/// false) streams where that mapping is not certain: packets without pts, duplicate pts, packets to be
/// discarded (edit lists), a stream that does not start on a keyframe or shows frames before it. When the
/// stream ends before the frame, ok is false and `frames` holds the count (the caller names both).
SeekPoint find_seek_point(AVFormatContext* fmt, int stream, int64_t frame, int64_t begin_pts,
                          int64_t end_pts);

}  // namespace flashvsr::io
