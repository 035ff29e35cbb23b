#include "models/checkpoint/mapped_file.h"

#include <flashvsr/flashvsr.h>

#include <ATen/ATen.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace flashvsr::models {
namespace {

std::string errno_text() { return std::strerror(errno); }

/// Keeps a MappedFile alive from a DataPtr context.
struct MappingRef {
    std::shared_ptr<const MappedFile> file;
};

void delete_mapping_ref(void* ctx) { delete static_cast<MappingRef*>(ctx); }

}  // namespace

std::shared_ptr<MappedFile> MappedFile::open(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        throw ModelError(path + ": cannot open (" + errno_text() + ")");
    }
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        ::close(fd);
        throw ModelError(path + ": not a regular file");
    }
    std::shared_ptr<MappedFile> f(new MappedFile());
    f->path_ = path;
    f->size_ = static_cast<size_t>(st.st_size);
    if (f->size_ > 0) {
        void* p = ::mmap(nullptr, f->size_, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            const std::string err = errno_text();
            ::close(fd);
            throw ModelError(path + ": cannot memory-map " + std::to_string(f->size_) + " bytes (" + err +
                             ")");
        }
        f->data_ = static_cast<const uint8_t*>(p);
    }
    ::close(fd);  // the mapping keeps its own reference to the file
    return f;
}

MappedFile::~MappedFile() {
    if (data_ != nullptr) {
        ::munmap(const_cast<uint8_t*>(data_), size_);
    }
}

bool release_mapped_pages(const at::Tensor& t) {
    if (!t.defined() || !t.has_storage() || t.storage().data_ptr().get_deleter() != &delete_mapping_ref) {
        return false;
    }
    const long page = ::sysconf(_SC_PAGESIZE);
    const auto begin = reinterpret_cast<uintptr_t>(t.storage().data());
    const uintptr_t end = begin + t.storage().nbytes();
    const uintptr_t first = (begin + page - 1) / page * page;
    const uintptr_t last = end / page * page;
    if (last > first) {
        ::madvise(reinterpret_cast<void*>(first), last - first, MADV_DONTNEED);
    }
    return true;
}

c10::Storage MappedFile::storage(size_t offset, size_t nbytes) const {
    void* ptr = const_cast<uint8_t*>(data_ + offset);  // read-only pages: writing faults (documented)
    auto* ref = new MappingRef{shared_from_this()};
    at::DataPtr dp(ptr, ref, &delete_mapping_ref, at::Device(at::kCPU));
    return c10::Storage(c10::Storage::use_byte_size_t(), nbytes, std::move(dp), /*allocator=*/nullptr,
                        /*resizable=*/false);
}

at::Tensor MappedFile::view(size_t offset, at::IntArrayRef sizes, at::ScalarType dtype) const {
    const auto opts = at::TensorOptions().dtype(dtype).device(at::kCPU);
    const size_t item = c10::elementSize(dtype);
    int64_t numel = 1;
    for (int64_t s : sizes) {
        numel *= s;
    }
    if (numel == 0) {
        return at::empty(sizes, opts);
    }
    const size_t nbytes = static_cast<size_t>(numel) * item;
    const uint8_t* p = data_ + offset;
    if (reinterpret_cast<uintptr_t>(p) % item != 0) {  // misaligned for the dtype: copy
        at::Tensor t = at::empty(sizes, opts);
        std::memcpy(t.data_ptr(), p, nbytes);
        return t;
    }
    at::Tensor t = at::empty({0}, opts);
    t.set_(storage(offset, nbytes), 0, sizes, c10::contiguous_strides(sizes));
    return t;
}

void write_file_atomically(const std::string& path, const std::function<void(std::ostream&)>& write) {
    namespace fs = std::filesystem;
    static std::atomic<uint64_t> counter{0};
    const fs::path target(path);
    std::ostringstream name;  // hidden, unique per process and call: .<file>.tmp<pid>_<n>
    name << "." << target.filename().string() << ".tmp" << ::getpid() << "_" << counter++;
    const std::string tmp = (target.parent_path() / name.str()).string();
    try {
        {
            std::ofstream os(tmp, std::ios::binary | std::ios::trunc);
            if (!os) {
                throw ModelError(path + ": cannot create temporary file '" + tmp + "' (" + errno_text() +
                                 ")");
            }
            write(os);
            os.flush();
            if (!os) {
                throw ModelError(path + ": write failed (" + errno_text() + ")");
            }
        }
        std::error_code ec;
        fs::rename(tmp, target, ec);
        if (ec) {
            throw ModelError(path + ": cannot rename the temporary file into place (" + ec.message() + ")");
        }
    } catch (...) {
        std::error_code ignored;
        fs::remove(tmp, ignored);
        throw;
    }
}

std::string shape_string(at::IntArrayRef sizes) {
    std::ostringstream os;
    os << "[";
    for (size_t i = 0; i < sizes.size(); ++i) {
        os << (i ? ", " : "") << sizes[i];
    }
    os << "]";
    return os.str();
}

}  // namespace flashvsr::models
