#include "csrc/io/video_decoder.h"

#include "csrc/io/colorspace.h"
#include "csrc/io/frame_index.h"

#include <flashvsr/errors.h>

#include <ATen/ATen.h>

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/pixdesc.h>
#include <libswscale/swscale.h>
}

#include <cmath>
#include <filesystem>
#include <vector>

namespace flashvsr::io {
namespace {

int default_matrix(int colorspace, int height) {
    if (colorspace != AVCOL_SPC_UNSPECIFIED && colorspace != AVCOL_SPC_RESERVED) {
        return colorspace;
    }
    return height >= 720 ? AVCOL_SPC_BT709 : AVCOL_SPC_SMPTE170M;
}

std::string squote(const std::string& p) { return "'" + p + "'"; }

AVFormatInputPtr open_input(const std::string& path) {
    AVFormatContext* raw = nullptr;
    const int oret = avformat_open_input(&raw, path.c_str(), nullptr, nullptr);
    if (oret < 0) {
        throw InputError(squote(path) + " is not a readable video file (" + av_error_string(oret) + ")");
    }
    AVFormatInputPtr fmt(raw);
    av_check(avformat_find_stream_info(fmt.get(), nullptr), "cannot read the stream information", path);
    return fmt;
}

}  // namespace

VideoDecoder::VideoDecoder(const std::string& path, const DecoderOptions& options)
    : path_(path), opt_(options) {
    namespace fs = std::filesystem;
    std::error_code ec;
    if (!fs::exists(path, ec)) {
        throw InputError("cannot open " + squote(path) + ": no such file");
    }
    if (fs::is_directory(path, ec)) {
        throw InputError("cannot open " + squote(path) + ": it is a folder");
    }
    fmt_ = open_input(path);
    const AVCodec* codec = nullptr;
    const int vi = av_find_best_stream(fmt_.get(), AVMEDIA_TYPE_VIDEO, -1, -1, &codec, 0);
    if (vi == AVERROR_DECODER_NOT_FOUND) {
        throw InputError(squote(path) + ": no decoder for its video codec in this FFmpeg build");
    }
    if (vi < 0 || (fmt_->streams[vi]->disposition & AV_DISPOSITION_ATTACHED_PIC) != 0) {
        throw InputError(squote(path) + " has no video stream");
    }
    AVStream* vs = fmt_->streams[vi];
    dec_.reset(avcodec_alloc_context3(codec));
    if (!dec_) {
        throw InputError("out of memory opening the decoder (" + path + ")");
    }
    av_check(avcodec_parameters_to_context(dec_.get(), vs->codecpar), "bad video stream parameters", path);
    if (vs->codecpar->width > 0 && vs->codecpar->height > 0) {
        check_pixel_budget(path, vs->codecpar->width, vs->codecpar->height, opt_.max_pixels, "--max-pixels");
    }
    dec_->max_pixels = opt_.max_pixels;  // libavcodec refuses larger frames later in the stream too
    dec_->pkt_timebase = vs->time_base;
    dec_->thread_count = 0;
    av_check(avcodec_open2(dec_.get(), codec, nullptr), "cannot open the video decoder", path);
    if (dec_->width <= 0 || dec_->height <= 0 || dec_->pix_fmt == AV_PIX_FMT_NONE) {
        throw InputError(squote(path) +
                         " is truncated or corrupt: no decodable video data (no frame size or pixel format)");
    }
    check_pixel_budget(path, dec_->width, dec_->height, opt_.max_pixels, "--max-pixels");

    info_.stream_index = vi;
    info_.width = dec_->width;
    info_.height = dec_->height;
    const AVPixFmtDescriptor* desc = av_pix_fmt_desc_get(dec_->pix_fmt);
    info_.pix_fmt = desc != nullptr ? desc->name : "?";
    info_.bits = desc != nullptr ? desc->comp[0].depth : 8;
    info_.tb_num = vs->time_base.num;
    info_.tb_den = vs->time_base.den;
    const AVRational fr = av_guess_frame_rate(fmt_.get(), vs, nullptr);
    info_.fps_num = fr.num;
    info_.fps_den = fr.den > 0 ? fr.den : 1;
    info_.sar_num = vs->codecpar->sample_aspect_ratio.num;
    info_.sar_den = vs->codecpar->sample_aspect_ratio.den > 0 ? vs->codecpar->sample_aspect_ratio.den : 1;
    info_.colorspace = vs->codecpar->color_space;
    info_.color_range = vs->codecpar->color_range;
    info_.color_primaries = vs->codecpar->color_primaries;
    info_.color_trc = vs->codecpar->color_trc;
    info_.chroma_location = vs->codecpar->chroma_location;
    info_.matrix = default_matrix(info_.colorspace, info_.height);
    info_.range = info_.color_range == AVCOL_RANGE_JPEG ? AVCOL_RANGE_JPEG : AVCOL_RANGE_MPEG;

    // Range in stream time base; --start/--end count from the stream's first timestamp.
    const int64_t t0 = vs->start_time != AV_NOPTS_VALUE ? vs->start_time : 0;
    const AVRational tb = vs->time_base;
    const auto to_tb = [&](double s) { return t0 + static_cast<int64_t>(std::llround(s * tb.den / tb.num)); };
    if (opt_.start_s < 0) {
        throw InputError("--start must be >= 0, got " + std::to_string(opt_.start_s));
    }
    if (opt_.end_s >= 0 && opt_.end_s <= opt_.start_s) {
        throw InputError("--end must be after --start (" + std::to_string(opt_.end_s) +
                         " <= " + std::to_string(opt_.start_s) + ")");
    }
    if (opt_.start_frame < 0) {
        throw InputError("start_frame must be >= 0, got " + std::to_string(opt_.start_frame));
    }
    if (opt_.end_s >= 0) {
        end_pts_ = to_tb(opt_.end_s);
    }
    if (opt_.start_s > 0) {
        begin_pts_ = to_tb(opt_.start_s);
    }
    pkt_ = make_packet();
    frame_ = make_frame();
    if (opt_.start_frame > 0) {
        seek_to_start_frame();
    } else if (opt_.start_s > 0) {
        seek_to_start_time();
    }

    double fps = fr.num > 0 ? av_q2d(fr) : 0.0;
    if (vs->nb_frames > 0) {
        info_.frames_estimate = vs->nb_frames;
    } else if (fps > 0 && fmt_->duration > 0) {
        info_.frames_estimate =
            static_cast<int64_t>(std::llround(fmt_->duration / double(AV_TIME_BASE) * fps));
    }
    if (info_.frames_estimate > 0 && fps > 0 && (opt_.start_s > 0 || opt_.end_s >= 0)) {
        const double total_s = info_.frames_estimate / fps;
        const double end_s = opt_.end_s >= 0 ? std::min(opt_.end_s, total_s) : total_s;
        info_.frames_estimate = std::max<int64_t>(0, std::llround((end_s - opt_.start_s) * fps));
    }
}

void VideoDecoder::seek_to_start_time() {
    const AVRational tb = fmt_->streams[info_.stream_index]->time_base;
    const int64_t ts = av_rescale_q(begin_pts_, tb, AV_TIME_BASE_Q);
    if (av_seek_frame(fmt_.get(), -1, ts, AVSEEK_FLAG_BACKWARD) < 0) {
        av_seek_frame(fmt_.get(), -1, fmt_->start_time != AV_NOPTS_VALUE ? fmt_->start_time : 0,
                      AVSEEK_FLAG_BACKWARD);  // not seekable: decode from the start and skip
    }
}

bool VideoDecoder::seek_lands(int64_t ts, int64_t key_pts, bool exact) {
    if (av_seek_frame(fmt_.get(), info_.stream_index, ts, AVSEEK_FLAG_BACKWARD) < 0) {
        return false;
    }
    for (;;) {
        if (av_read_frame(fmt_.get(), pkt_.get()) < 0) {
            return false;
        }
        if (pkt_->stream_index != info_.stream_index) {
            av_packet_unref(pkt_.get());
            continue;
        }
        const bool key = (pkt_->flags & AV_PKT_FLAG_KEY) != 0;
        const int64_t pts = pkt_->pts;
        av_packet_unref(pkt_.get());
        return key && pts != AV_NOPTS_VALUE && (exact ? pts == key_pts : pts <= key_pts);
    }
}

void VideoDecoder::seek_to_start_frame() {
    const SeekPoint sp =
        find_seek_point(fmt_.get(), info_.stream_index, opt_.start_frame, begin_pts_, end_pts_);
    if (!sp.ok && sp.frames >= 0) {
        throw_past_end(sp.frames);
    }
    if (!sp.ok) {
        rewind_and_count(sp.reason);
        return;
    }
    // Demuxers index keyframes by pts (Matroska) or by dts (MP4): the keyframe's pts, then its dts, each
    // accepted only when the first video packet after the seek is that keyframe; then any keyframe before.
    struct Try {
        int64_t ts;
        bool exact;
    };
    std::vector<Try> tries{{sp.key_pts, true}};
    const int64_t lowest = sp.key_dts != INT64_MIN ? std::min(sp.key_dts, sp.key_pts) : sp.key_pts;
    if (lowest < sp.key_pts) {
        tries.push_back({lowest, true});
    }
    tries.push_back({lowest, false});
    for (const Try& t : tries) {
        if (seek_lands(t.ts, sp.key_pts, t.exact)) {
            av_seek_frame(fmt_.get(), info_.stream_index, t.ts, AVSEEK_FLAG_BACKWARD);  // the same landing
            target_pts_ = sp.pts;
            packets_read_ = t.exact ? sp.key_packet : 0;
            count_packets_ = t.exact;
            return;
        }
    }
    rewind_and_count("the container does not seek to its keyframe");
}

void VideoDecoder::rewind_and_count(const std::string& why) {
    notes_.push_back(squote(path_) + ": no frame-accurate seek to frame " + std::to_string(opt_.start_frame) +
                     " (" + why + "): decoding from the start and dropping the frames before it");
    // Opened again, as a decoder without start_frame is (the file may not seek back); the old demuxer stays
    // alive for whoever holds format().
    AVFormatInputPtr fresh = open_input(path_);
    if (fresh->nb_streams != fmt_->nb_streams) {
        throw InputError(squote(path_) + " changed while it was read");
    }
    retired_.push_back(std::move(fmt_));
    fmt_ = std::move(fresh);
    if (begin_pts_ != INT64_MIN) {
        seek_to_start_time();
    }
    avcodec_flush_buffers(dec_.get());
    target_pts_ = INT64_MIN;
    skip_frames_ = opt_.start_frame;
    packets_read_ = 0;
    count_packets_ = true;
    flushed_ = false;
    done_ = false;
    past_end_ = false;
    last_pts_ = INT64_MIN;
    last_dur_ = 0;
}

void VideoDecoder::throw_past_end(int64_t frames) const {
    throw InputError(squote(path_) + ": start frame " + std::to_string(opt_.start_frame) +
                     " is past the end of the video (it has " + std::to_string(frames) + " frames" +
                     (begin_pts_ != INT64_MIN || end_pts_ != INT64_MAX ? " between --start and --end" : "") +
                     ")");
}

VideoDecoder::~VideoDecoder() = default;
VideoDecoder::VideoDecoder(VideoDecoder&&) noexcept = default;
VideoDecoder& VideoDecoder::operator=(VideoDecoder&&) noexcept = default;

void VideoDecoder::convert(const AVFrame* f, uint8_t* dst) {
    const bool deep = this->deep();
    SwsContext* prev = sws_.release();
    SwsContext* sws =
        sws_getCachedContext(prev, f->width, f->height, static_cast<AVPixelFormat>(f->format), f->width,
                             f->height, deep ? AV_PIX_FMT_RGB48LE : AV_PIX_FMT_RGB24,
                             SWS_BICUBIC | SWS_ACCURATE_RND | SWS_FULL_CHR_H_INT, nullptr, nullptr, nullptr);
    sws_.reset(sws);
    if (sws == nullptr) {
        throw InputError("cannot convert the pixel format of " + squote(path_) + " to RGB");
    }
    const int matrix =
        default_matrix(f->colorspace != AVCOL_SPC_UNSPECIFIED ? f->colorspace : info_.colorspace, f->height);
    const int range = f->color_range == AVCOL_RANGE_JPEG ||
                              (f->color_range == AVCOL_RANGE_UNSPECIFIED && info_.range == AVCOL_RANGE_JPEG)
                          ? 1
                          : 0;
    sws_setColorspaceDetails(sws, sws_getCoefficients(sws_matrix(matrix)), range,
                             sws_getCoefficients(SWS_CS_DEFAULT), 1, 0, 1 << 16, 1 << 16);
    uint8_t* planes[1] = {dst};
    const int strides[1] = {f->width * 3 * (deep ? 2 : 1)};
    sws_scale(sws, f->data, f->linesize, 0, f->height, planes, strides);
}

bool VideoDecoder::decode_one() {
    const AVStream* vs = fmt_->streams[info_.stream_index];
    while (!done_) {
        const int ret = avcodec_receive_frame(dec_.get(), frame_.get());
        if (ret == 0) {
            AVFrame* f = frame_.get();
            int64_t pts = f->best_effort_timestamp;
            if (pts == AV_NOPTS_VALUE) {
                pts = last_pts_ == INT64_MIN ? 0 : last_pts_ + std::max<int64_t>(last_dur_, 1);
            }
            int64_t dur = f->pkt_duration;
            if (dur <= 0 && info_.fps_num > 0) {
                dur = av_rescale_q(1, AVRational{info_.fps_den, info_.fps_num}, vs->time_base);
            }
            if (target_pts_ != INT64_MIN && frames_read_ == 0 && pending_.empty() && pts != target_pts_) {
                // After a seek, before start_frame: dropped unchecked (an open GOP's leading frames miss
                // their references); a later frame first means the seek missed it.
                ++frames_decoded_;
                av_frame_unref(f);
                if (pts > target_pts_) {
                    rewind_and_count("the first frame after the seek is not the frame");
                }
                continue;
            }
            ++frames_decoded_;
            if (pts < begin_pts_) {
                av_frame_unref(f);
                continue;
            }
            if (pts >= end_pts_) {
                av_frame_unref(f);
                past_end_ = true;
                done_ = true;
                break;
            }
            if (skip_frames_ > 0) {  // start_frame without a seek
                --skip_frames_;
                av_frame_unref(f);
                continue;
            }
            if (f->width != info_.width || f->height != info_.height) {
                av_frame_unref(f);
                throw InputError(squote(path_) + ": the frame size changes mid-stream (" +
                                 std::to_string(f->width) + "x" + std::to_string(f->height) + " at frame " +
                                 std::to_string(frames_read_) + "), which is not supported");
            }
            at::Tensor t = at::empty({info_.height, info_.width, 3}, deep() ? at::kShort : at::kByte);
            convert(f, static_cast<uint8_t*>(t.data_ptr()));
            av_frame_unref(f);
            pending_.push_back(std::move(t));
            pending_pts_.push_back(pts);
            pending_dur_.push_back(dur);
            last_pts_ = pts;
            last_dur_ = dur;
            return true;
        }
        if (ret == AVERROR_EOF) {
            done_ = true;
            break;
        }
        if (ret != AVERROR(EAGAIN)) {
            throw InputError(squote(path_) + " is corrupt: cannot decode video frame " +
                             std::to_string(frames_decoded_) + " (" + av_error_string(ret) + ")");
        }
        if (flushed_) {  // EAGAIN after the flush packet should not happen; treat as the end
            done_ = true;
            break;
        }
        const int r = av_read_frame(fmt_.get(), pkt_.get());
        if (r == AVERROR_EOF) {
            av_check(avcodec_send_packet(dec_.get(), nullptr), "cannot flush the video decoder", path_);
            flushed_ = true;
            continue;
        }
        if (r < 0) {
            throw InputError(squote(path_) + " is truncated or corrupt after video frame " +
                             std::to_string(frames_decoded_) + " (" + av_error_string(r) + ")");
        }
        if ((pkt_->flags & AV_PKT_FLAG_CORRUPT) != 0) {
            av_packet_unref(pkt_.get());
            throw InputError(squote(path_) + " is truncated or corrupt after video frame " +
                             std::to_string(frames_decoded_) + " (a packet is incomplete)");
        }
        if (pkt_->stream_index == info_.stream_index) {
            ++packets_read_;
            const int s = avcodec_send_packet(dec_.get(), pkt_.get());
            av_packet_unref(pkt_.get());
            if (s < 0 && s != AVERROR(EAGAIN)) {
                throw InputError(squote(path_) + " is corrupt: bad video data after frame " +
                                 std::to_string(frames_decoded_) + " (" + av_error_string(s) + ")");
            }
        } else {
            if (sink_) {
                const AVRational otb = fmt_->streams[pkt_->stream_index]->time_base;
                const int64_t ts = pkt_->pts != AV_NOPTS_VALUE ? pkt_->pts : pkt_->dts;
                bool keep = true;
                if (ts != AV_NOPTS_VALUE) {
                    if (begin_pts_ != INT64_MIN && ts < av_rescale_q(begin_pts_, vs->time_base, otb)) {
                        keep = false;
                    }
                    if (end_pts_ != INT64_MAX && ts >= av_rescale_q(end_pts_, vs->time_base, otb)) {
                        keep = false;
                    }
                }
                if (keep) {
                    sink_(pkt_.get());
                }
            }
            av_packet_unref(pkt_.get());
        }
    }
    if (skip_frames_ > 0) {
        throw_past_end(opt_.start_frame - skip_frames_);
    }
    if (frames_read_ == 0 && pending_.empty()) {
        throw InputError(begin_pts_ != INT64_MIN || end_pts_ != INT64_MAX
                             ? squote(path_) + " has no video frames between --start and --end"
                             : squote(path_) + " contains no video frames");
    }
    if (!past_end_ && begin_pts_ == INT64_MIN && count_packets_ && vs->nb_frames > 0 &&
        packets_read_ < vs->nb_frames) {
        throw InputError(squote(path_) + " is truncated or corrupt: its header lists " +
                         std::to_string(vs->nb_frames) + " video frames, the file holds only " +
                         std::to_string(packets_read_));
    }
    return false;
}

FrameBatch VideoDecoder::read(int64_t max_frames) {
    TORCH_CHECK(max_frames >= 1, "VideoDecoder::read: max_frames must be >= 1");
    while (static_cast<int64_t>(pending_.size()) < max_frames && decode_one()) {
    }
    FrameBatch b;
    if (pending_.empty()) {
        b.rgb = at::empty({0, info_.height, info_.width, 3}, opt_.rgb24 ? at::kByte : at::kFloat);
        return b;
    }
    at::Tensor s = at::stack(pending_);  // [n, H, W, 3] uint8 or int16 bit pattern of uint16
    if (opt_.rgb24) {
        b.rgb = s;
    } else if (deep()) {
        b.rgb = s.to(at::kInt).bitwise_and(0xFFFF).to(at::kFloat).div_(65535.0f);
    } else {
        b.rgb = s.to(at::kFloat).div_(255.0f);
    }
    b.pts = std::move(pending_pts_);
    b.duration = std::move(pending_dur_);
    frames_read_ += static_cast<int64_t>(pending_.size());
    pending_.clear();
    pending_pts_.clear();
    pending_dur_.clear();
    return b;
}

}  // namespace flashvsr::io
