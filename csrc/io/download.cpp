#include "csrc/io/download.h"

#include <flashvsr/errors.h>

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

#include "csrc/core/sha.h"
#include "csrc/io/av_ptr.h"

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
    if (offset > 0) {
        av_dict_set_int(&opts, "offset", offset, 0);
    }
    AVIOContext* raw = nullptr;
    const int r = avio_open2(&raw, url.c_str(), AVIO_FLAG_READ, nullptr, &opts);
    av_dict_free(&opts);
    if (r < 0) {
        throw InputError("cannot download " + url + ": " + av_error_string(r));
    }
    return AvioPtr(raw);
}

int read_some(AVIOContext* c, uint8_t* buf, int n, const std::string& url) {
    const int r = avio_read_partial(c, buf, n);
    if (r == AVERROR_EOF) {
        return 0;
    }
    if (r < 0) {
        throw InputError("download of " + url + " failed: " + av_error_string(r));
    }
    return r;
}

/// The SHA-256 of a file's bytes, plus its git blob SHA-1 when that is the hash to check (no SHA-256 known).
class FileHasher {
  public:
    explicit FileHasher(const ExpectedFile& e)
        : expected_(e), git_(e.sha256.empty() && !e.git_sha1.empty() && e.size >= 0) {
        if (git_) {
            const std::string header = "blob " + std::to_string(e.size);
            sha1_.update(header.c_str(), header.size() + 1);  // the NUL terminator is part of git's header
        }
    }
    void update(const uint8_t* p, size_t n) {
        sha256_.update(p, n);
        if (git_) {
            sha1_.update(p, n);
        }
    }
    /// Hashes the first `n` bytes of `path`.
    void update_from_file(const std::string& path, int64_t n) {
        std::ifstream f(path, std::ios::binary);
        std::vector<uint8_t> buf(1 << 20);
        while (n > 0 && f) {
            f.read(reinterpret_cast<char*>(buf.data()),
                   std::min<int64_t>(n, static_cast<int64_t>(buf.size())));
            update(buf.data(), static_cast<size_t>(f.gcount()));
            n -= f.gcount();
        }
        if (n != 0) {
            throw InputError("cannot read '" + path + "'");
        }
    }
    struct Verdict {
        std::string sha256;
        bool verified = false;         // a known hash matched
        std::string check, want, got;  // the failed check ("" none)
    };
    Verdict finish() {
        Verdict v;
        v.sha256 = sha256_.hex_digest();
        if (!expected_.sha256.empty()) {
            v.verified = v.sha256 == expected_.sha256;
            if (!v.verified) {
                v.check = "SHA-256", v.want = expected_.sha256, v.got = v.sha256;
            }
        } else if (git_) {
            const std::string got = sha1_.hex_digest();
            v.verified = got == expected_.git_sha1;
            if (!v.verified) {
                v.check = "git blob SHA-1", v.want = expected_.git_sha1, v.got = got;
            }
        }
        return v;
    }

  private:
    ExpectedFile expected_;
    bool git_;
    Sha sha256_{256}, sha1_{160};
};

}  // namespace

FileCheck check_file(const std::string& path, const ExpectedFile& expected) {
    FileCheck c;
    std::error_code ec;
    if (!fs::is_regular_file(path, ec)) {
        return c;
    }
    c.bytes = static_cast<int64_t>(fs::file_size(path, ec));
    if (ec || (expected.size >= 0 && c.bytes != expected.size)) {
        return c;
    }
    if (expected.sha256.empty() && expected.git_sha1.empty()) {
        return c;
    }
    FileHasher h(expected);
    h.update_from_file(path, c.bytes);
    const FileHasher::Verdict v = h.finish();
    c.sha256 = v.sha256;
    c.matches = v.verified;
    return c;
}

std::string fetch_text(const std::string& url, int64_t max_bytes) {
    AvioPtr in = open_at(url, 0);
    std::string body;
    std::vector<uint8_t> buf(1 << 16);
    while (true) {
        const int n = read_some(in.get(), buf.data(), static_cast<int>(buf.size()), url);
        if (n == 0) {
            break;
        }
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
    if (!fs::path(dest).parent_path().empty()) {
        fs::create_directories(fs::path(dest).parent_path(), ec);
    }
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
            if (n == 0) {
                break;
            }
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
    if (!in) {
        in = open_at(url, 0);
    }
    // Every byte of the result is hashed: the kept prefix from disk first, then what arrives.
    FileHasher hasher(expected);
    if (have > 0) {
        hasher.update_from_file(part, have);
    }
    const int64_t size = avio_size(in.get());  // the whole file's size when the server says (-1 otherwise)
    const int64_t total = expected_size >= 0 ? expected_size : size;
    if (expected_size >= 0 && size > 0 && size != expected_size) {
        throw InputError("download of " + url + ": the server reports " + std::to_string(size) +
                         " bytes, expected " + std::to_string(expected_size));
    }
    std::ofstream out(part, have > 0 ? std::ios::binary | std::ios::app : std::ios::binary | std::ios::trunc);
    if (!out) {
        throw InputError("cannot write '" + part + "'");
    }
    int64_t done = have, last_report = 0;
    while (true) {
        const int n = read_some(in.get(), buf.data(), static_cast<int>(buf.size()), url);
        if (n == 0) {
            break;
        }
        out.write(reinterpret_cast<const char*>(buf.data()), n);
        hasher.update(buf.data(), static_cast<size_t>(n));
        if (!out) {
            throw InputError("cannot write '" + part + "' (disk full?)");
        }
        done += n;
        if (progress && done - last_report >= (256 << 10)) {
            progress(done, total);
            last_report = done;
        }
    }
    out.close();
    if (!out) {
        throw InputError("cannot write '" + part + "'");
    }
    const auto reject = [&](const std::string& what, const std::string& want, const std::string& got) {
        fs::remove(part, ec);
        throw InputError("'" + dest + "' failed the " + what + " check: expected " + want + ", got " + got +
                         " (downloaded from " + url + "; the bad file was deleted, run the command again)");
    };
    if (total >= 0 && done > total) {
        reject("size", std::to_string(total), std::to_string(done) + " bytes");
    }
    if (total >= 0 && done != total) {
        throw InputError("download of " + url + " is incomplete: " + std::to_string(done) + " of " +
                         std::to_string(total) + " bytes (run the command again to resume)");
    }
    if (progress) {
        progress(done, total);
    }
    const FileHasher::Verdict v = hasher.finish();
    if (!v.check.empty()) {
        reject(v.check, v.want, v.got);
    }
    res.sha256 = v.sha256;
    res.verified = v.verified;
    fs::rename(part, dest, ec);
    if (ec) {
        throw InputError("cannot rename '" + part + "' to '" + dest + "': " + ec.message());
    }
    res.bytes = done;
    return res;
}

}  // namespace flashvsr::io
