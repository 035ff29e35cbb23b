// Downloads through libavformat's avio (http, https, file: whatever this FFmpeg build speaks), so the CLI
// needs no other network library. Resumable: bytes already in DEST.part are kept when the server honours
// the byte offset (checked by re-reading an overlap), else the download restarts. Every byte of the
// finished file (the kept prefix included) is hashed and checked against what is known about it.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

namespace flashvsr::io {

/// What is known about a file before downloading it (each field optional).
struct ExpectedFile {
    int64_t size = -1;     // bytes (-1 unknown)
    std::string sha256;    // 64 hex digits (Hugging Face: the LFS oid), "" unknown
    std::string git_sha1;  // git blob SHA-1 (40 hex digits: sha1("blob <size>\0" + bytes)), "" unknown;
                           // checked only when `size` is known too
};

struct DownloadResult {
    int64_t bytes = 0;         // size of the finished file
    int64_t resumed_from = 0;  // bytes kept from an earlier partial download (0 = started over)
    std::string sha256;        // SHA-256 of the finished file (always computed)
    bool verified = false;     // a known sha256 or git_sha1 matched
};

/// Fetches `url` into `dest` (written as dest + ".part", renamed when complete). `expected.size` is
/// checked, as is the server's length when it reports one; then `expected.sha256` or `expected.git_sha1`.
/// `progress(done, total)` (total -1 unknown) is called every few hundred KiB. Throws InputError naming
/// the URL on any failure. A network failure keeps the .part file for a later resume; a size or hash
/// mismatch of the finished file deletes it (the message names the file, what was expected and what
/// arrived), so the next run starts that file over.
DownloadResult download_file(const std::string& url, const std::string& dest,
                             const ExpectedFile& expected = {},
                             const std::function<void(int64_t, int64_t)>& progress = {});

struct FileCheck {
    bool matches = false;  // size as expected and a known SHA-256 / git blob SHA-1 matched
    int64_t bytes = 0;
    std::string sha256;  // computed when there was a hash to check
};

/// Whether the file at `path` is already what `expected` describes (false when missing, of another size,
/// or when no hash is known to prove it).
FileCheck check_file(const std::string& path, const ExpectedFile& expected);

/// The body of `url` as a string (at most `max_bytes`; more is an error). Throws InputError naming the URL.
std::string fetch_text(const std::string& url, int64_t max_bytes = 16 << 20);

}  // namespace flashvsr::io
