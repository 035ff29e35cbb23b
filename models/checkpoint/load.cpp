#include "models/checkpoint/load.h"

#include <flashvsr/errors.h>

#include <cstring>
#include <fstream>

#include "models/checkpoint/safetensors.h"
#include "models/checkpoint/torch_file.h"

namespace flashvsr::models {

TensorMap load_tensors(const std::string& path) {
    unsigned char head[9] = {};
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        throw ModelError(path + ": cannot open");
    }
    in.read(reinterpret_cast<char*>(head), sizeof(head));
    const auto got = static_cast<size_t>(in.gcount());
    in.close();
    if (got >= 2 && head[0] == 'P' && head[1] == 'K') {
        TorchFile f = read_torch_file(path);
        if (f.tensor) {
            return TensorMap{{"", *f.tensor}};
        }
        return std::move(f.tensors);
    }
    if (got >= 1 && head[0] == 0x80) {  // a pickle: read_torch_file throws, explaining legacy files
        (void)read_torch_file(path);
    }
    if (got == 9 && head[8] == '{') {
        return std::move(read_safetensors(path).tensors);
    }
    throw ModelError(path + ": unknown checkpoint format (neither safetensors nor a torch.save zip archive)");
}

}  // namespace flashvsr::models
