#include "models/checkpoint/mapped_file.h"

#include <flashvsr/errors.h>

#include <ATen/ATen.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>

namespace flashvsr::models {
namespace {

std::string errno_text() { return std::strerror(errno); }

/// Keeps a MappedFile alive from a DataPtr context.
struct MappingRef {
    std::shared_ptr<const MappedFile> file;
};

void delete_mapping_ref(void* ctx) { delete static_cast<MappingRef*>(ctx); }

// ---- SIGBUS from truncated mappings ---------------------------------------------------------------------
// Fixed slots (no allocation in the handler): [begin, end) of each live mapping and whether a page of it
// was lost. More mappings than slots at once simply go unprotected.

struct GuardSlot {
    std::atomic<uintptr_t> begin{0};
    std::atomic<uintptr_t> end{0};
    std::atomic<bool> lost{false};
};
std::array<GuardSlot, 64> g_slots;
struct sigaction g_previous_sigbus = {};
uintptr_t g_page = 4096;

void on_sigbus(int sig, siginfo_t* info, void* context) {
    const auto addr = reinterpret_cast<uintptr_t>(info->si_addr);
    for (auto& s : g_slots) {
        const uintptr_t b = s.begin.load(std::memory_order_acquire);
        if (b != 0 && addr >= b && addr < s.end.load(std::memory_order_acquire)) {
            void* page = reinterpret_cast<void*>(addr & ~(g_page - 1));
            if (::mmap(page, g_page, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) !=
                MAP_FAILED) {
                s.lost.store(true, std::memory_order_release);
                return;  // the read is retried and sees zeros
            }
        }
    }
    // Not a mapping of ours: what would have happened without this handler.
    if ((g_previous_sigbus.sa_flags & SA_SIGINFO) != 0 && g_previous_sigbus.sa_sigaction != nullptr) {
        g_previous_sigbus.sa_sigaction(sig, info, context);
    } else if (g_previous_sigbus.sa_handler != SIG_DFL && g_previous_sigbus.sa_handler != SIG_IGN) {
        g_previous_sigbus.sa_handler(sig);
    } else {
        ::signal(SIGBUS, SIG_DFL);  // the faulting read runs again and ends the process as before
    }
}

void install_sigbus_handler() {
    static std::once_flag once;
    std::call_once(once, [] {
        g_page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
        struct sigaction sa = {};
        sa.sa_sigaction = &on_sigbus;
        sa.sa_flags = SA_SIGINFO;
        sigemptyset(&sa.sa_mask);
        ::sigaction(SIGBUS, &sa, &g_previous_sigbus);
    });
}

int guard_mapping(const uint8_t* data, size_t size) {
    install_sigbus_handler();
    constexpr uintptr_t kReserved = ~uintptr_t{0};  // matches no address while the slot is filled in
    for (size_t i = 0; i < g_slots.size(); ++i) {
        uintptr_t expected = 0;
        GuardSlot& s = g_slots[i];
        if (s.begin.compare_exchange_strong(expected, kReserved)) {
            s.lost.store(false, std::memory_order_relaxed);
            s.end.store(reinterpret_cast<uintptr_t>(data) + size, std::memory_order_release);
            s.begin.store(reinterpret_cast<uintptr_t>(data), std::memory_order_release);
            return static_cast<int>(i);
        }
    }
    return -1;
}

}  // namespace

std::shared_ptr<MappedFile> MappedFile::open(const std::string& path) {
    // O_NONBLOCK: opening a FIFO must not wait for a writer (it is refused below).
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        throw ModelError(path + ": cannot open (" + errno_text() + ")");
    }
    struct stat st = {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        ::close(fd);
        throw ModelError(path + ": not a regular file");
    }
    std::shared_ptr<MappedFile> f(new MappedFile());
    f->path_ = path;
    f->size_ = static_cast<size_t>(st.st_size);
    f->fd_ = fd;  // closed by the destructor
    if (f->size_ > 0) {
        void* p = ::mmap(nullptr, f->size_, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            throw ModelError(path + ": cannot memory-map " + std::to_string(f->size_) + " bytes (" +
                             errno_text() + ")");
        }
        f->data_ = static_cast<const uint8_t*>(p);
        f->slot_ = guard_mapping(f->data_, f->size_);
    }
    return f;
}

MappedFile::~MappedFile() {
    if (slot_ >= 0) {
        g_slots[static_cast<size_t>(slot_)].begin.store(0, std::memory_order_release);
    }
    if (data_ != nullptr) {
        ::munmap(const_cast<uint8_t*>(data_), size_);
    }
    if (fd_ >= 0) {
        ::close(fd_);
    }
}

void MappedFile::check_intact() const {
    const bool lost = slot_ >= 0 && g_slots[static_cast<size_t>(slot_)].lost.load(std::memory_order_acquire);
    struct stat st = {};
    const bool known = fd_ >= 0 && ::fstat(fd_, &st) == 0;
    if (lost || (known && static_cast<size_t>(st.st_size) != size_)) {
        throw ModelError(path_ + ": the file changed while it was being read (" + std::to_string(size_) +
                         " bytes when opened" +
                         (known ? ", " + std::to_string(st.st_size) + " bytes now" : "") +
                         "); nothing read from it is used");
    }
}

bool release_mapped_pages(const at::Tensor& t) {
    if (!t.defined() || !t.has_storage() || t.storage().data_ptr().get_deleter() != &delete_mapping_ref) {
        return false;
    }
    static_cast<const MappingRef*>(t.storage().data_ptr().get_context())->file->check_intact();
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
