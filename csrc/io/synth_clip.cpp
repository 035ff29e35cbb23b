#include "csrc/io/synth_clip.h"

#include <flashvsr/errors.h>

#include "csrc/io/av_ptr.h"

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/channel_layout.h>
#include <libavutil/opt.h>
#include <libswresample/swresample.h>
#include <libswscale/swscale.h>
}

#include <cmath>
#include <filesystem>
#include <numbers>

namespace flashvsr::io {
namespace {

struct OutputStream {
    AVCodecContextPtr enc;
    AVStream* st = nullptr;
};

// Sends `frame` (nullptr = flush) and writes every packet the encoder returns.
void encode_and_write(AVFormatContext* out, OutputStream& os, AVFrame* frame, const std::string& ctx) {
    av_check(avcodec_send_frame(os.enc.get(), frame), "encoder rejected a frame", ctx);
    AVPacketPtr pkt = make_packet();
    while (true) {
        const int ret = avcodec_receive_packet(os.enc.get(), pkt.get());
        if (ret == AVERROR(EAGAIN) || ret == AVERROR_EOF) {
            return;
        }
        av_check(ret, "encoding failed", ctx);
        av_packet_rescale_ts(pkt.get(), os.enc->time_base, os.st->time_base);
        pkt->stream_index = os.st->index;
        av_check(av_interleaved_write_frame(out, pkt.get()), "cannot write packet", ctx);
    }
}

OutputStream open_video(AVFormatContext* out, const SynthClipOptions& opt, const std::string& ctx) {
    const AVCodec* codec = avcodec_find_encoder_by_name(opt.video_encoder.c_str());
    if (codec == nullptr) {
        throw InputError("unknown video encoder '" + opt.video_encoder + "'");
    }
    OutputStream os;
    os.enc.reset(avcodec_alloc_context3(codec));
    AVCodecContext* c = os.enc.get();
    c->width = opt.width;
    c->height = opt.height;
    c->pix_fmt = AV_PIX_FMT_YUV420P;
    c->time_base = AVRational{opt.fps_den, opt.fps_num};
    c->framerate = AVRational{opt.fps_num, opt.fps_den};
    c->gop_size = 12;
    c->color_range = AVCOL_RANGE_MPEG;  // swscale's default RGB->YUV matrix is BT.601, limited range
    c->colorspace = AVCOL_SPC_SMPTE170M;
    c->color_primaries = AVCOL_PRI_SMPTE170M;
    c->color_trc = AVCOL_TRC_SMPTE170M;
    if (out->oformat->flags & AVFMT_GLOBALHEADER) {
        c->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    }
    AVDictionary* opts = nullptr;
    av_dict_set(&opts, "preset", "veryfast", 0);  // private options; ignored by encoders without them
    av_dict_set(&opts, "crf", "18", 0);
    const int ret = avcodec_open2(c, codec, &opts);
    av_dict_free(&opts);
    av_check(ret, "cannot open video encoder", opt.video_encoder + " for " + ctx);
    os.st = avformat_new_stream(out, nullptr);
    os.st->time_base = c->time_base;
    os.st->avg_frame_rate = c->framerate;
    av_check(avcodec_parameters_from_context(os.st->codecpar, c), "cannot set stream parameters", ctx);
    return os;
}

OutputStream open_audio(AVFormatContext* out, const SynthClipOptions& opt, const std::string& ctx) {
    const AVCodec* codec = avcodec_find_encoder(AV_CODEC_ID_AAC);
    if (codec == nullptr) {
        throw InputError("this FFmpeg build has no AAC encoder");
    }
    OutputStream os;
    os.enc.reset(avcodec_alloc_context3(codec));
    AVCodecContext* c = os.enc.get();
    c->sample_fmt = AV_SAMPLE_FMT_FLTP;
    c->sample_rate = opt.sample_rate;
    c->bit_rate = 96000;
    c->time_base = AVRational{1, opt.sample_rate};
    const AVChannelLayout mono = AV_CHANNEL_LAYOUT_MONO;
    av_check(av_channel_layout_copy(&c->ch_layout, &mono), "cannot set channel layout", ctx);
    if (out->oformat->flags & AVFMT_GLOBALHEADER) {
        c->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    }
    av_check(avcodec_open2(c, codec, nullptr), "cannot open audio encoder", ctx);
    os.st = avformat_new_stream(out, nullptr);
    os.st->time_base = c->time_base;
    av_check(avcodec_parameters_from_context(os.st->codecpar, c), "cannot set stream parameters", ctx);
    return os;
}

}  // namespace

std::vector<uint8_t> synthetic_frame_rgb(int width, int height, int index) {
    std::vector<uint8_t> rgb(static_cast<size_t>(width) * height * 3);
    const int sq = std::max(4, std::min(width, height) / 4);
    const int sx = (index * 3) % std::max(1, width - sq);
    const int sy = (index * 2) % std::max(1, height - sq);
    for (int y = 0; y < height; ++y) {
        for (int x = 0; x < width; ++x) {
            uint8_t* p = &rgb[(static_cast<size_t>(y) * width + x) * 3];
            const bool in_square = x >= sx && x < sx + sq && y >= sy && y < sy + sq;
            if (in_square) {
                p[0] = p[1] = p[2] = 235;
            } else {
                p[0] = static_cast<uint8_t>(32 + ((x + 2 * index) * 160 / std::max(1, width)) % 160);
                p[1] = static_cast<uint8_t>(32 + (y * 160 / std::max(1, height)));
                p[2] = static_cast<uint8_t>(32 + (((x + y) / 2 + index) % 96));
            }
        }
    }
    return rgb;
}

void write_synthetic_clip(const std::string& path, const SynthClipOptions& opt) {
    if (opt.width <= 0 || opt.height <= 0 || opt.width % 2 != 0 || opt.height % 2 != 0) {
        throw InputError("synthetic clip: width and height must be positive and even, got " +
                         std::to_string(opt.width) + "x" + std::to_string(opt.height));
    }
    if (opt.frames <= 0 || opt.fps_num <= 0 || opt.fps_den <= 0) {
        throw InputError("synthetic clip: frames and frame rate must be positive");
    }
    namespace fs = std::filesystem;
    const fs::path final_path(path);
    const fs::path tmp_path = final_path.parent_path() /
                              (final_path.stem().string() + ".partial" + final_path.extension().string());

    // Whatever goes wrong below, the temporary file does not outlive this call.
    struct RemoveOnFailure {
        const fs::path& p;
        bool armed = true;
        ~RemoveOnFailure() {
            if (armed) {
                std::error_code ignored;
                fs::remove(p, ignored);
            }
        }
    } guard{tmp_path};

    AVFormatContext* raw = nullptr;
    av_check(avformat_alloc_output_context2(&raw, nullptr, nullptr, path.c_str()),
             "cannot choose a container for", path);
    AVFormatOutputPtr out(raw);
    OutputStream video = open_video(out.get(), opt, path);
    OutputStream audio;
    if (opt.audio) {
        audio = open_audio(out.get(), opt, path);
    }
    av_check(avio_open(&out->pb, tmp_path.c_str(), AVIO_FLAG_WRITE), "cannot create output file",
             tmp_path.string());
    av_check(avformat_write_header(out.get(), nullptr), "cannot write header", path);

    // RGB24 -> encoder pixel format.
    SwsContextPtr sws(sws_getContext(opt.width, opt.height, AV_PIX_FMT_RGB24, opt.width, opt.height,
                                     video.enc->pix_fmt, SWS_BICUBIC | SWS_ACCURATE_RND, nullptr, nullptr,
                                     nullptr));
    if (!sws) {
        throw InputError("cannot create a pixel-format converter for " + path);
    }
    AVFramePtr vframe = make_frame();
    vframe->format = video.enc->pix_fmt;
    vframe->width = opt.width;
    vframe->height = opt.height;
    av_check(av_frame_get_buffer(vframe.get(), 0), "cannot allocate a video frame", path);

    // Interleaved s16 tone -> encoder's planar float layout through libswresample.
    SwrContextPtr swr;
    AVFramePtr aframe;
    int64_t total_samples = 0;
    int64_t samples_done = 0;
    if (opt.audio) {
        SwrContext* s = nullptr;
        AVChannelLayout mono = AV_CHANNEL_LAYOUT_MONO;  // FFmpeg 5.1 takes non-const layouts here
        av_check(swr_alloc_set_opts2(&s, &audio.enc->ch_layout, audio.enc->sample_fmt, audio.enc->sample_rate,
                                     &mono, AV_SAMPLE_FMT_S16, opt.sample_rate, 0, nullptr),
                 "cannot configure the audio resampler", path);
        swr.reset(s);
        av_check(swr_init(swr.get()), "cannot initialise the audio resampler", path);
        aframe = make_frame();
        aframe->format = audio.enc->sample_fmt;
        aframe->nb_samples = audio.enc->frame_size > 0 ? audio.enc->frame_size : 1024;
        av_check(av_channel_layout_copy(&aframe->ch_layout, &audio.enc->ch_layout),
                 "cannot set channel layout", path);
        aframe->sample_rate = audio.enc->sample_rate;
        av_check(av_frame_get_buffer(aframe.get(), 0), "cannot allocate an audio frame", path);
        total_samples =
            av_rescale(opt.frames, static_cast<int64_t>(opt.fps_den) * opt.sample_rate, opt.fps_num);
    }
    std::vector<int16_t> pcm;

    for (int i = 0; i < opt.frames; ++i) {
        // Audio up to the start of the next video frame keeps the muxer's queues short.
        const int64_t audio_until =
            av_rescale(i + 1, static_cast<int64_t>(opt.fps_den) * opt.sample_rate, opt.fps_num);
        while (opt.audio && samples_done < std::min(audio_until, total_samples)) {
            const int n =
                static_cast<int>(std::min<int64_t>(aframe->nb_samples, total_samples - samples_done));
            pcm.resize(static_cast<size_t>(n));
            for (int k = 0; k < n; ++k) {
                const double t = static_cast<double>(samples_done + k) / opt.sample_rate;
                pcm[static_cast<size_t>(k)] = static_cast<int16_t>(
                    std::lround(12000.0 * std::sin(2 * std::numbers::pi * opt.tone_hz * t)));
            }
            av_check(av_frame_make_writable(aframe.get()), "audio frame not writable", path);
            const uint8_t* in[1] = {reinterpret_cast<const uint8_t*>(pcm.data())};
            const int got = av_check(swr_convert(swr.get(), aframe->data, aframe->nb_samples, in, n),
                                     "audio conversion failed", path);
            const int full = aframe->nb_samples;
            aframe->nb_samples = got;  // the last frame may be short (the AAC encoder accepts that)
            aframe->pts = samples_done;
            encode_and_write(out.get(), audio, aframe.get(), path);
            aframe->nb_samples = full;
            samples_done += n;
        }
        const std::vector<uint8_t> rgb = synthetic_frame_rgb(opt.width, opt.height, i);
        av_check(av_frame_make_writable(vframe.get()), "video frame not writable", path);
        const uint8_t* src[1] = {rgb.data()};
        const int src_stride[1] = {opt.width * 3};
        sws_scale(sws.get(), src, src_stride, 0, opt.height, vframe->data, vframe->linesize);
        vframe->pts = i;
        encode_and_write(out.get(), video, vframe.get(), path);
    }
    encode_and_write(out.get(), video, nullptr, path);
    if (opt.audio) {
        encode_and_write(out.get(), audio, nullptr, path);
    }
    av_check(av_write_trailer(out.get()), "cannot finish the file", path);
    out.reset();  // closes the file before the rename
    std::error_code ec;
    fs::rename(tmp_path, final_path, ec);
    if (ec) {
        throw InputError("cannot rename '" + tmp_path.string() + "' to '" + path + "': " + ec.message());
    }
    guard.armed = false;
}

}  // namespace flashvsr::io
