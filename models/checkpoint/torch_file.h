// PyTorch `torch.save` files (.ckpt / .pth / .pt) in the zip format (the default since PyTorch 1.6):
// <archive>/data.pkl (pickle protocol 2) + <archive>/data/<key> raw little-endian storages.
#pragma once

#include <ATen/core/Tensor.h>

#include <optional>
#include <string>

#include "models/common/params.h"

namespace flashvsr::models {

/// The contents of one torch.save file: a top-level dict / OrderedDict of tensors fills `tensors`,
/// a bare tensor (e.g. posi_prompt.pth) fills `tensor`.
struct TorchFile {
    TensorMap tensors;
    std::optional<at::Tensor> tensor;
};

/// Reads `path` without executing anything from it: data.pkl runs on a restricted pickle VM that
/// knows only the allow-listed globals torch.save writes for tensors (see torch_pickle.h). Tensors are
/// CPU views (storage offsets and strides kept, several tensors may share one storage) of the
/// memory-mapped file when the storage record is stored uncompressed and aligned (read-only: clone
/// before writing), copies otherwise. Storages saved on another device ('cuda:0') load on the CPU.
/// Dtypes: float32/16/64, bfloat16, int64/32/16/8, uint8, bool, float8_e4m3fn/e5m2.
/// Throws flashvsr::ModelError naming the file for: a forbidden global, a dict value that is not a
/// tensor, a legacy (pre-1.6, non-zip) torch.save file or raw pickle (with how to re-save it), a file
/// that is not a zip, and any inconsistency (missing record, view past its storage, ...).
TorchFile read_torch_file(const std::string& path);

/// Writes `tensors` as torch.save(d, path) does, in key order: `d` an OrderedDict (`ordered_dict`,
/// like model.state_dict()) or a dict. Tensors sharing a storage are written as views of one storage
/// record (offsets and strides kept). Readable by Python's torch.load(path, weights_only=True).
/// Written to a temporary name in the same folder and renamed when complete.
void write_torch_file(const std::string& path, const TensorMap& tensors, bool ordered_dict = true);

/// Writes one tensor as torch.save(t, path) does.
void write_torch_tensor(const std::string& path, const at::Tensor& tensor);

}  // namespace flashvsr::models
