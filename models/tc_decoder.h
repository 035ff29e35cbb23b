// The Tiny Conditional Decoder (MODEL.md §4): TAEHV's decoder, widened and conditioned on the
// pixel-unshuffled LQ frames; DiT latents -> RGB frames, ×8 in space and ×4 in time. Streaming memory (the
// previous-step input of each of the 9 MemBlocks) lives in TCDecoderState.
#pragma once

#include <ATen/core/Tensor.h>

#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "models/common/params.h"

namespace flashvsr::models {

/// Widths of the TCDecoder, read from the checkpoint shapes (MODEL.md §1.4).
struct TCDecoderConfig {
    /// n_f: stage widths (decoder.1/10/16/22 outputs)
    std::array<int64_t, 4> channels{512, 256, 128, 128};
    /// DiT latent channels
    int64_t latent_channels = 16;
    /// 3·4·8·8: the (4,8,8) unshuffle of the LQ frames
    int64_t cond_channels = 768;

    /// From decoder.1/10/16/22.weight; cond_channels is fixed by the unshuffle geometry and the latent
    /// channels are the rest of decoder.1's input. A missing key throws ModelError naming `source`.
    static TCDecoderConfig from_tensors(const TensorMap& tensors, const std::string& source);
    /// "tiny" [64,32,16,16], "small" [128,64,32,32], "full" [512,256,128,128]; else InputError.
    static TCDecoderConfig preset(const std::string& size);
};

/// Streaming memory of one decoder stream (MODEL.md §8): the input of each MemBlock at the previous
/// time step, named by the MemBlock's checkpoint index. Fixed size after the first call.
struct TCDecoderState {
    at::Tensor mem_5, mem_6, mem_7;     ///< [1, c0, h, w]       (h, w = latent size)
    at::Tensor mem_11, mem_12, mem_13;  ///< [1, c1, 2h, 2w]
    at::Tensor mem_17, mem_18, mem_19;  ///< [1, c2, 4h, 4w]
    /// false => the next decode trims the first 3 frames. true with no memory = a cold start mid-stream
    /// (replay after re-tiling): the pasts are zeros and nothing is trimmed.
    bool started = false;

    /// The memory of MemBlock `layer` (5, 6, 7, 11, 12, 13, 17, 18 or 19).
    at::Tensor& memory(int layer);
    void reset();
    /// A cold start in the middle of a stream (replay after re-tiling, docs/TILING.md): zero pasts, nothing
    /// trimmed (started with no memory).
    void cold_start();
    int64_t bytes() const;
    /// Calls `f` on every memory tensor (e.g. to move them between devices).
    void for_each_tensor(const std::function<void(at::Tensor&)>& f);
};

/// LQ condition of the decoder: prepends copies of cond's first frame up to a multiple of 4 frames, then
/// (4,8,8) pixel-unshuffle. cond [B, 3, Fc, H, W] -> [B, T, 768, H/8, W/8] with T = ceil(Fc/4) and
/// channel c·256 + dt·64 + dy·8 + dx.
at::Tensor tc_condition(const at::Tensor& cond);

/// Nearest ×2 upsample followed by a 3x3 conv (padding 1, no bias) as its four output phases: each output
/// pixel of phase (py, px) is a 2x2 conv of the low-resolution input with taps summed from the 3x3 kernel,
/// 4/9 of the work, no upsampled copy of the input. `phase_weights` = upsample2_conv3x3_weights(w)
/// ([4·O, I, 2, 2]). x [N, I, H, W] -> [N, O, 2H, 2W] (channels-last), equal to
/// conv2d(upsample_nearest2d(x), w, padding 1) up to the rounding of the summed taps.
at::Tensor upsample2_conv3x3(const at::Tensor& x, const at::Tensor& phase_weights);
at::Tensor upsample2_conv3x3_weights(const at::Tensor& w);

/// The decoder's weights (stateless; the memory lives in TCDecoderState).
class TCDecoder {
  public:
    using Config = TCDecoderConfig;

    static constexpr int64_t kTimeUpscale = 4;                  ///< product of the TGrow strides (1·2·2)
    static constexpr int64_t kFramesToTrim = kTimeUpscale - 1;  ///< dropped by the first decode after reset
    static constexpr int64_t kSpaceUpscale = 8;                 ///< three ×2 nearest upsamples

    /// Strict load from a checkpoint's tensors (keys `decoder.N...`; errors name `source` and the key).
    TCDecoder(const TensorMap& tensors, const std::string& source, const LoadOptions& opts = {});

    /// Checkpoint keys and shapes in checkpoint order (no tensor is allocated).
    static std::vector<ParamSpec> manifest(const Config& config);

    const Config& config() const { return config_; }
    /// Moves every weight to `device` (Engine::to); a tensor member outside table() must move here too.
    void to(at::Device device) { table().move_to(device); }

    /// Bytes of the weights held: the checkpoint's plus the phase weights of the upsampling convs.
    int64_t weight_bytes() { return table().bytes(); }

    /// Decodes T latent frames. latents: [1, 16, T, h, w] (DiT output layout), cond: [1, 3, Fc, 8h, 8w]
    /// LQ frames in [-1, 1] with ceil(Fc/4) == T; both in the weights' dtype and device.
    /// Returns frames [1, 3, 4T - trim, 8h, 8w], roughly [0, 1] (not clamped); trim = 3 on the first call
    /// after state.reset(), 0 afterwards; the frames' memory is channels-last ([4T - trim, 8h, 8w, 3]).
    /// Depth-first over time, one step at a time: each MemBlock sees its input of the previous step (from
    /// `state`, zeros after a reset) and keeps the current one; activations are channels-last single
    /// frames. The stateless output layers (20-26) run in bands of rows of the frame, so no full-resolution
    /// activation is ever whole (896x512: two 235 MB activations -> 33 MB bands), and so do the MemBlocks
    /// whose activation is over kMemBlockWholeBytes (896x512: the 1/4-resolution ones, 59 MB; their
    /// 2C-channel concatenation 117 MB -> bands of ~8 MiB per activation). `band_rows` > 0: bands of that
    /// many rows for both (tests); 0: output_band_rows / mem_block_band_rows. Bands change no value (each row
    /// is computed from the same input rows; the rows at a band's border are computed twice and cut). Frames
    /// the first call trims are not computed. `after_step`, when set, runs after each latent step, once its
    /// activations are freed (the tile runner hands glibc's free heap pages back there on the CPU).
    at::Tensor decode(const at::Tensor& latents, const at::Tensor& cond, TCDecoderState& state,
                      int64_t band_rows = 0, const std::function<void()>& after_step = {}) const;
    /// Rows per band of the output layers for frames `width` pixels wide (band_rows = 0).
    int64_t output_band_rows(int64_t width) const;
    static constexpr int64_t kOutputBandBytes = int64_t{32} << 20;
    /// Rows per band of a MemBlock on activation x [1, C, H, W] (band_rows = 0): H (whole) up to
    /// kMemBlockWholeBytes per activation, else about kMemBlockBandBytes per activation band.
    static int64_t mem_block_band_rows(const at::Tensor& x);
    static constexpr int64_t kMemBlockWholeBytes = int64_t{32} << 20;
    static constexpr int64_t kMemBlockBandBytes = int64_t{8} << 20;

  private:
    struct MemBlockWeights {  // decoder.N.conv: 0 Conv(2C->C), 1 ReLU, 2 Conv(C->C), 3 ReLU, 4 Conv(C->C)
        at::Tensor w0, b0, w2, b2, w4, b4;
    };

    TCDecoder() = default;  // manifest(): a weightless instance to enumerate the table
    ParamTable table();
    /// One MemBlock on one step x [1, C, H, W] in bands of `band_rows` rows (>= H: whole).
    at::Tensor mem_block(const at::Tensor& x, const MemBlockWeights& m, at::Tensor& memory,
                         int64_t band_rows) const;
    /// Layers 20-26 (TGrow 21's step k2 included) on MemBlock 19's output b [1, c2, H/2, W/2] into `frame`
    /// [1, 3, H, W], band by band.
    void output_stage(const at::Tensor& b, int64_t k2, const at::Tensor& frame, int64_t band_rows) const;

    Config config_;
    // 0 is Clamp (3·tanh(x/3)), parameterless.
    at::Tensor conv1_weight_, conv1_bias_;    // 1: Conv 784->c0, 3x3; 2 is ReLU
    at::Tensor conv3_weight_;                 // 3: "IdentityConv2d" c0->c0, no bias; 4 is ReLU
    std::array<MemBlockWeights, 3> stage0_;   // 5, 6, 7: MemBlock(c0); 8 is Upsample ×2
    at::Tensor tgrow9_weight_;                // 9: TGrow(c0, stride 1), 1x1 conv
    at::Tensor conv10_weight_;                // 10: Conv c0->c1, no bias
    std::array<MemBlockWeights, 3> stage1_;   // 11, 12, 13: MemBlock(c1); 14 is Upsample ×2
    at::Tensor tgrow15_weight_;               // 15: TGrow(c1, stride 2), 1x1 conv c1 -> 2·c1
    at::Tensor conv16_weight_;                // 16: Conv c1->c2, no bias
    std::array<MemBlockWeights, 3> stage2_;   // 17, 18, 19: MemBlock(c2); 20 is Upsample ×2
    at::Tensor tgrow21_weight_;               // 21: TGrow(c2, stride 2), 1x1 conv c2 -> 2·c2
    at::Tensor conv22_weight_;                // 22: Conv c2->c3, no bias; 23 is ReLU
    at::Tensor conv24_weight_;                // 24: "IdentityConv2d" c3->c3, no bias; 25 is ReLU
    at::Tensor conv26_weight_, conv26_bias_;  // 26: Conv c3->3, bias (output, no clamp)
    at::Tensor conv10_phases_, conv16_phases_, conv22_phases_;  // upsample2_conv3x3_weights of 10, 16, 22
};

}  // namespace flashvsr::models
