#include "models/common/params.h"

#include <flashvsr/errors.h>

#include <ATen/ATen.h>

#include <algorithm>
#include <sstream>

#include "csrc/core/md5.h"
#include "models/checkpoint/mapped_file.h"

namespace flashvsr::models {
namespace {

std::string shape_str(at::IntArrayRef s) {
    std::ostringstream os;
    os << "[";
    for (size_t i = 0; i < s.size(); ++i) {
        os << (i ? ", " : "") << s[i];
    }
    os << "]";
    return os.str();
}

}  // namespace

int64_t ParamSpec::numel() const {
    int64_t n = 1;
    for (int64_t d : shape) {
        n *= d;
    }
    return n;
}

void ParamTable::add(std::string name, at::Tensor* slot, std::vector<int64_t> shape) {
    specs_.push_back(ParamSpec{std::move(name), std::move(shape)});
    slots_.push_back(slot);
}

int64_t ParamTable::numel() const { return manifest_numel(specs_); }

void ParamTable::load(const TensorMap& tensors, const std::string& source, const LoadOptions& opts,
                      const std::string& prefix,
                      const std::function<bool(const std::string&)>& ignore) const {
    // Unexpected keys first: they usually mean a wrong file (e.g. a VAE where the DiT was expected).
    std::vector<std::string> claimed;
    claimed.reserve(specs_.size());
    for (const auto& s : specs_) {
        claimed.push_back(prefix + s.name);
    }
    std::sort(claimed.begin(), claimed.end());
    for (const auto& [key, t] : tensors) {
        if (key.compare(0, prefix.size(), prefix) != 0) {
            continue;
        }
        if (ignore && ignore(key)) {
            continue;
        }
        if (!std::binary_search(claimed.begin(), claimed.end(), key)) {
            throw ModelError(source + ": unexpected key '" + key + "' with shape " + shape_str(t.sizes()));
        }
    }
    for (size_t i = 0; i < specs_.size(); ++i) {
        const std::string key = prefix + specs_[i].name;
        const auto it = tensors.find(key);
        if (it == tensors.end()) {
            throw ModelError(source + ": missing key '" + key + "' (expected shape " +
                             shape_str(specs_[i].shape) + ")");
        }
        if (it->second.sizes() != at::IntArrayRef(specs_[i].shape)) {
            throw ModelError(source + ": key '" + key + "' has shape " + shape_str(it->second.sizes()) +
                             ", expected " + shape_str(specs_[i].shape));
        }
        // One conversion at most; .contiguous() so every weight is dense for the kernels.
        *slots_[i] = it->second.to(opts.device, opts.dtype).contiguous();
        if (slots_[i]->data_ptr() == it->second.data_ptr()) {
            *slots_[i] = slots_[i]->clone();  // never keep a read-only view of a mapped file
        }
        release_mapped_pages(it->second);  // the file's pages leave the resident set once copied
    }
}

void ParamTable::zero_init(const LoadOptions& opts) const {
    for (size_t i = 0; i < specs_.size(); ++i) {
        *slots_[i] = at::zeros(specs_[i].shape, at::TensorOptions().dtype(opts.dtype).device(opts.device));
    }
}

void ParamTable::move_to(at::Device device) const {
    for (const std::vector<at::Tensor*>* list : {&slots_, &derived_}) {
        for (at::Tensor* slot : *list) {
            if (slot->defined() && slot->device() != device) {
                *slot = slot->to(device);
            }
        }
    }
}

int64_t ParamTable::bytes() const {
    int64_t n = 0;
    for (const std::vector<at::Tensor*>* list : {&slots_, &derived_}) {
        for (const at::Tensor* slot : *list) {
            n += slot->defined() ? static_cast<int64_t>(slot->nbytes()) : 0;
        }
    }
    return n;
}

int64_t manifest_numel(const std::vector<ParamSpec>& specs) {
    int64_t n = 0;
    for (const auto& s : specs) {
        n += s.numel();
    }
    return n;
}

std::string key_hash(const std::vector<ParamSpec>& specs) {
    std::vector<std::string> items;
    items.reserve(specs.size() * 2);
    for (const auto& s : specs) {
        std::string shape;
        for (size_t i = 0; i < s.shape.size(); ++i) {
            shape += (i ? "_" : "") + std::to_string(s.shape[i]);
        }
        items.push_back(s.name + ":" + shape);
        items.push_back(s.name);
    }
    std::sort(items.begin(), items.end());
    std::string joined;
    for (size_t i = 0; i < items.size(); ++i) {
        joined += (i ? "," : "") + items[i];
    }
    return md5_hex(joined);
}

std::vector<int64_t> require_shape(const TensorMap& tensors, const std::string& key,
                                   const std::string& source) {
    const auto it = tensors.find(key);
    if (it == tensors.end()) {
        throw ModelError(source + ": missing key '" + key + "'");
    }
    return it->second.sizes().vec();
}

}  // namespace flashvsr::models
