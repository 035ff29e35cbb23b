// The tile runner of one stream: runs a chunk of the schedule over every tile (each with its own state,
// parked on the host between its chunks when planned so), blends the tiles into the chunk's canvas, and
// recovers from out-of-memory errors by re-tiling smaller and replaying the last chunks from cold-started
// tile states (docs/TILING.md). It owns the layout, the tile cores and the test hooks; the frames it reads
// come from the stream (ChunkInputs).
#pragma once

#include <ATen/core/Tensor.h>

#include <flashvsr/flashvsr.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "csrc/engine/frames.h"
#include "csrc/engine/stream_access.h"
#include "csrc/engine/tile_state.h"
#include "csrc/engine/tiling/planner.h"
#include "csrc/engine/transfers.h"
#include "models/dit.h"

namespace flashvsr::engine {

/// What one chunk reads, full frame (the runner crops each tile's part).
struct ChunkInputs {
    std::vector<at::Tensor> clips;  // LQ-projector clips [1, 3, f, Hp, Wp] (LQ device), in call order
    at::Tensor cond;                // LQ frames [1, 3, n, Hp, Wp] on the compute device (decoder, colour fix)
    at::Tensor noise;               // provided noise [1, 16, nt, Hp/8, Wp/8], or undefined: keyed noise
};

/// Builds chunk c's inputs; `prime`: the tiles start cold at c, so the clips begin with the one-frame
/// priming call on the frame before c's first clip.
using ChunkInputsFn = std::function<ChunkInputs(const ChunkPlan& c, bool prime)>;

class TileRunner {
  public:
    TileRunner(const Engine::Impl& engine, const UpscaleOptions& options, TransferBytes& transfers);

    /// A new layout with fresh (reset) tile cores; every previous tile state is dropped.
    void set_plan(TilePlan plan);

    /// Chunk c over every tile, blended into a float32 canvas [n, Hp, Wp, 3] on the compute device. On an
    /// out-of-memory error: smaller tiles, fresh cores, and after chunk 0 their state rebuilt by
    /// replay_to(c) with `inputs_of` (OutOfMemory when the tiles are already the smallest).
    at::Tensor run(const ChunkPlan& c, const ChunkInputs& in, const ChunkInputsFn& inputs_of);

    /// Every tile starts cold at global chunk j: the chunk counter, RoPE positions and noise keys of chunk j,
    /// empty K/V windows, zero decoder memory, the LQ projector primed on the frame before j's first clip
    /// (ChunkInputsFn's `prime`). j = 0 is an ordinary start.
    void start_cold_at(int64_t j);
    /// Brings fresh tile cores to chunk k: start_cold_at(j = replay_start(k)), then chunks j .. k-1 re-run
    /// with their outputs discarded.
    void replay_to(int64_t k, const ChunkInputsFn& inputs_of);
    /// The stream's first chunk (a segment's warm-up chunk, 0 for a whole video): the tiles start cold there
    /// when it is > 0, and no replay reaches before it (the stream has no frames from before).
    void set_first_chunk(int64_t c) { first_chunk_ = c; }
    /// First chunk a replay for an out-of-memory error in chunk `k` runs: max(first chunk, k - R).
    int64_t replay_start(int64_t k) const;
    /// R: chunks replayed after a re-tiling (replay_chunks(options) unless a test hook overrides it).
    int64_t replay_chunks() const;
    /// First frame a replay for an out-of-memory error in chunk `k` (or later) reads.
    int64_t replay_first_frame(int64_t k) const;

    /// Whether the out-of-memory fallback can still make the tiles smaller.
    bool can_shrink() const;
    const TileLayout& layout() const { return layout_; }
    const std::vector<TileCore>& tiles() const { return tiles_; }
    bool parks() const { return park_; }
    int64_t oom_fallbacks() const { return oom_fallbacks_; }
    const TilingHooks& hooks() const { return hooks_; }
    void set_hooks(TilingHooks hooks) { hooks_ = std::move(hooks); }

  private:
    void trim_heap_on_cpu() const;  // trim_host_heap() between the networks of a CPU chunk
    /// One chunk of one tile: raw decoded frames [1, 3, n, th, tw] in ~[-1, 1] (compute dtype, unclamped).
    at::Tensor run_tile(TileCore& core, const ChunkPlan& c, const ChunkInputs& in);
    /// Every tile's chunk c blended into `canvas` [n, Hp, Wp, 3] (float32), in index order; `canvas` (given
    /// undefined) is made zero at the first blend, after the first tile's decoder has returned.
    void run_tiles(const ChunkPlan& c, const ChunkInputs& in, at::Tensor& canvas);
    std::string describe_layout() const;

    const Engine::Impl& eng_;
    const UpscaleOptions& opt_;
    TransferBytes& transfers_;
    models::AttentionOptions attn_;
    TileLayout layout_;
    std::vector<TileCore> tiles_;
    bool park_ = false;  // tile states wait in host memory between their chunks
    TilingHooks hooks_;
    int64_t oom_fallbacks_ = 0;  // out-of-memory errors the fallback caught
    int64_t first_chunk_ = 0;    // set_first_chunk
};

}  // namespace flashvsr::engine
