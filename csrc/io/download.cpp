#include "io/download.h"

#include <flashvsr/flashvsr.h>

extern "C" {
#include <libavformat/avio.h>
#include <libavutil/dict.h>
#include <libavutil/error.h>
}

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <memory>
#include <vector>

#include "core/sha.h"
#include "io/av_ptr.h"

namespace flashvsr::io {
namespace fs = std::filesystem;
namespace {

struct AvioCloser {
    void operator()(AVIOContext* c) const { avio_closep(&c); }
};
using AvioPtr = std::unique_ptr<AVIOContext, AvioCloser>;

constexpr int64_t kOverlap = 4096;  // bytes re-read on resume to prove the server honoured the offset

AvioPtr open_at(const std::string& url, int64_t offset) {
    AVDictionary* opts = nullptr;
    if (offset > 0) av_dict_set_int(&opts, "offset", offset, 0);
    AVIOContext* raw = nullptr;
    const int r = avio_open2(&raw, url.c_str(), AVIO_FLAG_READ, nullptr, &opts);
    av_dict_free(&opts);
    if (r < 0) throw InputError("cannot download " + url + ": " + av_error_string(r));
    return AvioPtr(raw);
}

int read_some(AVIOContext* c, uint8_t* buf, int n, const std::string& url) {
    const int r = avio_read_partial(c, buf, n);
    if (r == AVERROR_EOF) return 0;
    if (r < 0) throw InputError("download of " + url + " failed: " + av_error_string(r));
    return r;
}

}  // namespace

std::string fetch_text(const std::string& url, int64_t max_bytes) {
    AvioPtr in = open_at(url, 0);
    std::string body;
    std::vector<uint8_t> buf(1 << 16);
    while (true) {
        const int n = read_some(in.get(), buf.data(), static_cast<int>(buf.size()), url);
        if (n == 0) break;
        body.append(reinterpret_cast<const char*>(buf.data()), n);
        if (static_cast<int64_t>(body.size()) > max_bytes) {
            throw InputError(url + " is larger than " + std::to_string(max_bytes) + " bytes");
        }
    }
    return body;
}

DownloadResult download_file(const std::string& url, const std::string& dest, const ExpectedFile& expected,
                             const std::function<void(int64_t, int64_t)>& progress) {
    const int64_t expected_size = expected.size;
    const std::string part = dest + ".part";
    std::error_code ec;
    if (!fs::path(dest).parent_path().empty()) fs::create_directories(fs::path(dest).parent_path(), ec);
    int64_t have = fs::exists(part, ec) ? static_cast<int64_t>(fs::file_size(part, ec)) : 0;
    DownloadResult res;
    std::vector<uint8_t> buf(1 << 16);
    AvioPtr in;
    if (have > kOverlap) {
        // Resume: ask for the last kOverlap bytes again; they must match what we have.
        try {
            in = open_at(url, have - kOverlap);
        } catch (const InputError&) {
            in.reset();  // e.g. libav refuses a server that answered a ranged request with the whole file
        }
        std::vector<uint8_t> tail(kOverlap), got;
        {
            std::ifstream f(part, std::ios::binary);
            f.seekg(have - kOverlap);
            f.read(reinterpret_cast<char*>(tail.data()), kOverlap);
        }
        while (in && static_cast<int64_t>(got.size()) < kOverlap) {
            const int n = read_some(in.get(), buf.data(), static_cast<int>(kOverlap - got.size()), url);
            if (n == 0) break;
            got.insert(got.end(), buf.begin(), buf.begin() + n);
        }
        if (in && got == tail) {
            res.resumed_from = have;
        } else {  // the server ignored the offset (or the file changed): start over
            in.reset();
            have = 0;
        }
    } else {
        have = 0;
    }
    if (!in) in = open_at(url, 0);
    // Every byte of the result is hashed: the kept prefix from disk first, then what arrives.
    Sha sha256(256);
    const bool want_git = expected.sha256.empty() && !expected.git_sha1.empty() && expected_size >= 0;
    Sha git_sha1(160);
    if (want_git) {
        const std::string header = "blob " + std::to_string(expected_size);
        git_sha1.update(header.c_str(), header.size() + 1);  // the NUL terminator is part of git's header
    }
    const auto hash = [&](const uint8_t* p, size_t n) {
        sha256.update(p, n);
        if (want_git) git_sha1.update(p, n);
    };
    if (have > 0) {
        std::ifstream f(part, std::ios::binary);
        int64_t left = have;
        while (left > 0 && f) {
            const int64_t n = std::min<int64_t>(left, static_cast<int64_t>(buf.size()));
            f.read(reinterpret_cast<char*>(buf.data()), n);
            hash(buf.data(), static_cast<size_t>(f.gcount()));
            left -= f.gcount();
        }
        if (left != 0) throw InputError("cannot read '" + part + "'");
    }
    const int64_t size = avio_size(in.get());  // the whole file's size when the server says (-1 otherwise)
    const int64_t total = expected_size >= 0 ? expected_size : size;
    if (expected_size >= 0 && size > 0 && size != expected_size) {
        throw InputError("download of " + url + ": the server reports " + std::to_string(size) +
                         " bytes, expected " + std::to_string(expected_size));
    }
    std::ofstream out(part, have > 0 ? std::ios::binary | std::ios::app : std::ios::binary | std::ios::trunc);
    if (!out) throw InputError("cannot write '" + part + "'");
    int64_t done = have, last_report = 0;
    while (true) {
        const int n = read_some(in.get(), buf.data(), static_cast<int>(buf.size()), url);
        if (n == 0) break;
        out.write(reinterpret_cast<const char*>(buf.data()), n);
        hash(buf.data(), static_cast<size_t>(n));
        if (!out) throw InputError("cannot write '" + part + "' (disk full?)");
        done += n;
        if (progress && done - last_report >= (256 << 10)) {
            progress(done, total);
            last_report = done;
        }
    }
    out.close();
    if (!out) throw InputError("cannot write '" + part + "'");
    const auto reject = [&](const std::string& what, const std::string& want, const std::string& got) {
        fs::remove(part, ec);
        throw InputError("'" + dest + "' failed the " + what + " check: expected " + want + ", got " + got +
                         " (downloaded from " + url + "; the bad file was deleted, run the command again)");
    };
    if (total >= 0 && done > total) reject("size", std::to_string(total), std::to_string(done) + " bytes");
    if (total >= 0 && done != total) {
        throw InputError("download of " + url + " is incomplete: " + std::to_string(done) + " of " +
                         std::to_string(total) + " bytes (run the command again to resume)");
    }
    if (progress) progress(done, total);
    res.sha256 = sha256.hex_digest();
    if (!expected.sha256.empty()) {
        if (res.sha256 != expected.sha256) reject("SHA-256", expected.sha256, res.sha256);
        res.verified = true;
    } else if (want_git) {
        const std::string got = git_sha1.hex_digest();
        if (got != expected.git_sha1) reject("git blob SHA-1", expected.git_sha1, got);
        res.verified = true;
    }
    fs::rename(part, dest, ec);
    if (ec) throw InputError("cannot rename '" + part + "' to '" + dest + "': " + ec.message());
    res.bytes = done;
    return res;
}

}  // namespace flashvsr::io
