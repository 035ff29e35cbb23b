// One entry point for the checkpoint formats FlashVSR ships: safetensors and torch.save zip files.
#pragma once

#include <ATen/core/Tensor.h>

#include <string>

#include "models/common/params.h"

namespace flashvsr::models {

/// The tensors of `path`, the reader chosen by content, not by extension: a safetensors header
/// (u64 length, then '{'), a zip archive ("PK", torch.save), or else a clear flashvsr::ModelError
/// (a legacy torch.save pickle gets the re-save hint of read_torch_file). A torch file holding a bare
/// tensor (posi_prompt.pth) gives one entry under the empty key "". Tensors may be read-only views of
/// the memory-mapped file (clone before writing).
TensorMap load_tensors(const std::string& path);

}  // namespace flashvsr::models
