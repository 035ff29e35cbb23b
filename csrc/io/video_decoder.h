// Streaming video decoder (libavformat + libavcodec + libswscale): the best video stream of a file, frames
// in batches as float RGB tensors with their source timestamps, in bounded memory.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "csrc/io/av_ptr.h"
#include "csrc/io/image_header.h"

namespace flashvsr::io {

struct DecoderOptions {
    double start_s = 0.0;  // first frame: the first with pts >= start (seconds of the stream timeline)
    double end_s = -1.0;   // stop before the first frame with pts >= end (< 0: to the end)
    int64_t max_pixels = kDefaultMaxPixels;  // larger frames are refused before any is decoded (--max-pixels)
    bool rgb24 =
        false;  // read() returns uint8 RGB [n, H, W, 3] (8 bits whatever the source depth), not float
    // First frame returned: an index of the output numbering (frame 0 = the first at or after start_s).
    // The decoder seeks to the keyframe it needs (a packet scan finds it: io/frame_index.h) and drops
    // the frames before it; the frames are bit-identical to frames start_frame.. of a decode from the start.
    // Where no exact seek is possible it decodes from the start and drops them (take_notes() says why).
    // Past the end: InputError naming the index and the frame count.
    int64_t start_frame = 0;
};

/// What the video stream is (valid after construction).
struct VideoStreamInfo {
    int stream_index = -1;
    int width = 0;
    int height = 0;
    std::string pix_fmt;  // decoder's pixel format, e.g. "yuv420p10le"
    int bits = 8;         // bits per component of the source
    int tb_num = 1;       // stream time base (the unit of every pts below)
    int tb_den = 1;
    int fps_num = 0;  // av_guess_frame_rate (0/1 unknown); only for the encoder's rate control
    int fps_den = 1;
    int sar_num = 0;  // sample aspect ratio (0/1 unknown)
    int sar_den = 1;
    int64_t frames_estimate = -1;  // nb_frames of the header, else duration x fps (-1 unknown)
    // Colour (AVColorSpace / AVColorRange / AVColorPrimaries / AVColorTransferCharacteristic /
    // AVChromaLocation values). `matrix` and `range` are what the conversion uses: an unspecified matrix is
    // BT.601 below 720 lines and BT.709 from 720 up (as FFmpeg), an unspecified range is limited.
    int colorspace = 2;   // AVCOL_SPC_UNSPECIFIED
    int color_range = 0;  // AVCOL_RANGE_UNSPECIFIED
    int color_primaries = 2;
    int color_trc = 2;
    int chroma_location = 0;
    int matrix = 0;  // AVColorSpace used for YUV->RGB (never unspecified)
    int range = 1;   // AVCOL_RANGE_MPEG (1) or AVCOL_RANGE_JPEG (2) used for YUV->RGB
};

/// A batch of decoded frames: rgb float32 [n, H, W, 3] in [0, 1] (uint8 with DecoderOptions::rgb24; n may be
/// 0 at the end) and, per frame,
/// its source pts in the stream time base (best_effort_timestamp; missing ones extrapolated) and duration.
struct FrameBatch {
    at::Tensor rgb;
    std::vector<int64_t> pts;
    std::vector<int64_t> duration;
};

/// Move-only; every libav handle is owned. Errors throw InputError naming the file: missing file, not a
/// media file, no video stream, corrupt or truncated data, zero frames (in range).
class VideoDecoder {
  public:
    explicit VideoDecoder(const std::string& path, const DecoderOptions& options = {});
    ~VideoDecoder();
    VideoDecoder(VideoDecoder&&) noexcept;
    VideoDecoder& operator=(VideoDecoder&&) noexcept;

    const VideoStreamInfo& info() const { return info_; }
    const std::string& path() const { return path_; }
    /// The demuxer (for copying other streams, chapters and metadata); owned by the decoder, valid as long
    /// as it lives.
    const AVFormatContext* format() const { return fmt_.get(); }
    /// The --start point in the stream time base (0 without --start): what an encoder subtracts so that the
    /// output starts at 0 with audio still in sync.
    int64_t offset_pts() const { return begin_pts_ == INT64_MIN ? 0 : begin_pts_; }

    /// Packets of the other streams met while demuxing, in file order (their timestamps untouched; the
    /// packet is only valid during the call). Packets before --start or after --end are not passed.
    /// With start_frame they are those met from the keyframe the decoder seeks to (from the start when it
    /// cannot seek): not cut at the first frame returned.
    void set_packet_sink(std::function<void(AVPacket*)> sink) { sink_ = std::move(sink); }

    /// Up to `max_frames` next frames; an empty batch (n = 0) means the end. Throws InputError at the end
    /// when no frame at all was decoded, and for corrupt or truncated data.
    FrameBatch read(int64_t max_frames);

    int64_t frames_read() const { return frames_read_; }
    int64_t start_frame() const { return opt_.start_frame; }
    /// Frames the codec produced, the ones dropped before start_s / start_frame included (the work done).
    int64_t frames_decoded() const { return frames_decoded_; }
    /// Whether DecoderOptions::start_frame was reached by a seek (false: decoded from the start, or 0).
    bool seeked() const { return target_pts_ != INT64_MIN; }
    /// Notes for the user (a start_frame reached without a seek, and why); cleared by the call.
    std::vector<std::string> take_notes() { return std::exchange(notes_, {}); }

  private:
    bool decode_one();  // one more frame into pending_; false at the end
    bool deep() const { return info_.bits > 8 && !opt_.rgb24; }  // frames converted to 16-bit RGB
    void convert(const AVFrame* f, uint8_t* dst);
    void seek_to_start_time();                                 // DecoderOptions::start_s > 0
    void seek_to_start_frame();                                // DecoderOptions::start_frame > 0
    bool seek_lands(int64_t ts, int64_t key_pts, bool exact);  // the first video packet after a seek
    void rewind_and_count(const std::string& why);  // decode from the start, drop start_frame frames
    [[noreturn]] void throw_past_end(int64_t frames) const;

    std::string path_;
    DecoderOptions opt_;
    VideoStreamInfo info_;
    AVFormatInputPtr fmt_;
    std::vector<AVFormatInputPtr> retired_;  // demuxers replaced by rewind_and_count (format() may be held)
    AVCodecContextPtr dec_;
    SwsContextPtr sws_;
    AVPacketPtr pkt_;
    AVFramePtr frame_;
    std::function<void(AVPacket*)> sink_;
    int64_t end_pts_ = INT64_MAX;
    int64_t begin_pts_ = INT64_MIN;  // --start in stream time base
    int64_t last_pts_ = INT64_MIN;
    int64_t last_dur_ = 0;
    int64_t frames_read_ = 0;
    int64_t frames_decoded_ = 0;      // including skipped ones before --start / start_frame
    int64_t target_pts_ = INT64_MIN;  // start_frame's pts after a seek (earlier frames dropped)
    int64_t skip_frames_ = 0;         // start_frame without a seek: frames still to drop
    bool count_packets_ = true;       // packets_read_ counts from the first packet (truncation check)
    std::vector<std::string> notes_;
    int64_t packets_read_ = 0;  // video packets demuxed (truncation check against nb_frames)
    bool demux_eof_ = false;
    bool flushed_ = false;
    bool done_ = false;
    bool past_end_ = false;
    std::vector<at::Tensor> pending_;  // uint8/uint16 [H, W, 3] of the current batch
    std::vector<int64_t> pending_pts_, pending_dur_;
};

}  // namespace flashvsr::io
