// Joining encoded video segments by stream copy (scale-out, docs/SCALE_OUT.md): the segments' video packets
// one after the other, untouched, plus the source's audio and subtitle streams, chapters and metadata copied
// once, interleaved by time. No decoding, no re-encoding; memory does not grow with the video.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace flashvsr::io {

struct ConcatOptions {
    bool copy_audio = true;
    bool copy_subtitles = true;
    bool overwrite = false;  // replace an existing output file
};

struct ConcatResult {
    int64_t video_packets = 0;          // = frames for the usual encoders (one packet per frame)
    int64_t copied_packets = 0;         // audio and subtitle packets of the source
    std::vector<std::string> warnings;  // streams the output container cannot hold, ...
};

/// `segments`: files of one video stream each, in order, with the same codec, size, pixel format and codec
/// headers (extradata), each starting with a key frame and holding the source's timestamps (e.g. written by
/// io::VideoEncoder without copied streams); `source`: the input whose audio/subtitle streams, chapters and
/// metadata are copied ("" = none); `output`: any container that holds the codec. Written to
/// "OUT.tmp-PID.EXT" and renamed when complete; on any error nothing is left. Throws InputError naming the
/// segment for a missing or unreadable file, different codec parameters, or timestamps that go backwards at
/// a join (overlapping segments).
ConcatResult concat_segments(const std::vector<std::string>& segments, const std::string& source,
                             const std::string& output, const ConcatOptions& options = {});

}  // namespace flashvsr::io
