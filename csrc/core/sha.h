// SHA-256 and SHA-1 through libavutil's av_sha, for download checks (Hugging Face publishes the SHA-256 of
// each LFS file and the git blob SHA-1 of the others).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace flashvsr {

class Sha {
  public:
    /// bits: 256 (SHA-256) or 160 (SHA-1).
    explicit Sha(int bits = 256);
    ~Sha();
    Sha(Sha&&) noexcept;
    Sha& operator=(Sha&&) noexcept;

    void update(const void* data, size_t n);
    void update(std::string_view s) { update(s.data(), s.size()); }
    /// Finishes and returns the digest as lowercase hex (64 digits for SHA-256, 40 for SHA-1); the object
    /// must not be updated afterwards.
    std::string hex_digest();

  private:
    struct Ctx;
    std::unique_ptr<Ctx> ctx_;
    int bits_;
};

/// SHA-256 of `s` as 64 lowercase hex digits.
std::string sha256_hex(std::string_view s);

}  // namespace flashvsr
