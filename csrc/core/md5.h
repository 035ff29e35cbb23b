// MD5 (RFC 1321), for key-contract hashes and download checks. Not for security.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace flashvsr {

class Md5 {
  public:
    Md5();
    void update(const void* data, size_t n);
    void update(std::string_view s) { update(s.data(), s.size()); }
    /// Finishes and returns 32 lowercase hex digits; the object must not be updated afterwards.
    std::string hex_digest();

  private:
    void block(const uint8_t* p);
    uint32_t a_, b_, c_, d_;
    uint64_t length_ = 0;
    uint8_t buffer_[64];
    size_t fill_ = 0;
};

std::string md5_hex(std::string_view s);

}  // namespace flashvsr
