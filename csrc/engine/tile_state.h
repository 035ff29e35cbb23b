// Per-tile streaming state (docs/TILING.md): the caches one tile carries from one chunk to the next,
// and parking them on the host between the tile's chunks so that only the running tile's state occupies the
// compute device.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>

#include <flashvsr/flashvsr.h>

#include "models/dit.h"
#include "models/lq_proj.h"
#include "models/tc_decoder.h"
#include "models/vae_decoder.h"

namespace flashvsr::engine {

/// Everything one tile carries between chunks (MODEL.md §8). The untiled run is the one-tile case.
struct TileState {
    models::LQProjState lq;      // LQ-projector conv caches + clip counter
    models::DiTState dit;        // per-block K/V windows + chunk counter (RoPE offset)
    models::TCDecoderState tc;   // TCDecoder MemBlock memories (tiny, tiny-long)
    models::VAEDecodeState vae;  // Wan VAE causal-conv caches (full)

    int64_t bytes() const;
    /// Calls `f` on every cache tensor slot (defined or not), e.g. to move them.
    void for_each_tensor(const std::function<void(at::Tensor&)>& f);
    /// Every state empty, as for the first chunk of a video.
    void reset();
    /// Every state cold at global chunk `chunk` (replay after re-tiling, docs/TILING.md): empty caches, the
    /// chunk's RoPE offset, decoder memory zero without trimming, LQ projector primed by its next call.
    void cold_start(int64_t chunk);
};

/// One tile: its rectangle and its state, which lives in exactly one of two places: `state` on the compute
/// device (always while the tile runs) or `parked` on the host (between its chunks, when parking is on).
struct TileCore {
    TileRect rect;
    TileState state;   // on the compute device; empty while parked
    TileState parked;  // on the host; empty unless parked
    bool is_parked = false;
};

/// Moves the tile's state to `host` memory: every cache tensor is copied into new host storage (pinned
/// memory and a non-blocking copy when the state is on a CUDA device) and the device tensors are released;
/// the counters move along. On a CPU compute device this is a forced copy (new storages), which makes the
/// parked run testable without a GPU. No-op when already parked.
void park(TileCore& tile, at::Device host);
/// The reverse: the state back on `compute` (non-blocking from pinned memory); no-op when not parked.
void unpark(TileCore& tile, at::Device compute);

}  // namespace flashvsr::engine
