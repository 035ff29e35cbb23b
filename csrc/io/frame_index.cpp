// find_seek_point (frame_index.h): one pass over the video packets in decode order, no decoding.
#include "csrc/io/frame_index.h"

#include <algorithm>
#include <vector>

#include "csrc/io/av_ptr.h"

extern "C" {
#include <libavformat/avformat.h>
}

namespace flashvsr::io {
namespace {

struct PacketInfo {
    int64_t pts, dts;
    bool key;
};

SeekPoint refuse(SeekPoint sp, std::string reason) {
    sp.ok = false;
    sp.reason = std::move(reason);
    return sp;
}

}  // namespace

SeekPoint find_seek_point(AVFormatContext* fmt, int stream, int64_t frame, int64_t begin_pts,
                          int64_t end_pts) {
    SeekPoint sp;
    sp.frame = frame;
    std::vector<PacketInfo> packets;  // decode order
    std::vector<int64_t> shown;       // pts of the packets in [begin_pts, end_pts): the decoder's frames
    AVPacketPtr pkt = make_packet();
    bool enough = false;  // `frame + 1` frames seen: the frame is among them or shown before them
    int keys_after = 0;   // keyframes read after that
    for (;;) {
        const int r = av_read_frame(fmt, pkt.get());
        if (r == AVERROR_EOF) {
            sp.frames = static_cast<int64_t>(shown.size());
            break;
        }
        if (r < 0) {
            return refuse(sp, "the file cannot be read up to the frame (" + av_error_string(r) + ")");
        }
        if (pkt->stream_index != stream) {
            av_packet_unref(pkt.get());
            continue;
        }
        const PacketInfo p{pkt->pts, pkt->dts, (pkt->flags & AV_PKT_FLAG_KEY) != 0};
        const bool discard = (pkt->flags & AV_PKT_FLAG_DISCARD) != 0;
        av_packet_unref(pkt.get());
        ++sp.packets_read;
        if (p.pts == AV_NOPTS_VALUE) {
            return refuse(sp, "video packets without timestamps");
        }
        if (discard) {
            return refuse(sp, "video packets marked to be discarded (an edit list)");
        }
        if (packets.empty() && !p.key) {
            return refuse(sp, "the video does not start on a keyframe");
        }
        if (!packets.empty() && p.pts < packets.front().pts) {
            return refuse(sp, "frames shown before its first keyframe");
        }
        if (p.key && enough && ++keys_after == 2) {
            break;  // every packet from here on shows after the frame (no reordering across a whole GOP)
        }
        packets.push_back(p);
        if (p.pts >= begin_pts && p.pts < end_pts) {
            shown.push_back(p.pts);
        }
        enough = enough || static_cast<int64_t>(shown.size()) > frame;
    }
    std::sort(shown.begin(), shown.end());
    if (std::adjacent_find(shown.begin(), shown.end()) != shown.end()) {
        return refuse(sp, "video packets with the same timestamp");
    }
    if (static_cast<int64_t>(shown.size()) <= frame) {
        return refuse(sp, "the video ends before the frame");
    }
    sp.pts = shown[static_cast<size_t>(frame)];
    // The last keyframe at or before the frame that no earlier packet (decode order) shows after.
    int64_t shown_max = INT64_MIN;  // the latest pts of the packets before i
    for (size_t i = 0; i < packets.size(); ++i) {
        const PacketInfo& p = packets[i];
        if (p.pts > sp.pts) {
            break;  // keyframes come in pts order: none later is at or before the frame
        }
        if (p.key && shown_max < sp.pts) {
            sp.key_pts = p.pts;
            sp.key_dts = p.dts == AV_NOPTS_VALUE ? INT64_MIN : p.dts;
            sp.key_packet = static_cast<int64_t>(i);
        }
        shown_max = std::max(shown_max, p.pts);
    }
    sp.ok = true;
    return sp;
}

}  // namespace flashvsr::io
