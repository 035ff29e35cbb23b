// libFuzzer harness: the restricted unpickler (models/checkpoint/torch_unpickle) with arbitrary data.pkl
// bytes inside a valid torch.save zip archive (the zip's CRCs would stop most mutations of a whole file
// before the pickle is read). The archive holds the storage records data/0 .. data/7 of 256 bytes each.
#include <flashvsr/flashvsr.h>

#include <caffe2/serialize/inline_container.h>

#include <string>

#include "fuzz/fuzz_common.h"
#include "models/checkpoint/torch_file.h"

namespace {

std::string archive_with_pickle(const uint8_t* data, size_t size) {
    std::string out;
    caffe2::serialize::PyTorchStreamWriter writer([&out](const void* buf, size_t n) -> size_t {
        out.append(static_cast<const char*>(buf), n);
        return n;
    });
    static const std::string storage = [] {
        std::string s(256, '\0');
        for (size_t i = 0; i < s.size(); ++i) {
            s[i] = static_cast<char>(i * 37 + 11);
        }
        return s;
    }();
    writer.writeRecord("data.pkl", data, size);
    writer.writeRecord("byteorder", "little", 6);
    for (int k = 0; k < 8; ++k) {
        writer.writeRecord("data/" + std::to_string(k), storage.data(), storage.size());
    }
    writer.writeEndOfFile();
    return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string zip = archive_with_pickle(data, size);
    const flashvsr::fuzz::MemFile file(reinterpret_cast<const uint8_t*>(zip.data()), zip.size());
    try {
        const auto f = flashvsr::models::read_torch_file(file.path());
        if (f.tensor) {
            flashvsr::fuzz::check_tensor(*f.tensor, "");
        }
        for (const auto& [key, t] : f.tensors) {
            flashvsr::fuzz::check_tensor(t, key);
        }
    } catch (const flashvsr::Error&) {
    }
    return 0;
}
