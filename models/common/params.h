// Checkpoint contracts shared by the four networks: the tensor map read from files, the table that maps
// checkpoint keys onto a network's weight members, and strict loading with errors naming file and key.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace flashvsr::models {

/// Tensors of one checkpoint file by key (ordered by key). Values may be zero-copy views of a
/// memory-mapped file (read-only: clone before writing).
using TensorMap = std::map<std::string, at::Tensor>;

/// One parameter of a network: its checkpoint key and shape.
struct ParamSpec {
    std::string name;
    std::vector<int64_t> shape;
    int64_t numel() const;
};

/// Where and in which dtype a network keeps its weights.
struct LoadOptions {
    at::ScalarType dtype = at::kFloat;
    at::Device device = at::kCPU;
    /// LQ projector only: run its (4, 3, 3) convolutions in Winograd form (models/common/winograd_conv: 2.25x
    /// fewer multiplications; the weights are transformed per call a block at a time, no bytes held beyond
    /// the checkpoint's) when loaded on the CPU in float32/float64; false runs the direct convolution. (The
    /// TCDecoder's 3x3 convolutions stay direct: oneDNN runs them channels-last at 390-540 GFLOP/s, faster
    /// than this Winograd code.)
    bool winograd = true;
};

/// Maps checkpoint keys to a network's tensor members, in registration (= checkpoint) order.
class ParamTable {
  public:
    /// Registers `slot` under `name` with the expected `shape`.
    void add(std::string name, at::Tensor* slot, std::vector<int64_t> shape);

    const std::vector<ParamSpec>& specs() const { return specs_; }
    size_t size() const { return specs_.size(); }
    int64_t numel() const;

    /// Strict load from `tensors` (keys are looked up as `prefix + name`): a missing key, a key under
    /// `prefix` that no parameter claims (unless `ignore(key)` is true) or a wrong shape throws
    /// flashvsr::ModelError naming `source` (the file), the key and the got/expected shapes.
    /// Each tensor is converted to opts.dtype/opts.device (one copy at most; none when already matching).
    void load(const TensorMap& tensors, const std::string& source, const LoadOptions& opts,
              const std::string& prefix = "",
              const std::function<bool(const std::string&)>& ignore = nullptr) const;

    /// Fills every slot with zeros of its shape (for tests that set weights by hand).
    void zero_init(const LoadOptions& opts) const;

    /// Calls fn(tensor) on every registered slot, in registration order.
    void for_each_slot(const std::function<void(at::Tensor&)>& fn) const {
        for (at::Tensor* slot : slots_) {
            fn(*slot);
        }
    }

    /// Registers a tensor the network derives from its parameters at load (a reordered or transformed form):
    /// not a checkpoint key (load, specs and zero_init ignore it), but moved by move_to and counted by
    /// bytes().
    void add_derived(at::Tensor* slot) { derived_.push_back(slot); }

    /// Moves every (defined) slot's tensor, derived ones included, to `device`, dtype kept; tensors already
    /// there stay as they are.
    void move_to(at::Device device) const;

    /// Bytes of every defined slot, derived ones included: what the network holds.
    int64_t bytes() const;

  private:
    std::vector<ParamSpec> specs_;
    std::vector<at::Tensor*> slots_;
    std::vector<at::Tensor*> derived_;
};

/// Total parameter count of a manifest.
int64_t manifest_numel(const std::vector<ParamSpec>& specs);

/// DiffSynth's model-detection hash: for each entry append "key:d0_d1_..." and "key", sort all strings,
/// join with ",", MD5 as 32 lowercase hex digits.
std::string key_hash(const std::vector<ParamSpec>& specs);

/// Shape of a tensor in `tensors` or a ModelError naming `source` and `key` when absent.
std::vector<int64_t> require_shape(const TensorMap& tensors, const std::string& key,
                                   const std::string& source);

}  // namespace flashvsr::models
