#include "csrc/io/segment_concat.h"

#include <flashvsr/flashvsr.h>

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/mathematics.h>
}

#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <utility>

#include "csrc/io/av_ptr.h"

namespace flashvsr::io {
namespace fs = std::filesystem;
namespace {

std::string squote(const std::string& p) { return "'" + p + "'"; }

AVFormatInputPtr open_input(const std::string& path, const std::string& what) {
    std::error_code ec;
    if (!fs::is_regular_file(path, ec)) {
        throw InputError(what + " " + squote(path) + ": no such file");
    }
    AVFormatContext* raw = nullptr;
    const int r = avformat_open_input(&raw, path.c_str(), nullptr, nullptr);
    if (r < 0) {
        throw InputError(what + " " + squote(path) + " is not readable (" + av_error_string(r) + ")");
    }
    AVFormatInputPtr f(raw);
    av_check(avformat_find_stream_info(f.get(), nullptr), "cannot read the stream information", path);
    return f;
}

int video_stream(AVFormatContext* f, const std::string& what, const std::string& path) {
    const int vi = av_find_best_stream(f, AVMEDIA_TYPE_VIDEO, -1, -1, nullptr, 0);
    if (vi < 0) {
        throw InputError(what + " " + squote(path) + " has no video stream");
    }
    return vi;
}

bool same_codec(const AVCodecParameters* a, const AVCodecParameters* b) {
    return a->codec_id == b->codec_id && a->width == b->width && a->height == b->height &&
           a->format == b->format && a->extradata_size == b->extradata_size &&
           (a->extradata_size == 0 || std::memcmp(a->extradata, b->extradata, a->extradata_size) == 0);
}

/// A packet's decode time (dts, else pts) in `tb`; AV_NOPTS_VALUE when it has neither.
int64_t packet_time(const AVPacket* p) { return p->dts != AV_NOPTS_VALUE ? p->dts : p->pts; }

/// The video packets of the segments, one file after the other.
class SegmentPackets {
  public:
    SegmentPackets(const std::vector<std::string>& files, const AVCodecParameters* ref)
        : files_(files), ref_(ref) {}

    /// The next packet into `pkt` (its own time base in tb()); false after the last segment.
    bool next(AVPacket* pkt) {
        for (;;) {
            if (!in_) {
                if (next_file_ >= files_.size()) {
                    return false;
                }
                open(next_file_++);
            }
            const int r = av_read_frame(in_.get(), pkt);
            if (r == AVERROR_EOF) {
                in_.reset();
                continue;
            }
            av_check(r, "cannot read the segment", files_[next_file_ - 1]);
            if (pkt->stream_index == vi_) {
                return true;
            }
            av_packet_unref(pkt);
        }
    }
    AVRational tb() const { return in_->streams[vi_]->time_base; }
    const std::string& file() const { return files_[next_file_ - 1]; }
    bool first_of_file() { return std::exchange(first_, false); }

  private:
    void open(size_t i) {
        in_ = open_input(files_[i], "segment");
        vi_ = video_stream(in_.get(), "segment", files_[i]);
        if (!same_codec(in_->streams[vi_]->codecpar, ref_)) {
            throw InputError(
                "segment " + squote(files_[i]) +
                " differs from the first segment in codec, size, "
                "pixel format or codec headers: segments must come from the same encoder settings");
        }
        first_ = true;
    }

    const std::vector<std::string>& files_;
    const AVCodecParameters* ref_;
    AVFormatInputPtr in_;
    int vi_ = -1;
    size_t next_file_ = 0;
    bool first_ = false;
};

/// Decode timestamps for a joined video stream, from its presentation timestamps: FFmpeg's rule for streams
/// that store none (libavformat's muxer fallback): dts = the smallest of the last delay + 1 pts, the first
/// packet's missing predecessors extrapolated back by its duration. Containers such as Matroska store no dts
/// (their demuxers leave the first packets' dts unset), and the segments' own dts restart at each join, so
/// the joined stream's dts are computed once, continuously. Always <= pts; increasing when `delay` is at
/// least the stream's reordering depth.
class DtsFromPts {
  public:
    explicit DtsFromPts(int delay) : buf_(static_cast<size_t>(std::max(delay, 0)) + 1, AV_NOPTS_VALUE) {}
    int64_t next(int64_t pts, int64_t duration) {
        const int delay = static_cast<int>(buf_.size()) - 1;
        buf_[0] = pts;
        for (int i = 1; i <= delay && buf_[static_cast<size_t>(i)] == AV_NOPTS_VALUE; ++i) {
            buf_[static_cast<size_t>(i)] = pts + (i - delay - 1) * std::max<int64_t>(duration, 1);
        }
        for (size_t i = 0; i + 1 < buf_.size() && buf_[i] > buf_[i + 1]; ++i) {
            std::swap(buf_[i], buf_[i + 1]);
        }
        return buf_[0];
    }

  private:
    std::vector<int64_t> buf_;
};

/// Removes the temporary output unless released.
struct TmpGuard {
    std::string path;
    bool keep = false;
    ~TmpGuard() {
        std::error_code ec;
        if (!keep) {
            fs::remove(path, ec);
        }
    }
};

}  // namespace

ConcatResult concat_segments(const std::vector<std::string>& segments, const std::string& source,
                             const std::string& output, const ConcatOptions& options) {
    if (segments.empty()) {
        throw InputError("concat_segments: no segments given");
    }
    std::error_code fec;
    if (fs::exists(output, fec) && !options.overwrite) {
        throw InputError("the output " + squote(output) + " exists (use --overwrite to replace it)");
    }
    ConcatResult res;
    // The first segment's video stream defines the output's.
    const AVFormatInputPtr first = open_input(segments[0], "segment");
    const AVStream* fvs = first->streams[video_stream(first.get(), "segment", segments[0])];
    AVFormatInputPtr src;
    int src_video = -1;
    if (!source.empty()) {
        src = open_input(source, "source");
        src_video = video_stream(src.get(), "source", source);
    }

    const fs::path p(output);
    TmpGuard tmp{(p.parent_path() /
                  (p.stem().string() + ".tmp-" + std::to_string(::getpid()) + p.extension().string()))
                     .string()};
    AVFormatContext* raw = nullptr;
    if (avformat_alloc_output_context2(&raw, nullptr, nullptr, output.c_str()) < 0 || raw == nullptr) {
        throw InputError("cannot choose a container for " + squote(output) + " from its extension");
    }
    AVFormatOutputPtr oc(raw);
    if (avformat_query_codec(oc->oformat, fvs->codecpar->codec_id, FF_COMPLIANCE_NORMAL) != 1) {
        throw InputError(std::string("the ") + oc->oformat->name + " container of " + squote(output) +
                         " cannot hold " + avcodec_get_name(fvs->codecpar->codec_id) + " video");
    }
    AVStream* ovs = avformat_new_stream(oc.get(), nullptr);
    if (ovs == nullptr) {
        throw InputError("out of memory creating the output stream");
    }
    av_check(avcodec_parameters_copy(ovs->codecpar, fvs->codecpar), "cannot copy the video parameters",
             output);
    ovs->codecpar->codec_tag = 0;
    if (fvs->codecpar->codec_id == AV_CODEC_ID_HEVC &&
        std::string(oc->oformat->name).find("mp4") != std::string::npos) {
        ovs->codecpar->codec_tag = MKTAG('h', 'v', 'c', '1');
    }
    ovs->time_base = fvs->time_base;
    ovs->avg_frame_rate = fvs->avg_frame_rate;

    // The source's other streams, chapters and metadata (as io::VideoEncoder copies them).
    std::vector<int> map;
    if (src) {
        const AVStream* svs = src->streams[src_video];
        av_dict_copy(&ovs->metadata, svs->metadata, 0);
        av_dict_set(&ovs->metadata, "encoder", nullptr, 0);
        ovs->disposition = svs->disposition;
        if (svs->avg_frame_rate.num > 0) {
            ovs->avg_frame_rate = svs->avg_frame_rate;
        }
        map.assign(src->nb_streams, -1);
        for (unsigned i = 0; i < src->nb_streams; ++i) {
            const AVStream* is = src->streams[i];
            const AVMediaType t = is->codecpar->codec_type;
            if (static_cast<int>(i) == src_video || (is->disposition & AV_DISPOSITION_ATTACHED_PIC) != 0) {
                continue;
            }
            if ((t == AVMEDIA_TYPE_AUDIO && !options.copy_audio) ||
                (t == AVMEDIA_TYPE_SUBTITLE && !options.copy_subtitles)) {
                continue;
            }
            const char* tname = av_get_media_type_string(t);
            if (t != AVMEDIA_TYPE_AUDIO && t != AVMEDIA_TYPE_SUBTITLE) {
                res.warnings.push_back("stream " + std::to_string(i) + " (" + (tname ? tname : "unknown") +
                                       ") is not copied");
                continue;
            }
            if (avformat_query_codec(oc->oformat, is->codecpar->codec_id, FF_COMPLIANCE_NORMAL) != 1) {
                res.warnings.push_back("stream " + std::to_string(i) + " (" + tname + ", " +
                                       avcodec_get_name(is->codecpar->codec_id) + ") is not copied: the " +
                                       oc->oformat->name + " container cannot hold it");
                continue;
            }
            AVStream* os = avformat_new_stream(oc.get(), nullptr);
            if (os == nullptr) {
                throw InputError("out of memory creating an output stream");
            }
            av_check(avcodec_parameters_copy(os->codecpar, is->codecpar), "cannot copy stream parameters",
                     output);
            os->codecpar->codec_tag = 0;
            os->time_base = is->time_base;
            av_dict_copy(&os->metadata, is->metadata, 0);
            os->disposition = is->disposition;
            map[i] = os->index;
        }
        av_dict_copy(&oc->metadata, src->metadata, 0);
        av_dict_set(&oc->metadata, "encoder", nullptr, 0);
        if (src->nb_chapters > 0) {
            auto** chapters = static_cast<AVChapter**>(av_calloc(src->nb_chapters, sizeof(AVChapter*)));
            if (chapters == nullptr) {
                throw InputError("out of memory copying chapters");
            }
            oc->chapters = chapters;
            for (unsigned i = 0; i < src->nb_chapters; ++i) {
                const AVChapter* ic = src->chapters[i];
                auto* c = static_cast<AVChapter*>(av_mallocz(sizeof(AVChapter)));
                if (c == nullptr) {
                    throw InputError("out of memory copying chapters");
                }
                c->id = ic->id;
                c->time_base = ic->time_base;
                c->start = ic->start;
                c->end = ic->end;
                av_dict_copy(&c->metadata, ic->metadata, 0);
                chapters[i] = c;
                oc->nb_chapters = i + 1;
            }
        }
    }

    if ((oc->oformat->flags & AVFMT_NOFILE) == 0) {
        const int r = avio_open(&oc->pb, tmp.path.c_str(), AVIO_FLAG_WRITE);
        if (r < 0) {
            throw InputError("cannot write the output " + squote(output) + " (" + av_error_string(r) + ")");
        }
    }
    av_check(avformat_write_header(oc.get(), nullptr), "cannot start the output", output);

    // Merge by time: the next video packet against the next packet of a copied stream, earliest first.
    SegmentPackets video(segments, fvs->codecpar);
    AVPacketPtr vp = make_packet(), sp = make_packet();
    bool have_v = video.next(vp.get()), have_s = false;
    AVRational vtb = have_v ? video.tb() : ovs->time_base;
    int64_t last_vdts = AV_NOPTS_VALUE;  // in the output video time base
    int64_t last_vpts = AV_NOPTS_VALUE;  // the latest pts so far
    DtsFromPts dts(fvs->codecpar->video_delay);
    auto next_source = [&] {
        while (src) {
            const int r = av_read_frame(src.get(), sp.get());
            if (r == AVERROR_EOF) {
                return false;
            }
            av_check(r, "cannot read the source", source);
            if (sp->stream_index < static_cast<int>(map.size()) && map[sp->stream_index] >= 0) {
                return true;
            }
            av_packet_unref(sp.get());
        }
        return false;
    };
    have_s = next_source();
    while (have_v || have_s) {
        bool take_v = have_v;
        if (have_v && have_s) {
            const int64_t tv = packet_time(vp.get()), ts = packet_time(sp.get());
            const AVRational stb = src->streams[sp->stream_index]->time_base;
            take_v = tv == AV_NOPTS_VALUE || (ts != AV_NOPTS_VALUE && av_compare_ts(tv, vtb, ts, stb) <= 0);
        }
        if (take_v) {
            const bool join = video.first_of_file();
            av_packet_rescale_ts(vp.get(), vtb, ovs->time_base);
            if (vp->pts == AV_NOPTS_VALUE) {
                throw InputError("segment " + squote(video.file()) +
                                 " has a video packet without a timestamp");
            }
            if (join && last_vpts != AV_NOPTS_VALUE && vp->pts <= last_vpts) {
                throw InputError("segment " + squote(video.file()) +
                                 " starts before the end of the previous one "
                                 "(its timestamps overlap): segments must hold consecutive frames");
            }
            vp->dts = dts.next(vp->pts, vp->duration);
            if (last_vdts != AV_NOPTS_VALUE && vp->dts <= last_vdts) {
                throw InputError("segment " + squote(video.file()) +
                                 ": its frames are reordered deeper than the "
                                 "stream declares (video_delay " +
                                 std::to_string(fvs->codecpar->video_delay) + ")");
            }
            last_vdts = vp->dts;
            last_vpts = std::max(last_vpts, vp->pts);  // (AV_NOPTS_VALUE is INT64_MIN)
            vp->stream_index = ovs->index;
            vp->pos = -1;
            av_check(av_interleaved_write_frame(oc.get(), vp.get()), "cannot write the output", output);
            ++res.video_packets;
            have_v = video.next(vp.get());
            if (have_v) {
                vtb = video.tb();
            }
        } else {
            const AVRational itb = src->streams[sp->stream_index]->time_base;
            const int o = map[sp->stream_index];
            av_packet_rescale_ts(sp.get(), itb, oc->streams[o]->time_base);
            sp->stream_index = o;
            sp->pos = -1;
            av_check(av_interleaved_write_frame(oc.get(), sp.get()), "cannot write a copied packet", output);
            ++res.copied_packets;
            have_s = next_source();
        }
    }
    av_check(av_write_trailer(oc.get()), "cannot finish the output", output);
    oc.reset();
    fs::rename(tmp.path, output, fec);
    if (fec) {
        throw InputError("cannot rename the finished output to " + squote(output) + ": " + fec.message());
    }
    tmp.keep = true;
    return res;
}

}  // namespace flashvsr::io
