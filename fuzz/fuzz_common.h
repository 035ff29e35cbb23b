// Shared pieces of the libFuzzer harnesses (fuzz/fuzz_*.cpp): the input as a file without touching the disk,
// a private scratch folder, and the checks a harness makes on what a reader returns.
//
// The rule every harness enforces: a reader either returns or throws one of the project's error types
// (flashvsr::Error and subclasses). Any other exception escapes LLVMFuzzerTestOneInput, reaches
// std::terminate and is reported by libFuzzer as a crash, like a signal, a sanitizer report, a leak or a
// hang past -timeout.
#pragma once

#include <ATen/ATen.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

namespace flashvsr::fuzz {

/// Stops the run with a message: libFuzzer reports the abort as a crash and saves the input.
[[noreturn]] inline void fail(const std::string& what) {
    std::fprintf(stderr, "fuzz invariant violated: %s\n", what.c_str());
    std::abort();
}

/// The bytes as an in-memory file (memfd), reachable by path as /proc/self/fd/N.
class MemFile {
  public:
    MemFile(const uint8_t* data, size_t size) {
        fd_ = ::memfd_create("flashvsr-fuzz", MFD_CLOEXEC);
        if (fd_ < 0) {
            fail("memfd_create failed");
        }
        size_t done = 0;
        while (done < size) {
            const ssize_t n = ::write(fd_, data + done, size - done);
            if (n <= 0) {
                fail("writing the memfd failed");
            }
            done += static_cast<size_t>(n);
        }
        path_ = "/proc/self/fd/" + std::to_string(fd_);
    }
    ~MemFile() { ::close(fd_); }
    MemFile(const MemFile&) = delete;
    MemFile& operator=(const MemFile&) = delete;
    const std::string& path() const { return path_; }

  private:
    int fd_ = -1;
    std::string path_;
};

/// A folder of this process under $TMPDIR (or /dev/shm when it exists), emptied and recreated on demand.
inline const std::filesystem::path& scratch_root() {
    static const std::filesystem::path root = [] {
        namespace fs = std::filesystem;
        const char* tmp = std::getenv("TMPDIR");
        fs::path base = tmp != nullptr ? fs::path(tmp) : fs::path("/tmp");
        if (tmp == nullptr && fs::is_directory("/dev/shm")) {
            base = "/dev/shm";
        }
        fs::path p = base / ("flashvsr-fuzz-" + std::to_string(::getpid()));
        fs::remove_all(p);
        fs::create_directories(p);
        std::atexit([] {
            std::error_code ec;
            std::filesystem::remove_all(scratch_root(), ec);
        });
        return p;
    }();
    return root;
}

/// An empty folder `name` under the scratch root.
inline std::filesystem::path fresh_folder(const std::string& name) {
    namespace fs = std::filesystem;
    const fs::path p = scratch_root() / name;
    fs::remove_all(p);
    fs::create_directories(p);
    return p;
}

/// Checks that every element `t` views lies inside its storage, then reads its first and last bytes
/// (instrumented reads: an out-of-bounds heap view becomes a sanitizer report).
inline void check_tensor(const at::Tensor& t, const std::string& key) {
    if (!t.defined()) {
        fail("tensor '" + key + "' is undefined");
    }
    if (t.numel() == 0) {
        return;
    }
    const uint64_t item = t.element_size();
    uint64_t last = static_cast<uint64_t>(t.storage_offset());
    for (int64_t d = 0; d < t.dim(); ++d) {
        if (t.stride(d) < 0) {
            fail("tensor '" + key + "' has a negative stride");
        }
        last += static_cast<uint64_t>(t.size(d) - 1) * static_cast<uint64_t>(t.stride(d));
    }
    if ((last + 1) * item > t.storage().nbytes()) {
        fail("tensor '" + key + "' views past its storage");
    }
    const auto* base = static_cast<const volatile uint8_t*>(t.storage().data());
    uint8_t sink = base[t.storage_offset() * item];
    sink ^= base[(last + 1) * item - 1];
    (void)sink;
}

}  // namespace flashvsr::fuzz
