// flashvsr — FlashVSR (one-step diffusion streaming video super-resolution) as a C++ engine.
//
//   #include <flashvsr/flashvsr.h>
//
//   flashvsr::EngineOptions eo;
//   eo.model_dir = "models/FlashVSR-v1.1";              // version from the folder name (or eo.version)
//   auto engine = flashvsr::Engine::load(eo);           // weights, loaded once, shareable
//   flashvsr::UpscaleOptions uo;                        // scale 4, adain colour fix, seed 0, ...
//   at::Tensor out = engine->upscale(frames, uo);       // [F,H,W,3] in [0,1] -> float32 [F,4H,4W,3]
//
//   flashvsr::Stream s = engine->stream(uo);             // long videos in bounded memory:
//   while (read(batch)) { s.push(batch); emit(s.pull()); }
//   s.finish(); emit(s.pull());                          // N frames in, N frames out
//
// Errors: every library error derives from flashvsr::Error (InputError: bad input, naming the file,
// parameter or value; ModelError: model folder/checkpoint; Cancelled); tensor-contract violations throw
// c10::Error. Library code never aborts or exits.
// Thread safety: an Engine is immutable after load (except Engine::to, which needs it unshared) and may be
// shared by threads and streams; a Stream is used by one thread at a time. The free functions are
// thread-safe.
#pragma once

#include <ATen/core/Tensor.h>

#include <flashvsr/errors.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace flashvsr {

/// The library version, e.g. "0.1.0".
const char* version();

/// What this build was compiled with and what the running machine offers.
struct BuildInfo {
    std::string version;          // flashvsr version
    std::string torch;            // LibTorch version compiled against, e.g. "2.13.0"
    bool cuda_compiled = false;   // the CUDA kernels of kernels/ are in this build
    std::string cuda_archs;       // architectures they were compiled for, e.g. "8.0+PTX"
    bool cuda_available = false;  // a CUDA device is usable right now (false without GPU or driver)
    int cuda_device_count = 0;
    std::string libavcodec;  // runtime versions of the FFmpeg libraries, "59.37.100"
    std::string libavformat;
    std::string libavutil;
    std::string libswscale;
    std::string libswresample;
    std::string opencv;    // OpenCV runtime version, "4.6.0"
    std::string compiler;  // e.g. "GCC 12.2.0"
};

/// Collects the build information (queries the CUDA runtime lazily; never throws for a missing GPU).
BuildInfo build_info();

/// The same as a JSON object (keys as the struct fields; "ffmpeg" is a nested object).
std::string build_info_json(const BuildInfo& info, int indent = 2);

// ---- engine --------------------------------------------------------------------------------------------

/// How to load the model. Defaults are what a user without opinions wants.
struct EngineOptions {
    std::string model_dir;                // folder with the published files (FlashVSR/ or FlashVSR-v1.1/)
    std::string version;                  // "" = from the folder's manifest, else its name; "v1.0" | "v1.1"
    std::string mode = "tiny";            // "tiny" | "tiny-long" (TCDecoder) | "full" (Wan VAE decoder)
    std::string device = "auto";          // "auto" (cuda if available, else cpu) | "cpu" | "cuda" | "cuda:N"
    std::string dtype = "auto";           // "auto" (bf16 on cuda, fp32 on cpu) | "bf16" | "fp16" | "fp32" |
                                          // "int8" (opt-in: DiT linears in int8, the rest as "auto")
    bool legacy_v10_cache_order = false;  // reproduce the official v1.0 LQ-projector cache order (opt-in)
    int64_t head_dim = 128;               // DiT head width (not derivable from the weights)

    /// Throws InputError naming the option and value when one is invalid.
    void validate() const;
    std::string to_string() const;
};

/// How to upscale one video.
struct UpscaleOptions {
    int64_t scale = 4;                // 2, 3 or 4
    std::string color_fix = "adain";  // "adain" | "wavelet" | "none"
    double sparse_ratio = 2.0;        // LCSA top-k budget (1.5 = faster)
    double kv_ratio = 3.0;            // K/V window length in 2-latent-frame slices (int part is used)
    int64_t local_range = 11;         // LCSA locality window in 8x8-token windows (odd)
    uint64_t seed = 0;                // noise seed
    // Tiling (docs/TILING.md). Tiles are cut from the prepared (x s, 128-grid padded) frame: a tile is
    // ceil(tile_size * s) output pixels rounded up to a multiple of 128, its origin on the 16-pixel grid;
    // neighbours overlap by at least ceil(tile_overlap * s) output pixels rounded up to 16.
    int64_t tile_size = 0;     // input pixels; 0 = automatic (one tile, or the max_memory planner's choice)
    int64_t tile_overlap = 0;  // input pixels; 0 = automatic (tile/8 output pixels, at least 32)
    int64_t max_memory = 0;  // bytes for weights + working set (device memory on CUDA, RSS on CPU); 0 = none
    // Park each tile's state (K/V windows, LQ caches, decoder memory) in host memory between its chunks, so
    // the device holds one tile's state at a time: "auto" (on for CUDA with > 1 tile when max_memory needs
    // it, or after an out-of-memory fallback), "on" (any device; on CPU a forced copy), "off".
    std::string park_tile_state = "auto";

    void validate() const;
    std::string to_string() const;
};

/// Advanced (scale-out, docs/SCALE_OUT.md): a stream that computes only chunks [first_chunk, end_chunk) of a
/// longer video, in the video's global numbering (chunk 0 emits frames 0..20, chunk k >= 1 frames 8k+13 ..
/// 8k+20). It starts `warmup_chunks` chunks before first_chunk, cold (the out-of-memory replay's start,
/// docs/TILING.md: empty K/V windows, zero decoder memory, LQ projector primed on one frame) with the global
/// chunk counter, RoPE positions and noise keys, and discards the warm-up chunks' output. A segment whose
/// warm-up reaches chunk 0 is exact: its frames equal the whole-video stream's bit for bit.
struct SegmentOptions {
    int64_t first_chunk = 0;  // first chunk whose frames are emitted
    int64_t end_chunk = -1;   // one past the last chunk emitted; -1 = to the end of the video
    int64_t warmup_chunks =
        -1;  // chunks run first with output discarded; -1 = the replay depth (6 for kv_ratio 3)

    void validate() const;
};

/// Global frame ranges (half-open) of a segment: push frames [input_begin, input_end) (input_end -1: to
/// the end of the video; frames pushed past input_end are ignored); the stream emits frames
/// [output_begin, output_end) (output_end -1: to the end), clipped to the video's length.
struct SegmentFrames {
    int64_t warmup_chunk = 0;  // the first chunk run (cold-started there unless 0)
    int64_t input_begin = 0, input_end = -1;
    int64_t output_begin = 0, output_end = -1;
};
SegmentFrames segment_frames(const SegmentOptions& segment, const UpscaleOptions& options);

/// Progress callback: frames finished so far and the total (-1 while unknown); return false to cancel.
using ProgressFn = std::function<bool(int64_t done, int64_t total)>;

/// Cancels work from another thread; checked at least once per chunk.
class CancelToken {
  public:
    void cancel() { flag_.store(true); }
    bool cancelled() const { return flag_.load(); }

  private:
    std::atomic<bool> flag_{false};
};

/// What was loaded.
struct EngineInfo {
    std::string model_dir;
    std::string version;         // "v1.0" | "v1.1"
    std::string version_source;  // "option" | "manifest" | "folder name"
    std::string mode;
    std::string device;  // e.g. "cpu", "cuda:0"
    std::string dtype;   // "bf16" | "fp16" | "fp32" | "int8"
    std::vector<std::string> files;
    std::vector<std::string> warnings;  // e.g. mixed v1.0/v1.1 files
    /// Bytes of every tensor the engine holds for its networks: the checkpoints' parameters in the compute
    /// dtype plus what it derives from them at load (the decoder's phase weights; the prompt's K/V
    /// constants; the LQ projector's Winograd form is made per call, a block at a time, and not held).
    int64_t weight_bytes = 0;
    /// Bytes of the checkpoints' parameters alone in the compute dtype (int8: the DiT's quantized linears
    /// and their scales, the rest in the compute dtype): what a PyTorch pipeline of the same networks holds
    /// as its weights, so "peak RSS - checkpoint_bytes" compares with such a pipeline's working set.
    int64_t checkpoint_bytes = 0;
};

/// Process memory now (RSS from /proc/self/status) and, on CUDA, the caching allocator's counters.
struct MemoryReport {
    int64_t rss_bytes = 0;             // VmRSS
    int64_t peak_rss_bytes = 0;        // VmHWM
    bool cuda = false;                 // the CUDA figures below are valid (CUDA build and a device present)
    int64_t cuda_allocated_bytes = 0;  // current device, tensors alive
    int64_t cuda_reserved_bytes = 0;   // current device, held by the caching allocator
    int64_t cuda_peak_allocated_bytes = 0;  // since the process started (or the allocator's last reset)
};

/// Never throws for a missing GPU (cuda = false then).
MemoryReport memory_report();

/// A tile of the padded output frame (output pixels), as laid out by a stream.
struct TileRect {
    int64_t top = 0, left = 0, height = 0, width = 0;
};

class Stream;

/// The loaded networks (immutable, shareable). Create with Engine::load; destroying the last reference
/// (the Engine and every Stream made from it) frees the weights.
class Engine {
  public:
    struct Impl;

    static std::shared_ptr<Engine> load(const EngineOptions& options);

    const EngineInfo& info() const;
    /// memory_report() (the process: every engine in it).
    MemoryReport memory() const;

    /// Moves the weights and the prompt constants to `device` ("cpu", "cuda", "cuda:N", "auto") without
    /// reading the model folder; the compute dtype stays, info().device follows. ComfyUI offloads an idle
    /// model to host RAM with it and brings it back for the next run. No-op when already there. Throws
    /// InputError while a Stream made from this engine is alive (its caches live on the current device):
    /// finish and destroy streams first. OutOfMemory when the device cannot hold the weights (the engine
    /// then stays where it was). Not to be called concurrently with other calls on this engine.
    void to(const std::string& device);

    /// A new stream (its own caches, decoder memory and noise).
    Stream stream(const UpscaleOptions& options) const;
    /// A stream over one segment of a video (SegmentOptions; push the frames segment_frames() names).
    Stream stream(const UpscaleOptions& options, const SegmentOptions& segment) const;

    /// frames [F, H, W, 3] (float in [0, 1] or uint8, any device) -> float32 [F, H*s, W*s, 3] in [0, 1] on
    /// the CPU; F >= 1 frames in, F out. `progress` and `cancel` are checked once per chunk; cancelling
    /// throws flashvsr::Cancelled.
    at::Tensor upscale(const at::Tensor& frames, const UpscaleOptions& options,
                       const ProgressFn& progress = {}, const CancelToken* cancel = nullptr) const;

    explicit Engine(std::shared_ptr<const Impl> impl);
    /// The loaded networks (opaque outside the library's engine).
    const Impl& impl() const { return *impl_; }

  private:
    std::shared_ptr<const Impl> impl_;
};

/// One video (or tile) in flight: LQ-projector caches, DiT K/V windows, decoder memory, noise position and
/// pending frames. Memory stays flat however long the video is. Move-only; destroying it frees all state.
class Stream {
  public:
    struct State;

    Stream(std::shared_ptr<const Engine::Impl> engine, const UpscaleOptions& options,
           const SegmentOptions& segment = {});
    ~Stream();
    Stream(Stream&&) noexcept;
    Stream& operator=(Stream&&) noexcept;

    /// Appends low-res frames [n, H, W, 3] (float [0, 1] or uint8; same H, W every time) and runs every
    /// chunk that has become possible. Float frames holding NaN or ±Inf are refused (InputError naming the
    /// first such frame) before anything changes.
    void push(const at::Tensor& frames);
    /// Finished frames so far, float32 [m, H*s, W*s, 3] in [0, 1] on the CPU (m may be 0); each frame once.
    at::Tensor pull();
    /// No more input: pads the tail with copies of the last frame, runs the remaining chunks. After
    /// finish(), pull() returns the rest, so that exactly as many frames come out as went in.
    void finish();

    void set_progress(ProgressFn progress);
    void set_cancel(const CancelToken* cancel);
    /// Parity runs: noise for latent frames [t0, t0+nt) of the whole (padded) latent grid, [1,16,nt,h,w].
    void set_noise_provider(std::function<at::Tensor(int64_t t0, int64_t nt)> provider);

    int64_t frames_pushed() const;  // frames pushed to this stream (a segment's warm-up frames included)
    int64_t frames_done() const;    // frames emitted so far (a segment's own frames only)
    int64_t chunks_done() const;    // the global index of the next chunk to run
    /// Bytes of the per-stream state (every tile's K/V windows, LQ caches, decoder memory, on the device or
    /// parked; pending LQ frames). The replay buffer is not included (replay_buffer_bytes()).
    int64_t state_bytes() const;
    /// The tile layout in use over the padded output frame (empty before the first push; one tile when
    /// not tiled). The out-of-memory fallback may replace it by smaller tiles at any chunk.
    std::vector<TileRect> tiles() const;
    /// Bytes of one tile's state on the compute device (index into tiles()); 0 while it is parked.
    int64_t tile_state_bytes(int64_t tile) const;
    /// Bytes of one tile's state parked in host memory (0 unless parking is on and the tile is not running).
    int64_t tile_parked_bytes(int64_t tile) const;
    /// Whether tile states are parked on the host between their chunks (see UpscaleOptions::park_tile_state).
    bool parks_tile_state() const;
    /// Bytes of the replay buffer: the most recent raw input frames (host copies, input dtype) kept so that
    /// an out-of-memory error after the first chunk can re-tile and rebuild the tiles' state
    /// (docs/TILING.md). Constant once the stream is past its first few chunks; 0 when the tiles cannot be
    /// made smaller.
    int64_t replay_buffer_bytes() const;

    /// The stream's state (opaque outside the library's engine).
    State& state() { return *s_; }
    const State& state() const { return *s_; }

  private:
    std::unique_ptr<State> s_;
};

}  // namespace flashvsr
