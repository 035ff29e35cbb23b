// libFuzzer harness: a whole checkpoint file through load_tensors (format by content; torch.save zip archives
// through LibTorch's zip reader and our restricted unpickler, models/checkpoint/torch_file + torch_unpickle).
#include <flashvsr/flashvsr.h>

#include "fuzz/fuzz_common.h"
#include "models/checkpoint/load.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const flashvsr::fuzz::MemFile file(data, size);
    try {
        for (const auto& [key, t] : flashvsr::models::load_tensors(file.path())) {
            flashvsr::fuzz::check_tensor(t, key);
        }
    } catch (const flashvsr::Error&) {
    }
    return 0;
}
