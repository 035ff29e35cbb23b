// libFuzzer harness: the safetensors reader (models/checkpoint/safetensors) on arbitrary bytes.
#include <flashvsr/flashvsr.h>

#include "fuzz/fuzz_common.h"
#include "models/checkpoint/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const flashvsr::fuzz::MemFile file(data, size);
    try {
        const auto st = flashvsr::models::read_safetensors(file.path());
        for (const auto& [key, t] : st.tensors) {
            flashvsr::fuzz::check_tensor(t, key);
            if (!t.is_contiguous()) {
                flashvsr::fuzz::fail("tensor '" + key + "' is not contiguous");
            }
        }
    } catch (const flashvsr::Error&) {
    }
    return 0;
}
