// Helpers for the video I/O and CLI tests: shell commands (Debian's ffmpeg makes the clips), per-stream
// packet hashes and per-frame timestamps read back with libavformat.
#pragma once

#include <flashvsr/flashvsr.h>
#include <gtest/gtest.h>

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
}

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "error_test_util.h"

namespace flashvsr::testing_media {

struct CmdResult {
    int code = -1;
    std::string output;  // stdout + stderr
};

/// Runs `cmd` with /bin/sh, stdout and stderr captured together.
inline CmdResult run_cmd(const std::string& cmd) {
    CmdResult r;
    FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
    if (p == nullptr) {
        return r;
    }
    std::array<char, 4096> buf{};
    size_t n = 0;
    while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) {
        r.output.append(buf.data(), n);
    }
    const int st = ::pclose(p);
    r.code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    return r;
}

inline bool have_ffmpeg() { return run_cmd("ffmpeg -hide_banner -version").code == 0; }

/// ffmpeg -y -loglevel error <args>; fails the test with ffmpeg's output when it does not succeed.
inline void ffmpeg(const std::string& args) {
    const CmdResult r = run_cmd("ffmpeg -y -hide_banner -loglevel error " + args);
    ASSERT_EQ(r.code, 0) << "ffmpeg " << args << "\n" << r.output;
}

struct StreamPackets {
    int type = -1;  // AVMediaType
    std::string codec;
    std::vector<uint64_t> hashes;  // FNV-1a of each packet's payload, in file order
    std::vector<double> pts_s;     // packet pts in seconds (relative to nothing; raw)
};

inline uint64_t fnv1a(const uint8_t* d, int n) {
    uint64_t h = 1469598103934665603ULL;
    for (int i = 0; i < n; ++i) {
        h = (h ^ d[i]) * 1099511628211ULL;
    }
    return h;
}

/// Every stream's packets of `path` (empty when the file cannot be opened).
inline std::vector<StreamPackets> read_packets(const std::string& path) {
    std::vector<StreamPackets> out;
    AVFormatContext* fc = nullptr;
    if (avformat_open_input(&fc, path.c_str(), nullptr, nullptr) < 0) {
        return out;
    }
    avformat_find_stream_info(fc, nullptr);
    out.resize(fc->nb_streams);
    for (unsigned i = 0; i < fc->nb_streams; ++i) {
        out[i].type = fc->streams[i]->codecpar->codec_type;
        out[i].codec = avcodec_get_name(fc->streams[i]->codecpar->codec_id);
    }
    AVPacket* pkt = av_packet_alloc();
    while (av_read_frame(fc, pkt) >= 0) {
        StreamPackets& s = out[pkt->stream_index];
        s.hashes.push_back(fnv1a(pkt->data, pkt->size));
        s.pts_s.push_back(
            pkt->pts == AV_NOPTS_VALUE ? -1.0 : pkt->pts * av_q2d(fc->streams[pkt->stream_index]->time_base));
        av_packet_unref(pkt);
    }
    av_packet_free(&pkt);
    avformat_close_input(&fc);
    return out;
}

/// The first stream of `type` in `packets`, or nullptr.
inline const StreamPackets* first_of(const std::vector<StreamPackets>& packets, int type) {
    for (const auto& s : packets) {
        if (s.type == type) {
            return &s;
        }
    }
    return nullptr;
}

/// Per-frame presentation times (seconds, sorted) of the video stream: decoded best_effort_timestamp.
inline std::vector<double> frame_times(const std::string& path) {
    std::vector<double> t;
    AVFormatContext* fc = nullptr;
    if (avformat_open_input(&fc, path.c_str(), nullptr, nullptr) < 0) {
        return t;
    }
    avformat_find_stream_info(fc, nullptr);
    const AVCodec* dec = nullptr;
    const int vi = av_find_best_stream(fc, AVMEDIA_TYPE_VIDEO, -1, -1, &dec, 0);
    if (vi >= 0) {
        AVCodecContext* dc = avcodec_alloc_context3(dec);
        avcodec_parameters_to_context(dc, fc->streams[vi]->codecpar);
        dc->pkt_timebase = fc->streams[vi]->time_base;
        avcodec_open2(dc, dec, nullptr);
        AVPacket* pkt = av_packet_alloc();
        AVFrame* f = av_frame_alloc();
        const double tb = av_q2d(fc->streams[vi]->time_base);
        auto drain = [&] {
            while (avcodec_receive_frame(dc, f) == 0) {
                t.push_back(f->best_effort_timestamp * tb);
                av_frame_unref(f);
            }
        };
        while (av_read_frame(fc, pkt) >= 0) {
            if (pkt->stream_index == vi) {
                avcodec_send_packet(dc, pkt);
                drain();
            }
            av_packet_unref(pkt);
        }
        avcodec_send_packet(dc, nullptr);
        drain();
        av_frame_free(&f);
        av_packet_free(&pkt);
        avcodec_free_context(&dc);
    }
    avformat_close_input(&fc);
    return t;
}

struct InterruptedRun {
    bool sent = false;    // SIGINT was sent
    bool exited = false;  // the process exited (not killed by a signal)
    int code = -1;        // its exit code
    std::string err;      // its stderr
};

/// Runs `argv` (argv[0]: the program) with stderr captured; sends SIGINT once a progress line
/// "frames N..." with N >= `after_frames` appears, then waits for the process.
inline InterruptedRun run_and_interrupt(const std::vector<std::string>& argv, int after_frames) {
    InterruptedRun r;
    int fds[2];
    if (::pipe(fds) != 0) {
        return r;
    }
    const pid_t pid = ::fork();
    if (pid < 0) {
        return r;
    }
    if (pid == 0) {
        ::dup2(fds[1], 2);
        ::close(fds[0]);
        ::close(fds[1]);
        std::vector<char*> args;
        for (const std::string& a : argv) {
            args.push_back(const_cast<char*>(a.c_str()));
        }
        args.push_back(nullptr);
        ::execv(args[0], args.data());
        ::_exit(127);
    }
    ::close(fds[1]);
    std::string line;
    char ch = 0;
    while (::read(fds[0], &ch, 1) == 1) {
        r.err += ch;
        if (ch != '\n') {
            line += ch;
            continue;
        }
        if (!r.sent && line.rfind("frames ", 0) == 0 && std::stoi(line.substr(7)) >= after_frames) {
            ::kill(pid, SIGINT);
            r.sent = true;
        }
        line.clear();
    }
    ::close(fds[0]);
    int st = 0;
    ::waitpid(pid, &st, 0);
    r.exited = WIFEXITED(st);
    r.code = r.exited ? WEXITSTATUS(st) : -1;
    return r;
}

/// A scratch folder per test, temp/flashvsr_<suite>_<test>_<pid>, removed afterwards.
class ScratchDirTest : public ::testing::Test {
  protected:
    void SetUp() override {
        const auto* t = ::testing::UnitTest::GetInstance()->current_test_info();
        dir_ = std::filesystem::temp_directory_path() / ("flashvsr_" + std::string(t->test_suite_name()) +
                                                         "_" + t->name() + "_" + std::to_string(::getpid()));
        std::filesystem::remove_all(dir_);
        std::filesystem::create_directories(dir_);
    }
    void TearDown() override { std::filesystem::remove_all(dir_); }
    std::string path(const std::string& name) const { return (dir_ / name).string(); }
    std::filesystem::path dir_;
};

using flashvsr::testing::input_error_of;

/// How often `needle` occurs in `text`.
inline size_t count_of(const std::string& text, const std::string& needle) {
    size_t n = 0;
    for (size_t p = text.find(needle); p != std::string::npos; p = text.find(needle, p + 1)) {
        ++n;
    }
    return n;
}

/// Files in `dir` (names only).
inline std::vector<std::string> list_dir(const std::filesystem::path& dir) {
    std::vector<std::string> v;
    for (const auto& e : std::filesystem::directory_iterator(dir)) {
        v.push_back(e.path().filename().string());
    }
    return v;
}

}  // namespace flashvsr::testing_media
