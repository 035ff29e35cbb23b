// safetensors files (https://github.com/huggingface/safetensors, format described in
// the safetensors format): u64 little-endian header length N, N bytes of JSON, data buffer.
#pragma once

#include <ATen/core/Tensor.h>

#include <map>
#include <string>

#include "models/common/params.h"

namespace flashvsr::models {

/// The contents of one safetensors file.
struct SafetensorsFile {
    /// Row-major CPU tensors by key. Zero-copy, read-only views of the memory-mapped file (clone before
    /// writing); a tensor whose bytes are not aligned to its item size is copied instead. The mapping
    /// lives as long as any tensor from it.
    TensorMap tensors;
    /// The optional "__metadata__" string map.
    std::map<std::string, std::string> metadata;
};

/// Reads `path`. Supported dtypes: F64 F32 F16 BF16 I64 I32 I16 I8 U8 BOOL F8_E4M3 F8_E5M2 (raw bits,
/// no conversion). Every header field is checked against the file; any problem (short file, header
/// length, JSON, dtype, shape overflow, offsets outside the buffer, size != numel * itemsize,
/// overlapping spans, duplicate keys) throws flashvsr::ModelError naming the file and the key/value.
SafetensorsFile read_safetensors(const std::string& path);

/// Writes `tensors` (dense, any device, a supported dtype; copied to contiguous CPU bytes) in the
/// reference writer's layout: tensors ordered by descending dtype (size) then name, JSON header padded
/// with spaces to a multiple of 8, "__metadata__" first when `metadata` is not empty. Written to a
/// temporary name in the same folder and renamed when complete.
void write_safetensors(const std::string& path, const TensorMap& tensors,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace flashvsr::models
