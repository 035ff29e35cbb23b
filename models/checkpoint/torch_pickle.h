// The pickle part of `torch.save` files (the `data.pkl` record of the zip): a restricted unpickler
// (torch_unpickle.cpp) that understands only what torch.save emits for tensors and (Ordered)dicts of
// tensors, and a pickler (torch_pickle.cpp) that emits the same. Internal to models/checkpoint
// (torch_file.cpp is the user).
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace flashvsr::models {

/// A dtype torch files can hold: its legacy typed-storage class and its dtype global.
struct TorchDtype {
    at::ScalarType type;
    const char* storage;  // torch.<storage> class for _rebuild_tensor_v2, or nullptr (UntypedStorage + v3)
    const char* name;     // torch.<name> dtype global (v3)
};

/// The dtypes the reader and writer support (float32/16/64, bfloat16, int64/32/16/8, uint8, bool,
/// float8_e4m3fn/e5m2).
const std::vector<TorchDtype>& torch_dtypes();

/// The entry of `t` or a flashvsr::ModelError naming `source`.
const TorchDtype& torch_dtype(at::ScalarType t, const std::string& source);

/// Returns the bytes of the storage record `key` (data/<key> in the zip) as an untyped storage of at
/// least `nbytes` bytes; called once per key (the unpickler caches the result, so tensors naming the
/// same key share one storage).
using StorageLoader = std::function<c10::Storage(const std::string& key, uint64_t nbytes)>;

/// What data.pkl holds: a single tensor, or a (Ordered)dict of tensors in pickle order.
struct UnpickledTensors {
    std::optional<at::Tensor> tensor;
    std::vector<std::pair<std::string, at::Tensor>> items;
    bool is_dict = false;
};

/// Runs the restricted pickle VM over `data` (opcodes of protocols 2-4 that torch.save uses).
/// Only allow-listed globals are accepted (collections.OrderedDict, torch._utils._rebuild_tensor_v2/_v3,
/// torch._utils._rebuild_parameter, torch.<Dtype>Storage, torch.storage.UntypedStorage, torch.<dtype>);
/// nothing from the file is ever called or imported. Errors are flashvsr::ModelError starting with
/// `source` (the file path).
UnpickledTensors unpickle_tensors(const uint8_t* data, size_t size, const std::string& source,
                                  const StorageLoader& load_storage);

/// One tensor to pickle: a view (`offset`, `sizes`, `strides` in elements) of the storage record
/// `storage_key` holding `storage_numel` elements of `dtype`.
struct PickledTensorRef {
    std::string storage_key;
    at::ScalarType dtype;
    uint64_t storage_numel;
    int64_t offset;
    std::vector<int64_t> sizes, strides;
};

/// True when torch.save writes `dtype` with a typed storage (torch.<Dtype>Storage, _rebuild_tensor_v2)
/// and false when with torch.storage.UntypedStorage (_rebuild_tensor_v3; float8). Throws for dtypes
/// the writer does not support.
bool has_typed_storage(at::ScalarType dtype, const std::string& source);

/// data.pkl for a dict (`ordered_dict`: collections.OrderedDict, like model.state_dict()) of tensors
/// in the given order, as torch.save (protocol 2) writes it.
std::string pickle_tensor_dict(const std::vector<std::pair<std::string, PickledTensorRef>>& items,
                               bool ordered_dict, const std::string& source);

/// data.pkl for a single tensor.
std::string pickle_tensor(const PickledTensorRef& t, const std::string& source);

}  // namespace flashvsr::models
