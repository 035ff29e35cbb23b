// Wan2.1 causal video VAE decoder ("full" mode): normalised DiT latents -> RGB frames, decoded one latent
// frame at a time through causal 3-D convolutions whose frame caches live in a caller-owned VAEDecodeState.
// Model facts: docs/MODEL.md §1.5 (keys), §5 (architecture, cache protocol), §8 (state).
#pragma once

#include <ATen/core/Tensor.h>

#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "models/common/params.h"

namespace flashvsr::models {

/// Decoder hyper-parameters, derived from the shapes of the `decoder.*` tensors (never from file names).
/// Levels are numbered in decoder order (coarsest first); level i has num_res_blocks + 1 ResidualBlocks
/// with dim * dim_mult[L-1-i] output channels, and every level but the last ends in a Resample that
/// doubles H and W (and, where temporal_upsample[i], the frame count) and halves the channels.
struct VAEDecoderConfig {
    int64_t dim = 96;                           ///< base width (input channels of decoder.head.2)
    int64_t z_dim = 16;                         ///< latent channels (must be 16: the latent statistics)
    std::vector<int64_t> dim_mult{1, 2, 4, 4};  ///< channel multipliers, encoder order (dim_mult[0] == 1)
    int64_t num_res_blocks = 2;                 ///< encoder count; the decoder has one more per level
    std::vector<bool> temporal_upsample{true, true, false};  ///< per Resample: upsample3d (true) / upsample2d

    /// Reads z_dim from decoder.conv1, the level layout from the decoder.upsamples.* keys and the widths from
    /// their shapes. Throws flashvsr::ModelError naming `source` when the layout is not a Wan VAE decoder.
    static VAEDecoderConfig from_tensors(const TensorMap& tensors, const std::string& source);
    /// "tiny" (dim 16), "small" (dim 32), "full" (dim 96, the published Wan2.1_VAE.pth); else InputError.
    static VAEDecoderConfig preset(const std::string& size);

    int64_t spatial_factor() const;   ///< output pixels per latent pixel (8 for Wan2.1)
    int64_t temporal_factor() const;  ///< output frames per latent frame after the first (4 for Wan2.1)
    bool operator==(const VAEDecoderConfig&) const = default;
};

/// Frame caches of one ResidualBlock: the last <= 2 input frames of residual.2 and residual.6.
struct VAEResidualCache {
    at::Tensor residual2;  ///< [B, C_in, 1|2, h, w]
    at::Tensor residual6;  ///< [B, C_out, 1|2, h, w]
};

/// Caches of one entry of decoder.upsamples (index = checkpoint index): a ResidualBlock uses `residual`,
/// an upsample3d Resample uses `time_conv_started` (upstream's "Rep" first-step marker) and `time_conv`.
struct VAEUpsampleCache {
    VAEResidualCache residual;
    bool time_conv_started = false;  ///< false: the next step skips time_conv (1 frame stays 1 frame)
    at::Tensor time_conv;            ///< [B, C, 2, h, w] last 2 input frames of time_conv (zero-filled)
};

/// Streaming state of one decoded video (or tile): one cache per cached causal conv (the 1x1x1 shortcut
/// and conv2 are uncached), named after the checkpoint key of the conv it feeds. Use, then update.
struct VAEDecodeState {
    at::Tensor conv1;                         ///< decoder.conv1 input, [B, z_dim, 1|2, h, w]
    VAEResidualCache middle0;                 ///< decoder.middle.0
    VAEResidualCache middle2;                 ///< decoder.middle.2
    std::vector<VAEUpsampleCache> upsamples;  ///< decoder.upsamples.{i}; sized on the first decode
    at::Tensor head2;                         ///< decoder.head.2 input, [B, dim, 1|2, H, W]
    bool started = false;                     ///< a latent frame was decoded since reset()
    bool mid_stream = false;                  ///< cold_start(): the upsample3d first-step rule is spent

    void reset();
    /// Resets for a cold start in the middle of a stream (replay after re-tiling, docs/TILING.md): the caches
    /// start empty (zeros before the first frame, as after reset()) but the upsample3d first-step rule is
    /// already spent, so every latent frame decodes to 4 frames.
    void cold_start();
    int64_t bytes() const;  ///< bytes held by all cache tensors
    /// Calls `f` on every cache tensor slot (e.g. to move them between devices).
    void for_each_tensor(const std::function<void(at::Tensor&)>& f);
};

/// The decoder network: weights only (conv2.* + decoder.*), immutable after construction, shareable
/// between threads; every call takes its VAEDecodeState explicitly.
class VAEDecoder {
  public:
    using Config = VAEDecoderConfig;

    /// Strict load of conv2.* and decoder.* from a raw Wan2.1_VAE.pth key map; encoder.* and conv1.* are
    /// skipped (never converted or allocated). Errors name `source` and the key.
    VAEDecoder(const TensorMap& tensors, const std::string& source, const LoadOptions& opts = {});

    /// What the decoder loads, in checkpoint order (no tensors allocated). Full: 108 / 73,295,603.
    static std::vector<ParamSpec> manifest(const Config& cfg);
    /// Every raw key of a Wan2.1_VAE.pth-format file (encoder.*, conv1.*, conv2.*, decoder.*), in file order.
    /// Full: 194 tensors / 126,892,531 parameters, DiffSynth key hash ccc42284ea13e1ad04693284c7a09be6.
    static std::vector<ParamSpec> file_manifest(const Config& cfg);

    /// Per-channel latent statistics of Wan2.1: raw = z * std + mean.
    static const std::array<float, 16>& latent_mean();
    static const std::array<float, 16>& latent_std();

    const Config& config() const { return cfg_; }
    /// Moves every weight and the latent statistics to `device` (Engine::to).
    void to(at::Device device);

    /// Decodes the next latent frames of a stream.
    /// z: [B, z_dim, T, h, w] normalised DiT latents, same dtype/device as the weights; un-normalised as
    /// z / (1/std) + mean with 1/std rounded in float32 (upstream's form of z * std + mean).
    /// Returns [B, 3, n, h*8, w*8] in [-1, 1] (clamped), n = 4T - 3 on the first call after reset(), 4T later
    /// (Wan2.1 factors). Chunking is exact: decode(z) equals decode(z[:, :, :a]) ++ decode(z[:, :, a:]) on
    /// one state, bit for bit. The state must keep B, h and w until reset(); after an exception it is
    /// undefined (reset() it). The clamp comes last, as in upstream's single_decode.
    at::Tensor decode(const at::Tensor& z, VAEDecodeState& state) const;

  private:
    struct Conv {  // weight [C_out, C_in, k...], bias [C_out]
        at::Tensor weight, bias;
    };
    struct ResidualBlock {
        at::Tensor gamma0;  // residual.0 RMS_norm(in); 1 is SiLU
        Conv conv2;         // residual.2 causal 3x3x3
        at::Tensor gamma3;  // residual.3 RMS_norm(out); 4 is SiLU, 5 is Dropout(0)
        Conv conv6;         // residual.6 causal 3x3x3
        Conv shortcut;      // 1x1x1 when in != out (undefined otherwise: identity)
    };
    struct Attention {
        at::Tensor norm_gamma;  // norm: RMS_norm over channels of [C, 1, 1]
        Conv to_qkv, proj;      // 1x1 Conv2d
    };
    struct Upsample {  // one entry of decoder.upsamples
        bool is_resample = false;
        bool temporal = false;  // upsample3d (has time_conv)
        ResidualBlock res;
        Conv resample1;  // resample.1 Conv2d 3x3 (resample.0 is the nearest-exact x2 upsample)
        Conv time_conv;  // causal (3,1,1), C -> 2C
    };
    struct Weights {
        Conv conv2;  // top-level conv2, 1x1x1 z_dim -> z_dim
        Conv conv1;  // decoder.conv1, causal 3x3x3 z_dim -> dim * dim_mult.back()
        ResidualBlock middle0;
        Attention middle1;
        ResidualBlock middle2;
        std::vector<Upsample> upsamples;
        at::Tensor head_gamma;  // decoder.head.0; 1 is SiLU
        Conv head2;             // decoder.head.2 causal 3x3x3 dim -> 3
    };
    static void register_params(const Config& cfg, Weights& w, ParamTable& table);
    at::Tensor decode_step(const at::Tensor& x, VAEDecodeState& st) const;

    Config cfg_;
    Weights w_;
    at::Tensor mean_, inv_std_;  // [z_dim] latent statistics in the weights' dtype (not parameters)
};

}  // namespace flashvsr::models
