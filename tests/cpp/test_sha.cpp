// SHA-256 / SHA-1 (libavutil's av_sha behind flashvsr::Sha): FIPS 180 test vectors, and split updates give
// the one-shot digest.
#include <gtest/gtest.h>

#include <string>

#include "csrc/core/sha.h"

TEST(Sha, KnownVectors) {
    EXPECT_EQ(flashvsr::sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    EXPECT_EQ(flashvsr::sha256_hex("abc"),
              "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    EXPECT_EQ(flashvsr::sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
              "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    flashvsr::Sha sha1(160);
    sha1.update("abc");
    EXPECT_EQ(sha1.hex_digest(), "a9993e364706816aba3e25717850c26c9cd0d89d");
}

TEST(Sha, SplitUpdatesEqualOneShot) {
    std::string data(100000, '\0');
    for (size_t i = 0; i < data.size(); ++i) {
        data[i] = static_cast<char>((i * 2654435761u) >> 13);
    }
    const std::string whole = flashvsr::sha256_hex(data);
    for (size_t cut : {size_t{1}, size_t{63}, size_t{64}, size_t{65}, size_t{4096}, size_t{99999}}) {
        flashvsr::Sha h;
        h.update(data.data(), cut);
        h.update(data.data() + cut, data.size() - cut);
        EXPECT_EQ(h.hex_digest(), whole) << cut;
    }
    EXPECT_THROW(flashvsr::Sha(224), std::invalid_argument);
}
