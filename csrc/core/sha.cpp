#include "csrc/core/sha.h"

extern "C" {
#include <libavutil/mem.h>
#include <libavutil/sha.h>
}

#include <stdexcept>

namespace flashvsr {

struct Sha::Ctx {
    AVSHA* sha = nullptr;
    ~Ctx() { av_freep(&sha); }
};

Sha::Sha(int bits) : ctx_(std::make_unique<Ctx>()), bits_(bits) {
    if (bits != 256 && bits != 160) {
        throw std::invalid_argument("Sha: bits must be 256 or 160");
    }
    ctx_->sha = av_sha_alloc();
    if (ctx_->sha == nullptr || av_sha_init(ctx_->sha, bits) < 0) {
        throw std::bad_alloc();
    }
}

Sha::~Sha() = default;
Sha::Sha(Sha&&) noexcept = default;
Sha& Sha::operator=(Sha&&) noexcept = default;

void Sha::update(const void* data, size_t n) {
    const auto* p = static_cast<const uint8_t*>(data);
    while (n > 0) {  // av_sha_update takes an unsigned int length
        const size_t step = n < (1u << 30) ? n : (1u << 30);
        av_sha_update(ctx_->sha, p, static_cast<unsigned int>(step));
        p += step;
        n -= step;
    }
}

std::string Sha::hex_digest() {
    uint8_t d[32];
    av_sha_final(ctx_->sha, d);
    static const char* kHex = "0123456789abcdef";
    std::string s;
    for (int i = 0; i < bits_ / 8; ++i) {
        s += kHex[d[i] >> 4];
        s += kHex[d[i] & 15];
    }
    return s;
}

std::string sha256_hex(std::string_view s) {
    Sha h(256);
    h.update(s);
    return h.hex_digest();
}

}  // namespace flashvsr
