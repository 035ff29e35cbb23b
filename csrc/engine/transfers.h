// Host <-> compute-device copies of one stream, counted (tests/gpu_check reports them per chunk).
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <optional>

namespace flashvsr::engine {

/// Bytes a stream copied between host and compute device (input frames, tiny-long's LQ slices, noise,
/// parked tile states, output frames); both 0 on a CPU device.
struct TransferBytes {
    int64_t host_to_device = 0;
    int64_t device_to_host = 0;

    /// t on `device` (and `dtype` when given), counting the bytes when it crosses between host and device.
    at::Tensor to(const at::Tensor& t, at::Device device,
                  std::optional<at::ScalarType> dtype = std::nullopt) {
        if (t.device() != device) {
            if (t.is_cpu() && !device.is_cpu()) {
                host_to_device += static_cast<int64_t>(t.nbytes());
            }
            if (!t.is_cpu() && device.is_cpu()) {
                device_to_host += static_cast<int64_t>(t.nbytes());
            }
        }
        return dtype ? t.to(device, *dtype) : t.to(device);
    }
};

}  // namespace flashvsr::engine
