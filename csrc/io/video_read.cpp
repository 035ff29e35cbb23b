#include "io/video_read.h"

#include <flashvsr/errors.h>

#include <ATen/ATen.h>

#include "io/av_ptr.h"
#include "io/colorspace.h"
#include "io/image_header.h"

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libswscale/swscale.h>
}

#include <cstring>
#include <filesystem>
#include <vector>

namespace flashvsr::io {
namespace {

int sws_matrix_for(const AVFrame* f) {
    switch (f->colorspace) {
        case AVCOL_SPC_BT709:
        case AVCOL_SPC_BT2020_NCL:
        case AVCOL_SPC_BT2020_CL:
        case AVCOL_SPC_FCC:
        case AVCOL_SPC_SMPTE240M:
        case AVCOL_SPC_BT470BG:
        case AVCOL_SPC_SMPTE170M:
            return sws_matrix(f->colorspace);
        default:
            return f->height >= 720 ? SWS_CS_ITU709 : SWS_CS_ITU601;  // FFmpeg's default when untagged
    }
}

}  // namespace

at::Tensor read_video_rgb24(const std::string& path, int64_t max_frames) {
    if (!std::filesystem::exists(path)) {
        throw InputError("cannot open '" + path + "': no such file");
    }
    AVFormatContext* raw = nullptr;
    av_check(avformat_open_input(&raw, path.c_str(), nullptr, nullptr), "cannot open media file", path);
    AVFormatInputPtr fmt(raw);
    av_check(avformat_find_stream_info(fmt.get(), nullptr), "cannot read stream information", path);
    const AVCodec* dec = nullptr;
    const int vi = av_find_best_stream(fmt.get(), AVMEDIA_TYPE_VIDEO, -1, -1, &dec, 0);
    if (vi < 0 || dec == nullptr) {
        throw InputError("'" + path + "' has no decodable video stream");
    }
    AVStream* vs = fmt->streams[vi];
    AVCodecContextPtr dc(avcodec_alloc_context3(dec));
    av_check(avcodec_parameters_to_context(dc.get(), vs->codecpar), "bad stream parameters", path);
    if (vs->codecpar->width > 0 && vs->codecpar->height > 0) {
        check_pixel_budget(path, vs->codecpar->width, vs->codecpar->height, kDefaultMaxPixels, "max_pixels");
    }
    dc->max_pixels = kDefaultMaxPixels;
    dc->pkt_timebase = vs->time_base;
    av_check(avcodec_open2(dc.get(), dec, nullptr), "cannot open the video decoder", path);

    std::vector<at::Tensor> frames;
    SwsContext* sws = nullptr;  // owned by sws_owner; sws_getCachedContext may replace it
    SwsContextPtr sws_owner;
    AVPacketPtr pkt = make_packet();
    AVFramePtr frame = make_frame();
    auto want_more = [&] { return max_frames < 0 || static_cast<int64_t>(frames.size()) < max_frames; };

    auto drain = [&]() {
        while (want_more()) {
            const int ret = avcodec_receive_frame(dc.get(), frame.get());
            if (ret == AVERROR(EAGAIN) || ret == AVERROR_EOF) {
                return;
            }
            av_check(ret, "cannot decode a video frame", path + ", frame " + std::to_string(frames.size()));
            const int w = frame->width;
            const int h = frame->height;
            sws = sws_getCachedContext(sws, w, h, static_cast<AVPixelFormat>(frame->format), w, h,
                                       AV_PIX_FMT_RGB24, SWS_BICUBIC | SWS_ACCURATE_RND | SWS_FULL_CHR_H_INT,
                                       nullptr, nullptr, nullptr);
            (void)sws_owner.release();
            sws_owner.reset(sws);
            if (sws == nullptr) {
                throw InputError("cannot convert pixel format of '" + path + "' to RGB");
            }
            const int* coefs = sws_getCoefficients(sws_matrix_for(frame.get()));
            const int src_range = frame->color_range == AVCOL_RANGE_JPEG ? 1 : 0;
            sws_setColorspaceDetails(sws, coefs, src_range, sws_getCoefficients(SWS_CS_DEFAULT), 1, 0,
                                     1 << 16, 1 << 16);
            at::Tensor rgb = at::empty({h, w, 3}, at::kByte);
            uint8_t* dst[1] = {rgb.data_ptr<uint8_t>()};
            const int dst_stride[1] = {w * 3};
            sws_scale(sws, frame->data, frame->linesize, 0, h, dst, dst_stride);
            frames.push_back(std::move(rgb));
            av_frame_unref(frame.get());
        }
    };

    while (want_more()) {
        const int ret = av_read_frame(fmt.get(), pkt.get());
        if (ret == AVERROR_EOF) {
            break;
        }
        av_check(ret, "cannot read a packet", path);
        if (pkt->stream_index == vi) {
            const int sret = avcodec_send_packet(dc.get(), pkt.get());
            av_packet_unref(pkt.get());
            av_check(sret, "corrupt video data", path);
            drain();
        } else {
            av_packet_unref(pkt.get());
        }
    }
    if (want_more()) {
        avcodec_send_packet(dc.get(), nullptr);  // flush the decoder's delayed frames
        drain();
    }
    if (frames.empty()) {
        throw InputError("'" + path + "' contains no video frames");
    }
    return at::stack(frames);
}

}  // namespace flashvsr::io
