#include "csrc/io/av_ptr.h"

#include <flashvsr/errors.h>

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/error.h>
#include <libavutil/frame.h>
#include <libswresample/swresample.h>
#include <libswscale/swscale.h>
}

#include <new>

namespace flashvsr::io {

void AVFormatInputDeleter::operator()(AVFormatContext* p) const { avformat_close_input(&p); }

void AVFormatOutputDeleter::operator()(AVFormatContext* p) const {
    if (p == nullptr) {
        return;
    }
    if (p->oformat != nullptr && !(p->oformat->flags & AVFMT_NOFILE) && p->pb != nullptr) {
        avio_closep(&p->pb);
    }
    avformat_free_context(p);
}

void AVCodecContextDeleter::operator()(AVCodecContext* p) const { avcodec_free_context(&p); }
void AVFrameDeleter::operator()(AVFrame* p) const { av_frame_free(&p); }
void AVPacketDeleter::operator()(AVPacket* p) const { av_packet_free(&p); }
void SwsContextDeleter::operator()(SwsContext* p) const { sws_freeContext(p); }
void SwrContextDeleter::operator()(SwrContext* p) const { swr_free(&p); }

AVFramePtr make_frame() {
    AVFramePtr f(av_frame_alloc());
    if (!f) {
        throw std::bad_alloc();
    }
    return f;
}

AVPacketPtr make_packet() {
    AVPacketPtr p(av_packet_alloc());
    if (!p) {
        throw std::bad_alloc();
    }
    return p;
}

AVPacketPtr clone_packet(const AVPacket* pkt) {
    AVPacketPtr p(av_packet_clone(pkt));
    if (!p) {
        throw std::bad_alloc();
    }
    return p;
}

std::string av_error_string(int code) {
    char buf[AV_ERROR_MAX_STRING_SIZE] = {0};
    av_strerror(code, buf, sizeof(buf));
    return buf;
}

void set_av_logging(bool verbose) { av_log_set_level(verbose ? AV_LOG_INFO : AV_LOG_FATAL); }

int av_check(int ret, const char* what, const std::string& context) {
    if (ret < 0) {
        throw InputError(std::string(what) + ": " + av_error_string(ret) + " (" + context + ")");
    }
    return ret;
}

}  // namespace flashvsr::io
