#include "csrc/io/image_header.h"

#include <flashvsr/errors.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <vector>

namespace flashvsr::io {
namespace {

/// Bounded random access to a file: every read names the file in its error when it runs past the end.
class HeaderReader {
  public:
    explicit HeaderReader(const std::string& path) : path_(path), in_(path, std::ios::binary) {
        if (!in_) {
            throw InputError("cannot open '" + path + "'");
        }
        in_.seekg(0, std::ios::end);
        size_ = static_cast<uint64_t>(std::max<std::streamoff>(0, in_.tellg()));
    }
    uint64_t size() const { return size_; }
    /// `n` bytes at `pos`, or fewer at the end of the file when `partial`.
    std::vector<uint8_t> bytes(uint64_t pos, size_t n, bool partial = false) {
        if (pos > size_ || (!partial && n > size_ - pos)) {
            damaged("truncated header");
        }
        n = static_cast<size_t>(std::min<uint64_t>(n, size_ - pos));
        std::vector<uint8_t> b(n);
        in_.clear();
        in_.seekg(static_cast<std::streamoff>(pos));
        in_.read(reinterpret_cast<char*>(b.data()), static_cast<std::streamsize>(n));
        if (static_cast<size_t>(in_.gcount()) != n) {
            damaged("read error");
        }
        return b;
    }
    [[noreturn]] void damaged(const std::string& why) const {
        throw InputError("'" + path_ + "' is a damaged " + format_ + " file (" + why + ")");
    }
    void set_format(const char* f) { format_ = f; }

  private:
    std::string path_;
    std::ifstream in_;
    uint64_t size_ = 0;
    std::string format_ = "image";
};

uint64_t be(const uint8_t* p, int n) {
    uint64_t v = 0;
    for (int i = 0; i < n; ++i) {
        v = (v << 8) | p[i];
    }
    return v;
}
uint64_t le(const uint8_t* p, int n) {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; --i) {
        v = (v << 8) | p[i];
    }
    return v;
}

ImageSize png(HeaderReader& r) {
    const auto b = r.bytes(8, 16);
    if (std::memcmp(b.data() + 4, "IHDR", 4) != 0) {
        r.damaged("no IHDR chunk first");
    }
    return {static_cast<int64_t>(be(b.data() + 8, 4)), static_cast<int64_t>(be(b.data() + 12, 4)), "PNG"};
}

ImageSize jpeg(HeaderReader& r) {
    uint64_t pos = 2;
    for (int segments = 0; segments < 100000; ++segments) {
        auto m = r.bytes(pos, 2);
        if (m[0] != 0xFF) {
            r.damaged("no marker where one was expected");
        }
        if (m[1] == 0xFF) {  // fill byte
            ++pos;
            continue;
        }
        const uint8_t code = m[1];
        pos += 2;
        if (code == 0xD8 || code == 0x01 || (code >= 0xD0 && code <= 0xD7)) {
            continue;  // no length
        }
        if (code == 0xD9 || code == 0xDA) {
            r.damaged("no frame header before the image data");
        }
        const uint64_t len = be(r.bytes(pos, 2).data(), 2);
        if (len < 2) {
            r.damaged("segment length below 2");
        }
        const bool sof = code >= 0xC0 && code <= 0xCF && code != 0xC4 && code != 0xC8 && code != 0xCC;
        if (sof) {
            const auto f = r.bytes(pos + 2, 5);
            return {static_cast<int64_t>(be(f.data() + 3, 2)), static_cast<int64_t>(be(f.data() + 1, 2)),
                    "JPEG"};
        }
        pos += len;
    }
    r.damaged("too many segments");
}

ImageSize tiff(HeaderReader& r, bool little, bool big) {
    const auto rd = [little](const uint8_t* p, int n) { return little ? le(p, n) : be(p, n); };
    const auto h = r.bytes(0, big ? 16 : 8);
    const uint64_t ifd = big ? rd(h.data() + 8, 8) : rd(h.data() + 4, 4);
    const int count_bytes = big ? 8 : 2, entry_bytes = big ? 20 : 12, value_at = big ? 12 : 8;
    const uint64_t n = rd(r.bytes(ifd, static_cast<size_t>(count_bytes)).data(), count_bytes);
    if (n == 0 || n > 4096) {
        r.damaged("first directory holds " + std::to_string(n) + " entries");
    }
    const auto e = r.bytes(ifd + static_cast<uint64_t>(count_bytes), static_cast<size_t>(n) * entry_bytes);
    int64_t width = -1, height = -1;
    for (uint64_t k = 0; k < n; ++k) {
        const uint8_t* p = e.data() + k * entry_bytes;
        const uint64_t tag = rd(p, 2), type = rd(p + 2, 2);
        if (tag != 256 && tag != 257) {
            continue;
        }
        const int64_t v =
            static_cast<int64_t>(type == 3           ? rd(p + value_at, 2)
                                 : type == 4         ? rd(p + value_at, 4)
                                 : type == 16 && big ? std::min<uint64_t>(rd(p + value_at, 8), INT64_MAX)
                                                     : 0);
        (tag == 256 ? width : height) = v;
    }
    if (width < 0 || height < 0) {
        r.damaged("no image width or length");
    }
    return {width, height, "TIFF"};
}

ImageSize exr(HeaderReader& r) {
    // Attributes: name\0 type\0 int32 size, value; an empty name ends the header.
    uint64_t pos = 8;
    for (int attrs = 0; attrs < 10000; ++attrs) {
        const auto b = r.bytes(pos, 600, /*partial=*/true);
        if (b.empty()) {
            r.damaged("truncated header");
        }
        const auto* name_end =
            static_cast<const uint8_t*>(std::memchr(b.data(), 0, std::min<size_t>(b.size(), 256)));
        if (name_end == nullptr) {
            r.damaged("attribute name without its end");
        }
        const size_t name_len = static_cast<size_t>(name_end - b.data());
        if (name_len == 0) {
            break;
        }
        const size_t type_at = name_len + 1;
        const auto* type_end = static_cast<const uint8_t*>(
            std::memchr(b.data() + type_at, 0, std::min<size_t>(b.size() - type_at, 256)));
        if (type_end == nullptr) {
            r.damaged("attribute type without its end");
        }
        const size_t size_at = static_cast<size_t>(type_end - b.data()) + 1;
        const uint64_t size = le(r.bytes(pos + size_at, 4).data(), 4);
        const std::string name(reinterpret_cast<const char*>(b.data()), name_len);
        if (name == "dataWindow") {
            if (size != 16) {
                r.damaged("dataWindow of " + std::to_string(size) + " bytes");
            }
            const auto w = r.bytes(pos + size_at + 4, 16);
            const auto i32 = [&](int k) {
                return static_cast<int64_t>(static_cast<int32_t>(le(w.data() + 4 * k, 4)));
            };
            return {i32(2) - i32(0) + 1, i32(3) - i32(1) + 1, "EXR"};
        }
        pos += size_at + 4 + size;
    }
    r.damaged("no dataWindow attribute");
}

ImageSize bmp(HeaderReader& r) {
    const auto b = r.bytes(14, 12);
    if (le(b.data(), 4) == 12) {  // OS/2 core header: 16-bit sizes
        return {static_cast<int64_t>(le(b.data() + 4, 2)), static_cast<int64_t>(le(b.data() + 6, 2)), "BMP"};
    }
    const auto w = static_cast<int32_t>(le(b.data() + 4, 4));
    const auto h = static_cast<int32_t>(le(b.data() + 8, 4));
    return {w, h == INT32_MIN ? int64_t{INT32_MAX} + 1 : std::abs(static_cast<int64_t>(h)),
            "BMP"};  // h < 0: top-down
}

ImageSize webp(HeaderReader& r) {
    const auto b = r.bytes(12, 18);
    if (std::memcmp(b.data(), "VP8 ", 4) == 0) {
        if (b[11] != 0x9D || b[12] != 0x01 || b[13] != 0x2A) {
            r.damaged("no VP8 start code");
        }
        return {static_cast<int64_t>(le(b.data() + 14, 2) & 0x3FFF),
                static_cast<int64_t>(le(b.data() + 16, 2) & 0x3FFF), "WebP"};
    }
    if (std::memcmp(b.data(), "VP8L", 4) == 0) {
        if (b[8] != 0x2F) {
            r.damaged("no VP8L signature");
        }
        const uint64_t bits = le(b.data() + 9, 4);
        return {static_cast<int64_t>((bits & 0x3FFF) + 1), static_cast<int64_t>(((bits >> 14) & 0x3FFF) + 1),
                "WebP"};
    }
    if (std::memcmp(b.data(), "VP8X", 4) == 0) {
        return {static_cast<int64_t>(le(b.data() + 12, 3) + 1),
                static_cast<int64_t>(le(b.data() + 15, 3) + 1), "WebP"};
    }
    r.damaged("unknown first chunk");
}

/// P1-P6 (width height), P7 (WIDTH n / HEIGHT n lines), PF/Pf (width height): text, '#' comments.
ImageSize pnm(HeaderReader& r, char kind) {
    const auto b = r.bytes(0, 4096, /*partial=*/true);
    const std::string text(b.begin(), b.end());
    size_t pos = 2;
    const auto next_token = [&]() -> std::string {
        while (pos < text.size()) {
            if (text[pos] == '#') {
                while (pos < text.size() && text[pos] != '\n') {
                    ++pos;
                }
            } else if (std::isspace(static_cast<unsigned char>(text[pos]))) {
                ++pos;
            } else {
                break;
            }
        }
        const size_t start = pos;
        while (pos < text.size() && !std::isspace(static_cast<unsigned char>(text[pos])) &&
               text[pos] != '#') {
            ++pos;
        }
        return text.substr(start, pos - start);
    };
    const auto number = [&](const std::string& t) -> int64_t {
        if (t.empty() || t.size() > 12 || t.find_first_not_of("0123456789") != std::string::npos) {
            r.damaged("'" + t.substr(0, 20) + "' where a size was expected");
        }
        return std::stoll(t);
    };
    if (kind != '7') {
        const int64_t w = number(next_token());
        return {w, number(next_token()), "PNM"};
    }
    int64_t w = -1, h = -1;
    for (std::string t = next_token(); !t.empty() && t != "ENDHDR"; t = next_token()) {
        if (t == "WIDTH") {
            w = number(next_token());
        }
        if (t == "HEIGHT") {
            h = number(next_token());
        }
    }
    if (w < 0 || h < 0) {
        r.damaged("no WIDTH or HEIGHT");
    }
    return {w, h, "PNM"};
}

}  // namespace

std::optional<ImageSize> read_image_size(const std::string& path) {
    HeaderReader r(path);
    const auto m = r.bytes(0, 16, /*partial=*/true);
    const auto starts = [&](const char* sig, size_t n) {
        return m.size() >= n && std::memcmp(m.data(), sig, n) == 0;
    };
    std::optional<ImageSize> s;
    if (starts("\x89PNG\r\n\x1a\n", 8)) {
        r.set_format("PNG");
        s = png(r);
    } else if (starts("\xFF\xD8", 2)) {
        r.set_format("JPEG");
        s = jpeg(r);
    } else if (starts("II*\0", 4) || starts("MM\0*", 4) || starts("II+\0", 4) || starts("MM\0+", 4)) {
        r.set_format("TIFF");
        s = tiff(r, m[0] == 'I', m[2] == '+' || m[3] == '+');
    } else if (starts("\x76\x2f\x31\x01", 4)) {
        r.set_format("EXR");
        s = exr(r);
    } else if (starts("BM", 2)) {
        r.set_format("BMP");
        s = bmp(r);
    } else if (starts("RIFF", 4) && m.size() >= 12 && std::memcmp(m.data() + 8, "WEBP", 4) == 0) {
        r.set_format("WebP");
        s = webp(r);
    } else if (m.size() >= 2 && m[0] == 'P' && ((m[1] >= '1' && m[1] <= '7') || m[1] == 'F' || m[1] == 'f')) {
        r.set_format("PNM");
        s = pnm(r, static_cast<char>(m[1]));
    } else {
        return std::nullopt;
    }
    if (s->width < 1 || s->height < 1) {
        r.damaged("size " + std::to_string(s->width) + "x" + std::to_string(s->height));
    }
    return s;
}

void check_pixel_budget(const std::string& path, int64_t width, int64_t height, int64_t max_pixels,
                        const char* option_hint) {
    if (width < 1 || height < 1) {
        throw InputError("'" + path + "' has the size " + std::to_string(width) + "x" +
                         std::to_string(height));
    }
    if (width > max_pixels / height) {
        throw InputError("'" + path + "' is " + std::to_string(width) + "x" + std::to_string(height) +
                         " pixels, more than the pixel budget of " + std::to_string(max_pixels) +
                         " pixels per frame (" + option_hint + " raises it)");
    }
}

}  // namespace flashvsr::io
