// Per-tile state and parking (see tile_state.h, docs/TILING.md).
#include "csrc/engine/tile_state.h"

#include <ATen/ATen.h>

namespace flashvsr::engine {
namespace {

/// A copy of `t` in new storage on `device`. Host copies of CUDA tensors go to pinned memory with a
/// non-blocking copy (ordered on the current stream before any later use of the state); copies from pinned
/// host memory to CUDA are non-blocking too (the caching host allocator keeps the block until they finish).
at::Tensor copy_to(const at::Tensor& t, at::Device device) {
    if (!t.defined()) {
        return t;
    }
    const bool pin = device.is_cpu() && t.is_cuda();
    const bool non_blocking = pin || (device.is_cuda() && t.is_cpu() && t.is_pinned());
    at::Tensor out = at::empty(t.sizes(), t.options().device(device).pinned_memory(pin));
    out.copy_(t, non_blocking);
    return out;
}

void move_state(TileState& from, TileState& to, at::Device device) {
    to = from;  // counters and tensor handles
    to.for_each_tensor([&](at::Tensor& t) { t = copy_to(t, device); });
    from = TileState{};  // releases the source storages
}

}  // namespace

int64_t TileState::bytes() const { return lq.bytes() + dit.bytes() + tc.bytes() + vae.bytes(); }

void TileState::for_each_tensor(const std::function<void(at::Tensor&)>& f) {
    lq.for_each_tensor(f);
    dit.for_each_tensor(f);
    tc.for_each_tensor(f);
    vae.for_each_tensor(f);
}

void TileState::reset() {
    lq.reset();
    dit.reset();
    tc.reset();
    vae.reset();
}

void TileState::cold_start(int64_t chunk) {
    lq.cold_start();
    dit.cold_start(chunk);
    tc.cold_start();
    vae.cold_start();
}

void park(TileCore& tile, at::Device host) {
    if (tile.is_parked) {
        return;
    }
    move_state(tile.state, tile.parked, host);
    tile.is_parked = true;
}

void unpark(TileCore& tile, at::Device compute) {
    if (!tile.is_parked) {
        return;
    }
    move_state(tile.parked, tile.state, compute);
    tile.is_parked = false;
}

}  // namespace flashvsr::engine
