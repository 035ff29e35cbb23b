#include "csrc/io/video_encoder.h"

#include "csrc/io/colorspace.h"

#include <flashvsr/errors.h>

#include <ATen/ATen.h>

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/opt.h>
#include <libavutil/pixdesc.h>
#include <libswscale/swscale.h>
}

#include <unistd.h>

#include <filesystem>
#include <vector>

namespace flashvsr::io {
namespace fs = std::filesystem;
namespace {

std::string squote(const std::string& p) { return "'" + p + "'"; }

bool supports(const AVCodec* enc, AVPixelFormat f) {
    if (enc->pix_fmts == nullptr) {
        return true;
    }
    for (const AVPixelFormat* p = enc->pix_fmts; *p != AV_PIX_FMT_NONE; ++p) {
        if (*p == f) {
            return true;
        }
    }
    return false;
}

std::string supported_list(const AVCodec* enc) {
    std::string s;
    if (enc->pix_fmts == nullptr) {
        return "any";
    }
    for (const AVPixelFormat* p = enc->pix_fmts; *p != AV_PIX_FMT_NONE; ++p) {
        if (!s.empty()) {
            s += ", ";
        }
        s += av_get_pix_fmt_name(*p);
    }
    return s;
}

const char* type_name(AVMediaType t) {
    const char* n = av_get_media_type_string(t);
    return n != nullptr ? n : "unknown";
}

}  // namespace

std::string partial_path(const std::string& path) {
    const fs::path p(path);
    return (p.parent_path() / (p.stem().string() + ".partial" + p.extension().string())).string();
}

VideoEncoder::VideoEncoder(const std::string& path, int width, int height, const VideoStreamInfo& source,
                           const AVFormatContext* copy_from, int64_t offset_pts,
                           const EncoderOptions& options)
    : path_(path), opt_(options), src_(source), in_(copy_from), offset_pts_(offset_pts) {
    std::error_code fec;
    if (fs::is_directory(path, fec)) {
        throw InputError("the output " + squote(path) + " is a folder");
    }
    const fs::path p(path);
    tmp_ = (p.parent_path() /
            (p.stem().string() + ".tmp-" + std::to_string(::getpid()) + p.extension().string()))
               .string();

    AVFormatContext* raw = nullptr;
    if (avformat_alloc_output_context2(&raw, nullptr, nullptr, path.c_str()) < 0 || raw == nullptr) {
        throw InputError("cannot choose a container for " + squote(path) +
                         " from its extension (use e.g. .mp4, .mkv, .mov)");
    }
    oc_.reset(raw);

    const AVCodec* enc = avcodec_find_encoder_by_name(opt_.codec.c_str());
    if (enc == nullptr) {
        throw InputError("unknown encoder '" + opt_.codec + "' (see `ffmpeg -encoders`)");
    }
    if (enc->type != AVMEDIA_TYPE_VIDEO) {
        throw InputError("'" + opt_.codec + "' is not a video encoder");
    }
    if (avformat_query_codec(oc_->oformat, enc->id, FF_COMPLIANCE_NORMAL) == 0) {
        throw InputError("the " + std::string(oc_->oformat->name) + " container of " + squote(path) +
                         " cannot hold " + opt_.codec + " video");
    }

    AVPixelFormat pf = AV_PIX_FMT_NONE;
    if (!opt_.pix_fmt.empty()) {
        pf = av_get_pix_fmt(opt_.pix_fmt.c_str());
        if (pf == AV_PIX_FMT_NONE) {
            throw InputError("unknown pixel format '" + opt_.pix_fmt + "'");
        }
        if (!supports(enc, pf)) {
            throw InputError("encoder " + opt_.codec + " does not support pixel format " + opt_.pix_fmt +
                             " (it supports: " + supported_list(enc) + ")");
        }
    } else {
        // yuv420p (10-bit sources: yuv420p10le); 4:2:0 needs even sizes, so an odd one gets 4:4:4 first.
        std::vector<AVPixelFormat> wanted;
        if (width % 2 != 0 || height % 2 != 0) {
            if (src_.bits > 8) {
                wanted.push_back(AV_PIX_FMT_YUV444P10LE);
            }
            wanted.push_back(AV_PIX_FMT_YUV444P);
        }
        if (src_.bits > 8) {
            wanted.push_back(AV_PIX_FMT_YUV420P10LE);
        }
        wanted.push_back(AV_PIX_FMT_YUV420P);
        for (const AVPixelFormat w : wanted) {
            if (supports(enc, w)) {
                pf = w;
                break;
            }
        }
        if (pf == AV_PIX_FMT_NONE) {
            pf = enc->pix_fmts[0];  // non-null here: supports() is true for every format when it is null
        }
    }
    pix_fmt_name_ = av_get_pix_fmt_name(pf);
    const AVPixFmtDescriptor* desc = av_pix_fmt_desc_get(pf);
    deep_ = desc->comp[0].depth > 8;
    const bool rgb_out = (desc->flags & AV_PIX_FMT_FLAG_RGB) != 0;

    ec_.reset(avcodec_alloc_context3(enc));
    if (!ec_) {
        throw InputError("out of memory creating the encoder");
    }
    AVCodecContext* ec = ec_.get();
    ec->width = width;
    ec->height = height;
    ec->pix_fmt = pf;
    ec->time_base = AVRational{src_.tb_num, src_.tb_den};
    if (src_.fps_num > 0) {
        ec->framerate = AVRational{src_.fps_num, src_.fps_den};
    }
    ec->sample_aspect_ratio = AVRational{src_.sar_num, src_.sar_den};
    ec->colorspace = rgb_out ? AVCOL_SPC_RGB : static_cast<AVColorSpace>(src_.matrix);
    ec->color_range = rgb_out ? AVCOL_RANGE_JPEG : static_cast<AVColorRange>(src_.range);
    ec->color_primaries = static_cast<AVColorPrimaries>(src_.color_primaries);
    ec->color_trc = static_cast<AVColorTransferCharacteristic>(src_.color_trc);
    ec->chroma_sample_location = static_cast<AVChromaLocation>(src_.chroma_location);
    ec->thread_count = 0;
    if ((oc_->oformat->flags & AVFMT_GLOBALHEADER) != 0) {
        ec->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    }
    if (opt_.crf >= 0 && ec->priv_data != nullptr &&
        av_opt_find(ec->priv_data, "crf", nullptr, 0, 0) != nullptr) {
        av_opt_set_int(ec->priv_data, "crf", opt_.crf, 0);
    }
    for (const auto& [k, v] : opt_.private_options) {
        const int r = av_opt_set(ec, k.c_str(), v.c_str(), AV_OPT_SEARCH_CHILDREN);
        if (r < 0) {
            throw InputError("encoder " + opt_.codec + " rejects option " + k + "=" + v + " (" +
                             av_error_string(r) + ")");
        }
    }
    const int oret = avcodec_open2(ec, enc, nullptr);
    if (oret < 0) {
        throw InputError("cannot open encoder " + opt_.codec + " for " + std::to_string(width) + "x" +
                         std::to_string(height) + " " + pix_fmt_name_ + " (" + av_error_string(oret) + ")");
    }

    AVStream* ost = avformat_new_stream(oc_.get(), nullptr);
    if (ost == nullptr) {
        throw InputError("out of memory creating the output stream");
    }
    av_check(avcodec_parameters_from_context(ost->codecpar, ec), "cannot set the output stream", path);
    ost->time_base = ec->time_base;
    if (src_.fps_num > 0) {
        ost->avg_frame_rate = ec->framerate;
    }
    if (enc->id == AV_CODEC_ID_HEVC && std::string(oc_->oformat->name).find("mp4") != std::string::npos) {
        ost->codecpar->codec_tag = MKTAG('h', 'v', 'c', '1');
    }
    video_index_ = ost->index;

    // Streams, chapters and metadata of the source.
    if (in_ != nullptr) {
        const AVRational vtb{src_.tb_num, src_.tb_den};
        map_.assign(in_->nb_streams, -1);
        for (unsigned i = 0; i < in_->nb_streams; ++i) {
            const AVStream* is = in_->streams[i];
            if (static_cast<int>(i) == src_.stream_index) {
                av_dict_copy(&ost->metadata, is->metadata, 0);
                av_dict_set(&ost->metadata, "encoder", nullptr, 0);
                ost->disposition = is->disposition;
                continue;
            }
            const AVMediaType t = is->codecpar->codec_type;
            if ((t == AVMEDIA_TYPE_AUDIO && !opt_.copy_audio) ||
                (t == AVMEDIA_TYPE_SUBTITLE && !opt_.copy_subtitles)) {
                continue;
            }
            if (t != AVMEDIA_TYPE_AUDIO && t != AVMEDIA_TYPE_SUBTITLE) {
                warnings_.push_back("stream " + std::to_string(i) + " (" + type_name(t) + ") is not copied");
                continue;
            }
            if ((is->disposition & AV_DISPOSITION_ATTACHED_PIC) != 0) {
                continue;
            }
            const char* cname = avcodec_get_name(is->codecpar->codec_id);
            if (avformat_query_codec(oc_->oformat, is->codecpar->codec_id, FF_COMPLIANCE_NORMAL) != 1) {
                warnings_.push_back("stream " + std::to_string(i) + " (" + type_name(t) + ", " + cname +
                                    ") is not copied: the " + oc_->oformat->name +
                                    " container cannot hold it");
                continue;
            }
            AVStream* os = avformat_new_stream(oc_.get(), nullptr);
            if (os == nullptr) {
                throw InputError("out of memory creating an output stream");
            }
            av_check(avcodec_parameters_copy(os->codecpar, is->codecpar), "cannot copy stream parameters",
                     path);
            os->codecpar->codec_tag = 0;
            os->time_base = is->time_base;
            av_dict_copy(&os->metadata, is->metadata, 0);
            os->disposition = is->disposition;
            map_[i] = os->index;
        }
        av_dict_copy(&oc_->metadata, in_->metadata, 0);
        av_dict_set(&oc_->metadata, "encoder", nullptr, 0);
        if (in_->nb_chapters > 0) {
            auto** chapters = static_cast<AVChapter**>(av_calloc(in_->nb_chapters, sizeof(AVChapter*)));
            if (chapters == nullptr) {
                throw InputError("out of memory copying chapters");
            }
            oc_->chapters = chapters;
            unsigned n = 0;
            for (unsigned i = 0; i < in_->nb_chapters; ++i) {
                const AVChapter* ic = in_->chapters[i];
                const int64_t off = av_rescale_q(offset_pts_, vtb, ic->time_base);
                if (ic->end - off <= 0) {
                    continue;
                }
                auto* c = static_cast<AVChapter*>(av_mallocz(sizeof(AVChapter)));
                if (c == nullptr) {
                    throw InputError("out of memory copying chapters");
                }
                c->id = ic->id;
                c->time_base = ic->time_base;
                c->start = std::max<int64_t>(0, ic->start - off);
                c->end = ic->end - off;
                av_dict_copy(&c->metadata, ic->metadata, 0);
                chapters[n++] = c;
                oc_->nb_chapters = n;
            }
        }
    }

    // Everything that can fail before the file exists; after avio_open only the header can fail (handled).
    frame_ = make_frame();
    frame_->format = pf;
    frame_->width = width;
    frame_->height = height;
    av_check(av_frame_get_buffer(frame_.get(), 0), "cannot allocate an output frame", path);
    // Zeroed once: encoders may read the row padding past the width (libx264 does), which sws_scale never
    // writes; uninitialized there, the bitstream would depend on the heap's old contents.
    for (int i = 0; i < AV_NUM_DATA_POINTERS && frame_->buf[i]; ++i) {
        std::memset(frame_->buf[i]->data, 0, frame_->buf[i]->size);
    }
    pkt_ = make_packet();

    SwsContext* sws =
        sws_getContext(width, height, deep_ ? AV_PIX_FMT_RGB48LE : AV_PIX_FMT_RGB24, width, height, pf,
                       SWS_BICUBIC | SWS_ACCURATE_RND | SWS_FULL_CHR_H_INT, nullptr, nullptr, nullptr);
    if (sws == nullptr) {
        throw InputError("cannot convert RGB to " + pix_fmt_name_);
    }
    sws_.reset(sws);
    if (!rgb_out) {
        sws_setColorspaceDetails(sws, sws_getCoefficients(SWS_CS_DEFAULT), 1,
                                 sws_getCoefficients(sws_matrix(src_.matrix)),
                                 src_.range == AVCOL_RANGE_JPEG ? 1 : 0, 0, 1 << 16, 1 << 16);
    }
    if ((oc_->oformat->flags & AVFMT_NOFILE) == 0) {
        const int r = avio_open(&oc_->pb, tmp_.c_str(), AVIO_FLAG_WRITE);
        if (r < 0) {
            throw InputError("cannot write the output " + squote(path) + " (" + av_error_string(r) + ")");
        }
    }
    const int h = avformat_write_header(oc_.get(), nullptr);
    if (h < 0) {
        oc_.reset();
        fs::remove(tmp_, fec);
        throw InputError("cannot start the output " + squote(path) + " (" + av_error_string(h) + ")");
    }
}

VideoEncoder::~VideoEncoder() {
    if (!finished_ && oc_) {
        oc_.reset();  // closes the temporary file
        std::error_code ec;
        fs::remove(tmp_, ec);
    }
}
VideoEncoder::VideoEncoder(VideoEncoder&&) noexcept = default;
VideoEncoder& VideoEncoder::operator=(VideoEncoder&&) noexcept = default;

void VideoEncoder::drain(bool flush) {
    AVStream* ost = oc_->streams[video_index_];
    if (flush) {
        avcodec_send_frame(ec_.get(), nullptr);
    }
    while (true) {
        const int r = avcodec_receive_packet(ec_.get(), pkt_.get());
        if (r == AVERROR(EAGAIN) || r == AVERROR_EOF) {
            return;
        }
        av_check(r, "video encoding failed", path_);
        av_packet_rescale_ts(pkt_.get(), ec_->time_base, ost->time_base);
        pkt_->stream_index = video_index_;
        av_check(av_interleaved_write_frame(oc_.get(), pkt_.get()), "cannot write the output", path_);
    }
}

void VideoEncoder::write(const at::Tensor& rgb, const std::vector<int64_t>& pts,
                         const std::vector<int64_t>& duration) {
    TORCH_CHECK(rgb.dim() == 4 && rgb.size(3) == 3 && rgb.size(1) == ec_->height && rgb.size(2) == ec_->width,
                "VideoEncoder::write: expected [n, ", ec_->height, ", ", ec_->width, ", 3], got ",
                rgb.sizes());
    TORCH_CHECK(static_cast<int64_t>(pts.size()) == rgb.size(0), "VideoEncoder::write: one pts per frame");
    TORCH_CHECK(!finished_, "VideoEncoder::write after finish");
    const at::Tensor x = rgb.to(at::kFloat).clamp(0.0, 1.0);
    // float [n, H, W, 3] -> packed RGB24 or RGB48LE (the int16 bit pattern of uint16).
    const at::Tensor packed = deep_ ? x.mul(65535.0).round_().to(at::kInt).to(at::kShort).contiguous()
                                    : x.mul(255.0).round_().to(at::kByte).contiguous();
    const int row = ec_->width * 3 * (deep_ ? 2 : 1);
    for (int64_t i = 0; i < rgb.size(0); ++i) {
        av_check(av_frame_make_writable(frame_.get()), "cannot reuse the output frame", path_);
        const uint8_t* src[1] = {static_cast<const uint8_t*>(packed[i].data_ptr())};
        const int stride[1] = {row};
        sws_scale(sws_.get(), src, stride, 0, ec_->height, frame_->data, frame_->linesize);
        frame_->pts = pts[i] - offset_pts_;
        frame_->pkt_duration = i < static_cast<int64_t>(duration.size()) ? duration[i] : 0;
        frame_->color_range = ec_->color_range;
        frame_->colorspace = ec_->colorspace;
        frame_->color_primaries = ec_->color_primaries;
        frame_->color_trc = ec_->color_trc;
        av_check(avcodec_send_frame(ec_.get(), frame_.get()), "video encoding failed", path_);
        drain(false);
        ++frames_written_;
    }
}

void VideoEncoder::write_packet(const AVPacket* pkt) {
    if (finished_ || pkt->stream_index < 0 || pkt->stream_index >= static_cast<int>(map_.size())) {
        return;
    }
    const int o = map_[pkt->stream_index];
    if (o < 0) {
        return;
    }
    AVPacketPtr cp = make_packet();
    av_check(av_packet_ref(cp.get(), pkt), "cannot copy a packet", path_);
    const AVRational itb = in_->streams[pkt->stream_index]->time_base;
    const int64_t off = av_rescale_q(offset_pts_, AVRational{src_.tb_num, src_.tb_den}, itb);
    if (cp->pts != AV_NOPTS_VALUE) {
        cp->pts -= off;
    }
    if (cp->dts != AV_NOPTS_VALUE) {
        cp->dts -= off;
    }
    av_packet_rescale_ts(cp.get(), itb, oc_->streams[o]->time_base);
    cp->stream_index = o;
    cp->pos = -1;
    av_check(av_interleaved_write_frame(oc_.get(), cp.get()), "cannot write a copied packet", path_);
}

std::string VideoEncoder::close_and_rename(const std::string& dest) {
    TORCH_CHECK(!finished_, "VideoEncoder finished twice");
    drain(true);
    av_check(av_write_trailer(oc_.get()), "cannot finish the output", path_);
    oc_.reset();
    finished_ = true;
    std::error_code ec;
    fs::rename(tmp_, dest, ec);
    if (ec) {
        fs::remove(tmp_, ec);
        throw InputError("cannot rename the finished output to " + squote(dest) + ": " + ec.message());
    }
    return dest;
}

std::string VideoEncoder::finish() { return close_and_rename(path_); }

std::string VideoEncoder::finish_partial() { return close_and_rename(partial_path(path_)); }

}  // namespace flashvsr::io
