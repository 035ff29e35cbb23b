// The LQ window of one stream: the frames pushed and not yet prepared, the prepared full LQ frames the next
// chunks read (<= 25), the tail padding after finish(), and the replay buffer of raw input frames that the
// out-of-memory fallback re-prepares when it rebuilds the tiles' state (docs/TILING.md).
#pragma once

#include <ATen/core/Tensor.h>

#include <flashvsr/flashvsr.h>

#include <cstdint>
#include <deque>

#include "csrc/engine/prep.h"
#include "csrc/engine/transfers.h"

namespace flashvsr::engine {

class LqWindow {
  public:
    /// Frames are prepared on the engine's device in its dtype (x `scale`), and kept on the host when the
    /// engine says so (tiny-long). Copies between host and device are counted in `transfers`.
    LqWindow(const Engine::Impl& engine, int64_t scale, TransferBytes& transfers);

    /// The first frames' geometry: the 128-grid padding of the upscaled frame, and whether the replay
    /// buffer is kept (the tiles can still shrink). Called once, before the first push.
    void start(const GridPadding& pad, bool keep_replay);
    /// A segment's window (scale-out): the first frame pushed is global frame `first`, and frames from `end`
    /// on (-1: none) are counted but not kept (no chunk of the segment reads them). Before the first push.
    void set_range(int64_t first, int64_t end);
    /// Appends frames [n, H, W, 3] (views of the caller's batch until prepared).
    void push(const at::Tensor& frames);
    /// The input ended: frames [pushed(), fed) are copies of the last prepared frame (tail padding).
    void finish(int64_t fed);

    int64_t pushed() const { return pushed_; }
    /// Frames the chunks may read: pushed ones, and after finish() the tail padding as well.
    int64_t available() const { return fed_ >= 0 ? fed_ : pushed_; }

    /// Prepared frames [b, e) -> [1, 3, e-b, Hp, Wp] (compute dtype, on the LQ device). Frames before the
    /// window come from the replay buffer, prepared again (the same computation on the same raw frame).
    at::Tensor slice(int64_t b, int64_t e);
    /// The chunks read from `index` on: earlier prepared frames are dropped.
    void drop_before(int64_t index);

    /// The tiles cannot shrink any more: the replay buffer is released at the next trim_replay().
    void stop_replay() { keep_replay_ = false; }
    /// Drops replay frames before `first_frame` (all of them once stop_replay() was called).
    void trim_replay(int64_t first_frame);

    /// Bytes of the prepared frames (padding copies share one storage, counted once).
    int64_t bytes() const;
    /// Bytes of the replay buffer.
    int64_t replay_bytes() const;
    /// Frees every frame (end of the stream).
    void clear();

  private:
    at::Tensor prepare_one(const at::Tensor& frame);  // [h,w,3] -> [3,Hp,Wp]
    void ensure(int64_t end);                         // prepared frames up to `end`
    at::Tensor prepared(int64_t i);

    const Engine::Impl& eng_;
    int64_t scale_;
    TransferBytes& transfers_;
    GridPadding pad_;
    std::deque<at::Tensor> raw_;  // as pushed, not yet prepared
    int64_t raw_base_ = 0;        // index of raw_.front()
    // Replay buffer: host copies of the raw frames [ring_base_, ...) already prepared, as far back as a
    // replay reads. Kept while the layout can still shrink.
    std::deque<at::Tensor> ring_;
    int64_t ring_base_ = 0;  // index of ring_.front()
    bool keep_replay_ = false;
    std::deque<at::Tensor> lq_;  // prepared full LQ frames [3, Hp, Wp] (compute dtype)
    int64_t lq_base_ = 0;        // index of lq_.front()
    at::Tensor last_lq_;         // the last real prepared frame: the tail padding repeats it
    int64_t pushed_ = 0;         // global index of the next frame pushed
    int64_t end_ = -1;           // frames from here on are not kept (-1: all are)
    int64_t fed_ = -1;           // frames fed to the chunks, known after finish()
};

}  // namespace flashvsr::engine
