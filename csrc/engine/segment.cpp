// Segments of a video for scale-out (docs/SCALE_OUT.md): which global frames a stream over chunks
// [first_chunk, end_chunk) reads and emits, and where its warm-up starts. The stream side is in stream.cpp
// (State::cold_start_tiles, the warm-up chunks' discarded output).
#include <flashvsr/flashvsr.h>

#include <algorithm>
#include <string>

#include "csrc/engine/frames.h"
#include "csrc/engine/tiling/planner.h"

namespace flashvsr {

void SegmentOptions::validate() const {
    if (first_chunk < 0) {
        throw InputError("segment first_chunk must be >= 0, got " + std::to_string(first_chunk));
    }
    if (end_chunk != -1 && end_chunk <= first_chunk) {
        throw InputError("segment end_chunk must be -1 (to the end) or > first_chunk=" +
                         std::to_string(first_chunk) + ", got " + std::to_string(end_chunk));
    }
    if (warmup_chunks < -1) {
        throw InputError("segment warmup_chunks must be >= 0 (-1 = the replay depth), got " +
                         std::to_string(warmup_chunks));
    }
}

SegmentFrames segment_frames(const SegmentOptions& segment, const UpscaleOptions& options) {
    segment.validate();
    const int64_t w = segment.warmup_chunks >= 0 ? segment.warmup_chunks : engine::replay_chunks(options);
    SegmentFrames f;
    f.warmup_chunk = std::max<int64_t>(0, segment.first_chunk - w);
    // A cold start at chunk j > 0 reads from its decoder condition on (8j+13; the priming frame is 8j+16).
    f.input_begin = f.warmup_chunk == 0 ? 0 : engine::plan_chunk(f.warmup_chunk).cond_begin;
    f.output_begin = engine::plan_chunk(segment.first_chunk).out_begin;
    if (segment.end_chunk >= 0) {
        const engine::ChunkPlan last = engine::plan_chunk(segment.end_chunk - 1);
        f.input_end = last.lq_needed;  // 4 frames past the segment's last output frame
        f.output_end = last.out_end;
    }
    return f;
}

}  // namespace flashvsr
