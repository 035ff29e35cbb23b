// Shared pieces of the checkpoint readers and writers: a read-only memory mapping whose lifetime is
// tied to the tensors viewing it, and "write to a temporary name, then rename" for complete files.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <ostream>
#include <string>

namespace flashvsr::models {

/// A whole file mapped read-only (mmap PROT_READ, MAP_PRIVATE). Tensors made by view() hold a
/// shared_ptr to the mapping, so it stays alive until the last of them is freed.
///
/// A file truncated by someone else while it is mapped would make reads of the lost pages raise SIGBUS. A
/// process-wide SIGBUS handler (installed with the first mapping, chaining to the previous handler for
/// other addresses) puts a zero page in place of the lost page and marks the mapping; check_intact()
/// then throws. The readers call it after parsing, and release_mapped_pages() after each copy, so a
/// file that changes while it is read gives a ModelError naming it, never a crash or silently wrong weights.
class MappedFile : public std::enable_shared_from_this<MappedFile> {
  public:
    /// Maps `path`; throws flashvsr::ModelError naming the file when it cannot be opened or mapped, or is
    /// not a regular file (a FIFO or device is refused without blocking). An empty file gives
    /// size() == 0 and data() == nullptr.
    static std::shared_ptr<MappedFile> open(const std::string& path);
    ~MappedFile();
    MappedFile(const MappedFile&) = delete;
    MappedFile& operator=(const MappedFile&) = delete;

    const uint8_t* data() const { return data_; }
    size_t size() const { return size_; }
    const std::string& path() const { return path_; }

    /// Throws flashvsr::ModelError naming the file when it was truncated or changed size since it was
    /// mapped (bytes read from the lost part came back as zeros and must not be used).
    void check_intact() const;

    /// Tensor of `dtype` with contiguous `sizes` whose bytes are [offset, offset + nbytes) of the file.
    /// Zero-copy (read-only memory: clone before writing) when the address is aligned to the dtype's
    /// item size, otherwise a copy. The caller has checked the range against size().
    at::Tensor view(size_t offset, at::IntArrayRef sizes, at::ScalarType dtype) const;

    /// Untyped storage of bytes [offset, offset + nbytes) of the file, zero-copy (read-only).
    c10::Storage storage(size_t offset, size_t nbytes) const;

  private:
    MappedFile() = default;
    std::string path_;
    const uint8_t* data_ = nullptr;
    size_t size_ = 0;
    int fd_ = -1;    // kept open to see the file's size later
    int slot_ = -1;  // the SIGBUS handler's record of this mapping, -1: none
};

/// When `t` views pages of a MappedFile, tells the kernel it may drop them from this process' resident set
/// (madvise MADV_DONTNEED on the whole pages inside t's storage; the mapping is private and never written,
/// so a later read simply faults the file in again). Loaders call it after copying a tensor out, which
/// keeps peak memory near the size of the converted weights. Returns false (and does nothing) for tensors
/// that do not view a mapping. Throws flashvsr::ModelError when the mapped file did not stay intact
/// (MappedFile::check_intact), so the copy just made is known to be good when it returns.
bool release_mapped_pages(const at::Tensor& t);

/// Writes a file atomically: `write(stream)` fills a temporary file in the folder of `path`, which is
/// then renamed to `path`. On any error (also one thrown by `write`) the temporary file is removed,
/// `path` is left untouched and flashvsr::ModelError names the file.
void write_file_atomically(const std::string& path, const std::function<void(std::ostream&)>& write);

/// "[2, 3]" for error messages.
std::string shape_string(at::IntArrayRef sizes);

}  // namespace flashvsr::models
