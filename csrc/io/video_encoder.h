// Streaming video encoder + muxer (libavcodec + libavformat + libswscale): float RGB frames with their
// source timestamps in, any libavcodec video encoder by name, audio/subtitle streams of the source copied
// packet for packet, chapters and container metadata kept. Written under a temporary name and renamed when
// complete (finish) or to the ".partial" name (finish_partial); destroyed unfinished, it leaves no file.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "csrc/io/av_ptr.h"
#include "csrc/io/video_decoder.h"

namespace flashvsr::io {

struct EncoderOptions {
    std::string codec = "libx264";  // any libavcodec video encoder name
    std::string pix_fmt;            // "" = yuv420p (yuv420p10le for >8-bit sources where the encoder has it;
                                    // yuv444p / yuv444p10le for an odd width or height)
    int crf = 18;                   // constant rate factor for encoders with a "crf" option; < 0: not set
    std::vector<std::pair<std::string, std::string>> private_options;  // -e key=value (fatal when rejected)
    bool copy_audio = true;
    bool copy_subtitles = true;
};

/// "OUT.partial.EXT" for "OUT.EXT": where a cancelled run's playable file goes.
std::string partial_path(const std::string& path);

class VideoEncoder {
  public:
    /// `source`: colour, time base, frame rate and aspect of the input video (width/height are the output's);
    /// `copy_from` (may be null): the demuxer whose other streams, chapters and metadata are copied;
    /// `offset_pts`: subtracted from every timestamp (the --start point, in the video time base; 0 keeps
    /// the source timestamps). Throws InputError for an unknown container, encoder, pixel format or
    /// option, and an unwritable output. An existing `path` is replaced when finish() renames onto it:
    /// whether it may be is the caller's rule (pipeline::check_output).
    VideoEncoder(const std::string& path, int width, int height, const VideoStreamInfo& source,
                 const AVFormatContext* copy_from, int64_t offset_pts, const EncoderOptions& options);
    ~VideoEncoder();
    VideoEncoder(VideoEncoder&&) noexcept;
    VideoEncoder& operator=(VideoEncoder&&) noexcept;

    /// rgb: float [n, height, width, 3] in [0, 1] (clamped); pts/duration: one per frame, source time base.
    void write(const at::Tensor& rgb, const std::vector<int64_t>& pts,
               const std::vector<int64_t>& duration = {});
    /// A packet of another stream of `copy_from` (not consumed; ignored when that stream is not copied).
    void write_packet(const AVPacket* pkt);

    /// Flushes the encoder, writes the trailer and renames the file to `path`. Returns `path`.
    std::string finish();
    /// The same, for a cancelled run: the file goes to partial_path(path). Returns that name.
    std::string finish_partial();

    int64_t frames_written() const { return frames_written_; }
    const std::string& pix_fmt() const { return pix_fmt_name_; }
    /// Streams skipped (muxer cannot hold them, unsupported types) and other non-fatal notes.
    const std::vector<std::string>& warnings() const { return warnings_; }

  private:
    void drain(bool flush);
    std::string close_and_rename(const std::string& dest);

    std::string path_, tmp_;
    EncoderOptions opt_;
    VideoStreamInfo src_;
    const AVFormatContext* in_ = nullptr;
    AVFormatOutputPtr oc_;
    AVCodecContextPtr ec_;
    SwsContextPtr sws_;
    AVFramePtr frame_;
    AVPacketPtr pkt_;
    int video_index_ = 0;
    int64_t offset_pts_ = 0;
    std::vector<int> map_;
    std::vector<std::string> warnings_;
    std::string pix_fmt_name_;
    bool deep_ = false;
    bool finished_ = false;
    int64_t frames_written_ = 0;
};

}  // namespace flashvsr::io
