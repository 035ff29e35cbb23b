#include "models/checkpoint/torch_file.h"

#include <flashvsr/errors.h>

#include <ATen/ATen.h>
#include <c10/core/CPUAllocator.h>
#include <caffe2/serialize/inline_container.h>
#include <caffe2/serialize/read_adapter_interface.h>

#include <cstring>
#include <map>
#include <memory>

#include "models/checkpoint/mapped_file.h"
#include "models/checkpoint/torch_pickle.h"

namespace flashvsr::models {
namespace {

using caffe2::serialize::PyTorchStreamReader;
using caffe2::serialize::PyTorchStreamWriter;

// A legacy torch.save file starts with pickle PROTO 2 and LONG1 of the magic 0x1950a86a20f9469cfc6c.
constexpr uint8_t kLegacyMagic[] = {0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c,
                                    0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19};
constexpr size_t kZipLocalHeaderBytes = 30;

std::string first_line(const std::string& s) {
    const auto nl = s.find('\n');
    return nl == std::string::npos ? s : s.substr(0, nl);
}

const char* kResaveHint =
    "; re-save it in Python with torch.save(torch.load(path, weights_only=True), path) (the zip format, the "
    "default since PyTorch 1.6) or convert it with safetensors.torch.save_file";

/// PyTorchStreamReader reads through the mapping, so the file is opened once.
class MappedReadAdapter final : public caffe2::serialize::ReadAdapterInterface {
  public:
    explicit MappedReadAdapter(std::shared_ptr<MappedFile> f) : file_(std::move(f)) {}
    size_t size() const override { return file_->size(); }
    size_t read(uint64_t pos, void* buf, size_t n, const char* /*what*/) const override {
        if (pos >= file_->size()) {
            return 0;
        }
        n = std::min<uint64_t>(n, file_->size() - pos);
        std::memcpy(buf, file_->data() + pos, n);
        return n;
    }

  private:
    std::shared_ptr<MappedFile> file_;
};

/// The storage record data/<key>: a zero-copy view of the mapping when the record is stored
/// uncompressed at an 8-byte aligned address, a copy otherwise.
c10::Storage load_storage(PyTorchStreamReader& reader, const MappedFile& file, const std::string& key,
                          uint64_t nbytes) {
    const std::string& path = file.path();
    const std::string name = "data/" + key;
    if (!reader.hasRecord(name)) {
        throw ModelError(path + ": storage record '" + name +
                         "' named by the pickle is missing from the archive");
    }
    const uint64_t rec = reader.getRecordSize(name);
    if (rec < nbytes) {
        throw ModelError(path + ": storage record '" + name + "' has " + std::to_string(rec) +
                         " bytes, the pickle expects " + std::to_string(nbytes));
    }
    if (nbytes == 0) {
        return c10::Storage(c10::Storage::use_byte_size_t(), 0, c10::GetCPUAllocator(), false);
    }
    const uint64_t hdr = reader.getRecordHeaderOffset(name);
    if (hdr <= file.size() && file.size() - hdr >= kZipLocalHeaderBytes &&
        std::memcmp(file.data() + hdr, "PK\x03\x04", 4) == 0) {
        uint16_t method = 0;
        std::memcpy(&method, file.data() + hdr + 8, 2);
        if (method == 0) {  // stored
            const uint64_t off = reader.getRecordOffset(name);
            if (off <= file.size() && nbytes <= file.size() - off &&
                reinterpret_cast<uintptr_t>(file.data() + off) % 8 == 0) {
                return file.storage(static_cast<size_t>(off), static_cast<size_t>(nbytes));
            }
        }
    }
    auto [data, size] = reader.getRecord(name);  // inflates / copies into aligned CPU memory
    if (size < nbytes) {
        throw ModelError(path + ": storage record '" + name + "' is shorter than its directory entry");
    }
    return c10::Storage(c10::Storage::use_byte_size_t(), nbytes, std::move(data), nullptr, false);
}

void check_format(const MappedFile& file) {
    const std::string& path = file.path();
    const uint8_t* d = file.data();
    const size_t n = file.size();
    if (n >= 2 && d[0] == 'P' && d[1] == 'K') {
        return;
    }
    if (n >= sizeof(kLegacyMagic) && std::memcmp(d, kLegacyMagic, sizeof(kLegacyMagic)) == 0) {
        throw ModelError(path + ": legacy (pre-1.6, non-zip) torch.save format is not supported" +
                         kResaveHint);
    }
    if (n >= 1 && d[0] == 0x80) {
        throw ModelError(path + ": a raw pickle, not a torch.save zip archive, is not supported" +
                         kResaveHint);
    }
    throw ModelError(path + ": not a PyTorch checkpoint (neither a torch.save zip archive nor a pickle; " +
                     std::to_string(n) + " bytes)");
}

/// Storage records and pickled views of `tensors` (in order); tensors sharing a storage share a record.
struct Prepared {
    std::vector<std::pair<std::string, PickledTensorRef>> refs;
    std::vector<std::pair<std::string, at::Tensor>> records;  // data/<key> -> a CPU tensor owning the storage
};

Prepared prepare(const std::string& path, const std::vector<std::pair<std::string, at::Tensor>>& tensors) {
    Prepared p;
    std::map<const c10::StorageImpl*, std::pair<std::string, at::ScalarType>> seen;
    for (const auto& [name, t] : tensors) {
        if (!t.defined()) {
            throw ModelError(path + ": tensor '" + name + "' is undefined");
        }
        if (t.layout() != at::kStrided || t.is_quantized()) {
            throw ModelError(path + ": tensor '" + name + "' is not a dense tensor");
        }
        has_typed_storage(t.scalar_type(),
                          path + ": tensor '" + name + "'");  // throws for unsupported dtypes
        const at::Tensor c = t.resolve_conj().resolve_neg().to(at::kCPU);
        const auto* impl = c.storage().unsafeGetStorageImpl();
        auto it = seen.find(impl);
        if (it == seen.end()) {
            it = seen.emplace(impl, std::make_pair(std::to_string(p.records.size()), c.scalar_type())).first;
            p.records.emplace_back(it->second.first, c);
        } else if (it->second.second != c.scalar_type()) {
            throw ModelError(path + ": tensor '" + name + "' views a storage that another tensor views as " +
                             std::string(c10::toString(it->second.second)) +
                             " (torch.save rejects this too)");
        }
        const uint64_t item = c.element_size();
        p.refs.emplace_back(name,
                            PickledTensorRef{it->second.first, c.scalar_type(), c.storage().nbytes() / item,
                                             c.storage_offset(), c.sizes().vec(), c.strides().vec()});
    }
    return p;
}

void write_archive(const std::string& path, const std::string& pickle, const Prepared& p) {
    try {
        write_file_atomically(path, [&](std::ostream& os) {
            PyTorchStreamWriter writer([&os](const void* buf, size_t n) -> size_t {
                os.write(static_cast<const char*>(buf), static_cast<std::streamsize>(n));
                return os ? n : 0;
            });
            // The records torch.save (2.x) writes, in its order; `version` and `.data/serialization_id`
            // come from writeEndOfFile().
            writer.writeRecord("data.pkl", pickle.data(), pickle.size());
            writer.writeRecord(".format_version", "1", 1);
            writer.writeRecord(".storage_alignment", "64", 2);
            writer.writeRecord("byteorder", "little", 6);
            static const char empty = 0;
            for (const auto& [key, owner] : p.records) {
                const size_t item = owner.element_size();
                const size_t nbytes = owner.storage().nbytes() / item * item;
                const void* data = nbytes ? owner.storage().data() : &empty;
                writer.writeRecord("data/" + key, data, nbytes);
            }
            writer.writeEndOfFile();
        });
    } catch (const c10::Error& e) {
        throw ModelError(path + ": writing the archive failed (" + first_line(e.what_without_backtrace()) +
                         ")");
    }
}

}  // namespace

TorchFile read_torch_file(const std::string& path) {
    const auto file = MappedFile::open(path);
    check_format(*file);
    std::unique_ptr<PyTorchStreamReader> reader;
    try {
        reader = std::make_unique<PyTorchStreamReader>(std::make_shared<MappedReadAdapter>(file));
    } catch (const c10::Error& e) {
        throw ModelError(path + ": not a valid torch.save zip archive (" +
                         first_line(e.what_without_backtrace()) + ")");
    }
    TorchFile out;
    try {
        if (!reader->hasRecord("data.pkl")) {
            throw ModelError(path +
                             ": zip archive without data.pkl (not written by torch.save; a TorchScript "
                             "or other archive?)");
        }
        if (reader->hasRecord("byteorder")) {
            auto [bo, n] = reader->getRecord("byteorder");
            const std::string order(static_cast<const char*>(bo.get()), n);
            if (order != "little") {
                throw ModelError(path + ": byteorder '" + order + "' is not supported (little-endian only)");
            }
        }
        auto [pkl, pkl_size] = reader->getRecord("data.pkl");
        const StorageLoader loader = [&](const std::string& key, uint64_t nbytes) {
            return load_storage(*reader, *file, key, nbytes);
        };
        UnpickledTensors u = unpickle_tensors(static_cast<const uint8_t*>(pkl.get()), pkl_size, path, loader);
        out.tensor = std::move(u.tensor);
        for (auto& [k, t] : u.items) {
            out.tensors[k] = std::move(t);
        }
        file->check_intact();  // the directory and data.pkl were read from the file as it was when mapped
    } catch (const c10::Error& e) {
        throw ModelError(path + ": reading the archive failed (" + first_line(e.what_without_backtrace()) +
                         ")");
    }
    return out;
}

void write_torch_file(const std::string& path, const TensorMap& tensors, bool ordered_dict) {
    const Prepared p = prepare(path, {tensors.begin(), tensors.end()});
    write_archive(path, pickle_tensor_dict(p.refs, ordered_dict, path), p);
}

void write_torch_tensor(const std::string& path, const at::Tensor& tensor) {
    const Prepared p = prepare(path, {{"tensor", tensor}});
    write_archive(path, pickle_tensor(p.refs.front().second, path), p);
}

}  // namespace flashvsr::models
