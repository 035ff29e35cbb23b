#include "csrc/io/probe.h"

#include <flashvsr/errors.h>

#include "csrc/io/av_ptr.h"

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/pixdesc.h>
}

#include <filesystem>

namespace flashvsr::io {
namespace {

const char* media_type_name(AVMediaType t) {
    switch (t) {
        case AVMEDIA_TYPE_VIDEO:
            return "video";
        case AVMEDIA_TYPE_AUDIO:
            return "audio";
        case AVMEDIA_TYPE_SUBTITLE:
            return "subtitle";
        case AVMEDIA_TYPE_DATA:
            return "data";
        case AVMEDIA_TYPE_ATTACHMENT:
            return "attachment";
        default:
            return "unknown";
    }
}

}  // namespace

MediaInfo probe(const std::string& path) {
    if (!std::filesystem::exists(path)) {
        throw InputError("cannot open '" + path + "': no such file");
    }
    AVFormatContext* raw = nullptr;
    av_check(avformat_open_input(&raw, path.c_str(), nullptr, nullptr), "cannot open media file", path);
    AVFormatInputPtr fmt(raw);
    av_check(avformat_find_stream_info(fmt.get(), nullptr), "cannot read stream information", path);

    MediaInfo info;
    info.path = path;
    info.format = fmt->iformat != nullptr ? fmt->iformat->name : "";
    info.duration_s = fmt->duration > 0 ? static_cast<double>(fmt->duration) / AV_TIME_BASE : 0.0;
    const int best = av_find_best_stream(fmt.get(), AVMEDIA_TYPE_VIDEO, -1, -1, nullptr, 0);
    for (unsigned i = 0; i < fmt->nb_streams; ++i) {
        const AVStream* st = fmt->streams[i];
        const AVCodecParameters* par = st->codecpar;
        StreamInfo s;
        s.index = static_cast<int>(i);
        s.type = media_type_name(par->codec_type);
        s.codec = avcodec_get_name(par->codec_id);
        if (st->duration > 0) {
            s.duration_s = static_cast<double>(st->duration) * av_q2d(st->time_base);
        }
        s.frames = st->nb_frames;
        if (par->codec_type == AVMEDIA_TYPE_VIDEO) {
            s.width = par->width;
            s.height = par->height;
            const char* pf = av_get_pix_fmt_name(static_cast<AVPixelFormat>(par->format));
            s.pix_fmt = pf != nullptr ? pf : "";
            const AVRational r = av_guess_frame_rate(fmt.get(), const_cast<AVStream*>(st), nullptr);
            s.fps_num = r.num;
            s.fps_den = r.den;
        } else if (par->codec_type == AVMEDIA_TYPE_AUDIO) {
            s.sample_rate = par->sample_rate;
            s.channels = par->ch_layout.nb_channels;
        }
        if (static_cast<int>(i) == best) {
            info.best_video = static_cast<int>(info.streams.size());
        }
        info.streams.push_back(std::move(s));
    }
    return info;
}

}  // namespace flashvsr::io
