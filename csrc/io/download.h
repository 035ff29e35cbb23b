// Downloads through libavformat's avio (http, https, file: whatever this FFmpeg build speaks), so the CLI
// needs no other network library. Resumable: bytes already in DEST.part are kept when the server honours
// the byte offset (checked by re-reading an overlap), else the download restarts.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

namespace flashvsr::io {

struct DownloadResult {
    int64_t bytes = 0;         // size of the finished file
    int64_t resumed_from = 0;  // bytes kept from an earlier partial download (0 = started over)
};

/// Fetches `url` into `dest` (written as dest + ".part", renamed when complete). `expected_size` >= 0 is
/// checked, as is the server's length when it reports one. `progress(done, total)` (total -1 unknown) is
/// called every few hundred KiB. Throws InputError naming the URL on any failure (the .part file is kept
/// for a later resume).
DownloadResult download_file(const std::string& url, const std::string& dest, int64_t expected_size = -1,
                             const std::function<void(int64_t, int64_t)>& progress = {});

}  // namespace flashvsr::io
