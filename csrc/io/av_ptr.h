// RAII owners for libav handles: every handle lives behind a unique_ptr with a stateless deleter,
// and every libav return code goes through av_check(), which throws with libav's own message.
#pragma once

#include <memory>
#include <string>

extern "C" {
struct AVFormatContext;
struct AVCodecContext;
struct AVFrame;
struct AVPacket;
struct SwsContext;
struct SwrContext;
}

namespace flashvsr::io {

struct AVFormatInputDeleter {
    void operator()(AVFormatContext* p) const;
};  // avformat_close_input
struct AVFormatOutputDeleter {
    void operator()(AVFormatContext* p) const;
};  // avio_closep + free
struct AVCodecContextDeleter {
    void operator()(AVCodecContext* p) const;
};
struct AVFrameDeleter {
    void operator()(AVFrame* p) const;
};
struct AVPacketDeleter {
    void operator()(AVPacket* p) const;
};
struct SwsContextDeleter {
    void operator()(SwsContext* p) const;
};
struct SwrContextDeleter {
    void operator()(SwrContext* p) const;
};

using AVFormatInputPtr = std::unique_ptr<AVFormatContext, AVFormatInputDeleter>;
using AVFormatOutputPtr = std::unique_ptr<AVFormatContext, AVFormatOutputDeleter>;
using AVCodecContextPtr = std::unique_ptr<AVCodecContext, AVCodecContextDeleter>;
using AVFramePtr = std::unique_ptr<AVFrame, AVFrameDeleter>;
using AVPacketPtr = std::unique_ptr<AVPacket, AVPacketDeleter>;
using SwsContextPtr = std::unique_ptr<SwsContext, SwsContextDeleter>;
using SwrContextPtr = std::unique_ptr<SwrContext, SwrContextDeleter>;

AVFramePtr make_frame();  // throws on allocation failure
AVPacketPtr make_packet();
/// A new reference to `pkt`'s data (av_packet_clone); throws on allocation failure.
AVPacketPtr clone_packet(const AVPacket* pkt);

/// libav's own log output on stderr: verbose = libav's default (info and up); otherwise only fatal messages
/// (errors reach the user through exceptions instead).
void set_av_logging(bool verbose);

/// libav's text for an error code, e.g. "Invalid data found when processing input".
std::string av_error_string(int code);

/// Throws flashvsr::InputError "<what>: <libav message> (<context>)" when ret < 0; returns ret otherwise.
int av_check(int ret, const char* what, const std::string& context);

}  // namespace flashvsr::io
