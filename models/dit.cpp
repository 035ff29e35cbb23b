#include "models/dit.h"

#include <flashvsr/errors.h>

#include <ATen/ATen.h>

#include <cmath>
#include <set>
#include <tuple>

#include "kernels/int8_linear/int8_linear.h"
#include "models/common/linear.h"
#include "models/dit_attention.h"
#include "models/dit_rows.h"

namespace flashvsr::models {

namespace {

struct Linear {
    at::Tensor weight, bias;
    // int8 form (DiT::quantize_int8): weight replaced by qweight = round(W^T / wscale) int8 [in, out] and the
    // per-output-channel scale wscale = max|W[o, :]| / 127, float32 [out].
    at::Tensor qweight, wscale;
};

struct Attention {
    Linear q, k, v, o;
    at::Tensor norm_q, norm_k;  // RMSNorm weights over the full width
};

struct Block {
    at::Tensor modulation;  // [1, 6, dim]
    Attention self_attn, cross_attn;
    // norm1, norm2: LayerNorm without parameters
    at::Tensor norm3_weight, norm3_bias;
    Linear ffn0;  // ffn.0; ffn.1 is GELU-tanh
    Linear ffn2;  // ffn.2
};

std::string shape_str(const std::vector<int64_t>& s) {
    std::string out = "[";
    for (size_t i = 0; i < s.size(); ++i) {
        out += (i ? ", " : "") + std::to_string(s[i]);
    }
    return out + "]";
}

/// Symmetric per-token int8 activations, int32 products (at::_int_mm or its exact float32 form), then the
/// token and channel scales in float32: torch.ops.flashvsr.int8_linear (kernels/int8_linear; fused on the
/// CPU).
at::Tensor linear_int8(const at::Tensor& x, const Linear& l) {
    return kernels::int8_linear(x, l.qweight, l.wscale,
                                l.bias.defined() ? std::optional(l.bias) : std::nullopt);
}

at::Tensor linear(const at::Tensor& x, const Linear& l) {
    return l.qweight.defined() ? linear_int8(x, l) : dense_linear(x, l.weight, l.bias);
}

/// Replaces l.weight by its int8 form (see Linear).
void quantize(Linear& l) {
    const auto w = l.weight.to(at::kFloat);                                             // [out, in]
    const auto scale = (w.abs().amax(1, /*keepdim=*/true) / 127.0).clamp_min(1e-20);    // [out, 1]
    l.qweight = (w / scale).round_().clamp_(-127, 127).to(at::kChar).t().contiguous();  // -> [in, out]
    l.wscale = scale.view({-1}).contiguous();
    l.weight = at::Tensor();
}

at::Tensor layer_norm(const at::Tensor& x, double eps, const at::Tensor& w, const at::Tensor& b) {
    return at::layer_norm(x, {x.size(-1)}, w, b, eps);
}

/// x += gate * y (no gate: x += y). In place for float32 / float64, where it rounds as x + gate * y does;
/// half-precision dtypes keep the out-of-place form so that gate * y is rounded to the dtype first.
void residual_(at::Tensor& x, const at::Tensor& y, const at::Tensor& gate = {}) {
    if (x.scalar_type() != at::kFloat && x.scalar_type() != at::kDouble) {
        x = gate.defined() ? x + gate * y : x + y;
    } else if (gate.defined()) {
        x.addcmul_(gate, y);
    } else {
        x.add_(y);
    }
}

/// Window order [1, L, C] -> [n_windows, 128, C] (a view).
at::Tensor as_windows(const at::Tensor& x) { return x.view({-1, kWindowTokens, x.size(-1)}); }

}  // namespace

struct DiT::Weights {
    at::Tensor patch_weight, patch_bias;  // Conv3d [dim, in, 1, 2, 2]
    Linear text0, text2;                  // text_embedding.{0,2}; 1 is GELU-tanh
    Linear time0, time2;                  // time_embedding.{0,2}; 1 is SiLU
    Linear time_proj1;                    // time_projection.1; 0 is SiLU
    std::vector<Block> blocks;
    at::Tensor head_modulation;  // [1, 2, dim]
    Linear head;                 // head.head; head.norm has no parameters
    ParamTable table;

    /// The linear layers DiT::quantize_int8 turns into int8: every one but the output head.
    template <typename F>
    void for_each_int8_linear(F&& fn) {
        for (Linear* l : {&text0, &text2, &time0, &time2, &time_proj1}) {
            fn(*l);
        }
        for (Block& b : blocks) {
            for (Attention* a : {&b.self_attn, &b.cross_attn}) {
                for (Linear* l : {&a->q, &a->k, &a->v, &a->o}) {
                    fn(*l);
                }
            }
            fn(b.ffn0);
            fn(b.ffn2);
        }
    }

    explicit Weights(const DiTConfig& c) : blocks(static_cast<size_t>(c.num_layers)) {
        const int64_t d = c.dim;
        auto lin = [&](const std::string& name, Linear& l, int64_t out, int64_t in) {
            table.add(name + ".weight", &l.weight, {out, in});
            table.add(name + ".bias", &l.bias, {out});
        };
        table.add("patch_embedding.weight", &patch_weight, {d, c.in_dim, c.patch_t, c.patch_h, c.patch_w});
        table.add("patch_embedding.bias", &patch_bias, {d});
        lin("text_embedding.0", text0, d, c.text_dim);
        lin("text_embedding.2", text2, d, d);
        lin("time_embedding.0", time0, d, c.freq_dim);
        lin("time_embedding.2", time2, d, d);
        lin("time_projection.1", time_proj1, 6 * d, d);
        for (int64_t i = 0; i < c.num_layers; ++i) {
            const std::string p = "blocks." + std::to_string(i) + ".";
            Block& b = blocks[static_cast<size_t>(i)];
            table.add(p + "modulation", &b.modulation, {1, 6, d});
            for (auto [name, a] :
                 {std::pair{"self_attn", &b.self_attn}, std::pair{"cross_attn", &b.cross_attn}}) {
                const std::string q = p + name + ".";
                lin(q + "q", a->q, d, d);
                lin(q + "k", a->k, d, d);
                lin(q + "v", a->v, d, d);
                lin(q + "o", a->o, d, d);
                table.add(q + "norm_q.weight", &a->norm_q, {d});
                table.add(q + "norm_k.weight", &a->norm_k, {d});
            }
            table.add(p + "norm3.weight", &b.norm3_weight, {d});
            table.add(p + "norm3.bias", &b.norm3_bias, {d});
            lin(p + "ffn.0", b.ffn0, c.ffn_dim, d);
            lin(p + "ffn.2", b.ffn2, d, c.ffn_dim);
        }
        table.add("head.modulation", &head_modulation, {1, 2, d});
        lin("head.head", head, c.out_dim * c.patch_t * c.patch_h * c.patch_w, d);
    }
};

// ---- config ------------------------------------------------------------------------------------

DiTConfig DiTConfig::from_tensors(const TensorMap& tensors, const std::string& source, int64_t head_dim) {
    DiTConfig c;
    const auto patch = require_shape(tensors, "patch_embedding.weight", source);
    if (patch.size() != 5) {
        throw ModelError(source + ": 'patch_embedding.weight' has shape " + shape_str(patch) +
                         ", expected [dim, in_dim, 1, 2, 2]");
    }
    c.dim = patch[0];
    c.in_dim = patch[1];
    c.patch_t = patch[2];
    c.patch_h = patch[3];
    c.patch_w = patch[4];
    if (c.patch_t != 1 || c.patch_h != 2 || c.patch_w != 2) {
        throw ModelError(source + ": patch size " + shape_str({c.patch_t, c.patch_h, c.patch_w}) +
                         " is not (1, 2, 2)");
    }
    c.text_dim = require_shape(tensors, "text_embedding.0.weight", source).at(1);
    c.freq_dim = require_shape(tensors, "time_embedding.0.weight", source).at(1);
    c.ffn_dim = require_shape(tensors, "blocks.0.ffn.0.weight", source).at(0);
    c.out_dim =
        require_shape(tensors, "head.head.weight", source).at(0) / (c.patch_t * c.patch_h * c.patch_w);
    std::set<int64_t> ids;
    for (const auto& [key, t] : tensors) {
        if (key.rfind("blocks.", 0) == 0) {
            const auto dot = key.find('.', 7);
            const std::string id = key.substr(7, dot == std::string::npos ? std::string::npos : dot - 7);
            if (id.empty() || id.size() > 6 || id.find_first_not_of("0123456789") != std::string::npos) {
                throw ModelError(source + ": key '" + key + "' has no block number after 'blocks.'");
            }
            ids.insert(std::stoll(id));
        }
    }
    c.num_layers = static_cast<int64_t>(ids.size());
    if (ids.empty() || *ids.rbegin() != c.num_layers - 1) {
        throw ModelError(source + ": block indices are not 0.." + std::to_string(c.num_layers - 1));
    }
    c.head_dim = head_dim;
    if (head_dim <= 0 || c.dim % head_dim != 0) {
        throw ModelError(source + ": dim " + std::to_string(c.dim) + " is not a multiple of head_dim " +
                         std::to_string(head_dim));
    }
    return c;
}

DiTConfig DiTConfig::preset(const std::string& size) {
    DiTConfig c;  // defaults = the release ("full")
    if (size == "full") {
        return c;
    }
    if (size == "tiny") {
        c.dim = 256, c.num_layers = 2, c.ffn_dim = 512, c.text_dim = 64;
    } else if (size == "small") {
        c.dim = 512, c.num_layers = 4, c.ffn_dim = 1024, c.text_dim = 256;
    } else {
        throw InputError("DiT preset '" + size + "' is not one of tiny, small, full");
    }
    return c;
}

std::vector<ParamSpec> DiTConfig::manifest(const DiTConfig& cfg) { return DiT::Weights(cfg).table.specs(); }

// ---- state and constants -------------------------------------------------------------------------

namespace {
int64_t storage_bytes(const std::vector<at::Tensor>& ts) {
    int64_t n = 0;
    for (const auto& t : ts) {
        n += t.defined() ? static_cast<int64_t>(t.storage().nbytes()) : 0;
    }
    return n;
}
}  // namespace

void DiTState::reset() {
    k_cache.clear();
    v_cache.clear();
    chunk_index = 0;
    grid_h = grid_w = 0;
}

void DiTState::cold_start(int64_t chunk) {
    reset();
    chunk_index = chunk;
}

int64_t DiTState::bytes() const { return storage_bytes(k_cache) + storage_bytes(v_cache); }

void DiTState::for_each_tensor(const std::function<void(at::Tensor&)>& f) {
    for (at::Tensor& t : k_cache) {
        f(t);
    }
    for (at::Tensor& t : v_cache) {
        f(t);
    }
}

int64_t DiTConstants::bytes() const {
    return storage_bytes({t, t_mod}) + storage_bytes(cross_k) + storage_bytes(cross_v);
}

// ---- model -------------------------------------------------------------------------------------

DiT::DiT(const TensorMap& tensors, const std::string& source, const LoadOptions& opts, int64_t head_dim)
    : cfg_(DiTConfig::from_tensors(tensors, source, head_dim)), w_(std::make_unique<Weights>(cfg_)) {
    w_->table.load(tensors, source, opts);
}

DiT::DiT(const DiTConfig& cfg, const LoadOptions& opts) : cfg_(cfg), w_(std::make_unique<Weights>(cfg_)) {
    TORCH_CHECK(cfg.head_dim > 0 && cfg.dim % cfg.head_dim == 0, "DiT: dim ", cfg.dim,
                " is not a multiple of head_dim ", cfg.head_dim);
    w_->table.zero_init(opts);
}

DiT::~DiT() = default;
DiT::DiT(DiT&&) noexcept = default;
DiT& DiT::operator=(DiT&&) noexcept = default;

const ParamTable& DiT::params() const { return w_->table; }

void DiT::quantize_int8(at::ScalarType compute_dtype) {
    TORCH_CHECK(!quantized_, "dit: already quantized");
    w_->for_each_int8_linear([](Linear& l) { quantize(l); });
    // Everything else (biases, norms, modulations, patch embedding, head) in the compute dtype; the int8
    // products come back in float32 and are cast to it.
    w_->table.for_each_slot([&](at::Tensor& t) {
        if (t.defined()) {
            t = t.to(compute_dtype);
        }
    });
    quantized_ = true;
}

void DiT::to(at::Device device) {
    w_->table.move_to(device);
    w_->for_each_int8_linear([&](Linear& l) {
        for (at::Tensor* t : {&l.qweight, &l.wscale}) {
            if (t->defined() && t->device() != device) {
                *t = t->to(device);
            }
        }
    });
}

int64_t DiT::weight_bytes() const {
    int64_t n = w_->table.bytes();
    w_->for_each_int8_linear([&](Linear& l) {
        n += l.qweight.defined() ? static_cast<int64_t>(l.qweight.nbytes() + l.wscale.nbytes()) : 0;
    });
    return n;
}
at::ScalarType DiT::dtype() const { return w_->patch_weight.scalar_type(); }
at::Device DiT::device() const { return w_->patch_weight.device(); }

DiTConstants DiT::prepare(const at::Tensor& prompt) const {
    TORCH_CHECK(prompt.dim() == 3 && prompt.size(0) == 1 && prompt.size(2) == cfg_.text_dim,
                "dit: prompt expected [1, L, ", cfg_.text_dim, "], got ", prompt.sizes());
    const auto dt = dtype();
    const auto dev = device();
    // Timestep 1000 -> sinusoid (float64, cos half first) -> weights' dtype.
    const int64_t half = cfg_.freq_dim / 2;
    const auto freqs = at::pow(10000.0, at::arange(half, at::kDouble).div(static_cast<double>(half)).neg());
    const auto ang = at::outer(at::full({1}, 1000.0, at::kDouble), freqs);  // [1] x [half] -> [1, half]
    const auto emb = at::cat({at::cos(ang), at::sin(ang)}, 1).to(dev, dt);  // [1, freq_dim]
    DiTConstants c;
    c.t = linear(at::silu(linear(emb, w_->time0)), w_->time2);               // [1, dim]
    c.t_mod = linear(at::silu(c.t), w_->time_proj1).view({1, 6, cfg_.dim});  // [1, 6*dim] -> [1, 6, dim]
    const auto ctx = prompt.to(dev, dt);
    const auto e = linear(at::gelu(linear(ctx, w_->text0), "tanh"), w_->text2);  // [1, L, dim]
    for (const Block& b : w_->blocks) {
        c.cross_k.push_back(rms_norm(linear(e, b.cross_attn.k), b.cross_attn.norm_k, cfg_.eps));
        c.cross_v.push_back(linear(e, b.cross_attn.v));
    }
    return c;
}

int64_t DiT::first_frame_position(int64_t chunk_index) {
    TORCH_CHECK(chunk_index >= 0, "dit: negative chunk index ", chunk_index);
    return chunk_index == 0 ? 0 : 4 + 2 * chunk_index;
}

at::Tensor DiT::patchify(const at::Tensor& latents) const {
    TORCH_CHECK(latents.dim() == 5 && latents.size(0) == 1 && latents.size(1) == cfg_.in_dim &&
                    latents.size(3) % 2 == 0 && latents.size(4) % 2 == 0,
                "dit: latents expected [1, ", cfg_.in_dim, ", f, 2h, 2w], got ", latents.sizes());
    const int64_t c = cfg_.in_dim, f = latents.size(2), h = latents.size(3) / 2, w = latents.size(4) / 2;
    const auto tok = latents
                         .reshape({c, f, h, 2, w, 2})              // [1,C,f,2h,2w] -> [C,f,h,2,w,2]
                         .permute({1, 2, 4, 0, 3, 5})              // -> [f,h,w,C,2,2]
                         .reshape({1, f * h * w, c * 4});          // -> [1,fhw,C*4] (c, py, px)
    const auto weight = w_->patch_weight.view({cfg_.dim, c * 4});  // [dim,C,1,2,2] -> [dim,C*4]
    return dense_linear(tok, weight, w_->patch_bias);
}

at::Tensor DiT::unpatchify(const at::Tensor& tokens, int64_t f, int64_t h, int64_t w) const {
    const int64_t c = cfg_.out_dim;
    TORCH_CHECK(
        tokens.dim() == 3 && tokens.size(0) == 1 && tokens.size(1) == f * h * w && tokens.size(2) == c * 4,
        "dit: unpatchify expected [1, ", f * h * w, ", ", c * 4, "], got ", tokens.sizes());
    return tokens
        .reshape({f, h, w, 2, 2, c})        // [1,fhw,4C] -> [f,h,w,py,px,C]
        .permute({5, 0, 1, 3, 2, 4})        // -> [C,f,h,py,w,px]
        .reshape({1, c, f, 2 * h, 2 * w});  // -> [1,C,f,2h,2w]
}

at::Tensor DiT::forward_chunk(const at::Tensor& latents, at::Tensor lq_tokens, const DiTConstants& consts,
                              DiTState& state, const AttentionOptions& opts,
                              const std::function<void()>& after_block) const {
    TORCH_CHECK(latents.dim() == 5 && latents.size(0) == 1 && latents.size(1) == cfg_.in_dim,
                "dit: latents expected [1, ", cfg_.in_dim, ", f, H/8, W/8], got ", latents.sizes());
    const int64_t f = latents.size(2), lh = latents.size(3), lw = latents.size(4);
    TORCH_CHECK(lh % 16 == 0 && lw % 16 == 0, "dit: latent size ", lh, "x", lw,
                " must be a multiple of 16 (output a multiple of 128)");
    const int64_t h = lh / 2, w = lw / 2, l = f * h * w;
    const bool first = state.chunk_index == 0;
    // A later chunk with no caches is a cold start mid-stream (replay after re-tiling): own slice only.
    const bool cached = !first && !state.k_cache.empty();
    TORCH_CHECK(f == (first ? 6 : 2), "dit: chunk ", state.chunk_index, " needs ", (first ? 6 : 2),
                " latent frames, got ", f);
    const auto n_layers = static_cast<size_t>(cfg_.num_layers);
    if (cached) {
        TORCH_CHECK(state.grid_h == h && state.grid_w == w && state.k_cache.size() == n_layers &&
                        state.v_cache.size() == n_layers,
                    "dit: state belongs to a ", state.grid_h, "x", state.grid_w, " token grid, got ", h, "x",
                    w, " (reset the state for a new stream)");
    }
    TORCH_CHECK(consts.cross_k.size() == n_layers && consts.cross_v.size() == n_layers && consts.t.defined(),
                "dit: constants were not made by prepare() of this model");
    const auto dt = dtype();
    const auto dev = device();
    const int64_t heads = cfg_.num_heads(), hd = cfg_.head_dim;

    auto x = patchify(latents.to(dev, dt));  // [1, L, dim]
    if (lq_tokens.defined()) {
        TORCH_CHECK(lq_tokens.sizes() == at::IntArrayRef({1, l, cfg_.dim}), "dit: lq_tokens expected [1, ", l,
                    ", ", cfg_.dim, "], got ", lq_tokens.sizes());
        x = x + lq_tokens.to(dev, dt);  // before block 0 only
        lq_tokens = at::Tensor();
    }
    // Everything but the self-attention's inner product is token-wise, so the tokens are put in window order
    // once here and back once after the head: the attention reads and writes its windows as views.
    x = window_partition(x, f, h, w).view({1, l, cfg_.dim});  // [1, L, dim] in window order
    const int64_t t0 = first_frame_position(state.chunk_index);
    // Built once per chunk, in the rotation dtype and window order, for all blocks.
    auto rope = rope_tables(hd, t0, f, h, w, dev);
    const auto rope_type = at::promote_types(dt, at::kFloat);
    rope.cos = window_partition(rope.cos.to(rope_type).unsqueeze(0), f, h, w).view({l, hd / 2});
    rope.sin = window_partition(rope.sin.to(rope_type).unsqueeze(0), f, h, w).view({l, hd / 2});
    const int64_t hb = h / kWindowH, wb = w / kWindowW, s = hb * wb;
    const auto local = local_window_mask(hb, wb, opts.local_range).to(dev);
    const int64_t topk = draft_topk(opts.sparse_ratio, 8 * lh, 8 * lw, s);

    // Each block's K/V window is replaced right after that block used it, so only one block's old and new
    // windows coexist. If the chunk throws half-way, the state is marked unusable (grid -1): a later chunk
    // that would read the half-updated windows fails the grid check instead (the OOM fallback makes fresh
    // states and replays, docs/TILING.md).
    struct MarkUnusableOnThrow {
        DiTState& state;
        bool done = false;
        ~MarkUnusableOnThrow() {
            if (!done) {
                state.grid_h = state.grid_w = -1;
            }
        }
    } guard{state};
    if (!cached) {
        state.k_cache.assign(n_layers, at::Tensor());
        state.v_cache.assign(n_layers, at::Tensor());
    }
    for (size_t i = 0; i < n_layers; ++i) {
        const Block& b = w_->blocks[i];
        const auto mod = (b.modulation + consts.t_mod).chunk(6, 1);  // 6 x [1, 1, dim]
        // shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp
        {
            // Self-attention (LCSA): projections, RoPE, windows, cache first, draft mask, sparse attention.
            // Its activations die at the end of this scope, before the cross-attention and the FFN (the
            // windows with the cache in front are (kv_ratio + 1) slices: 2 x 88 MB at 896x512).
            at::Tensor a = norm_modulate(x, mod[0], mod[1], cfg_.eps);
            const Attention& sa = b.self_attn;
            auto q = linear(a, sa.q);
            rms_norm_rope_(q, sa.norm_q, cfg_.eps, rope, heads);
            auto k = linear(a, sa.k);
            rms_norm_rope_(k, sa.norm_k, cfg_.eps, rope, heads);
            const auto qw = as_windows(q);  // [(f/2)*S, 128, dim]
            auto kw = as_windows(k);
            auto vw = as_windows(linear(a, sa.v));
            a = at::Tensor();  // only the projections read it
            if (cached) {
                kw = at::cat({state.k_cache[i], kw}, 0);  // cache first (oldest slice first)
                vw = at::cat({state.v_cache[i], vw}, 0);
            }
            const auto mask = draft_block_mask(qw, kw, heads, local, topk);
            const auto ow = opts.dense_oracle ? masked_dense_attention(qw, kw, vw, mask, heads)
                                              : block_sparse_attention(qw, kw, vw, mask, heads, opts.kernel);
            residual_(x, linear(ow.reshape({1, l, cfg_.dim}), sa.o), mod[2]);

            // Cache update after use: drop the oldest slice when over int(kv_ratio); copy so that the
            // trimmed cache does not keep the concatenated buffer alive.
            const int64_t n_slices = kw.size(0) / s, keep = kv_slices_to_keep(n_slices, opts.kv_ratio);
            state.k_cache[i] = keep == n_slices ? kw : kw.narrow(0, (n_slices - keep) * s, keep * s).clone();
            kw = at::Tensor();
            state.v_cache[i] = keep == n_slices ? vw : vw.narrow(0, (n_slices - keep) * s, keep * s).clone();
        }

        {
            // Cross-attention on LN3(x) (affine), dense, against the constant prompt K/V; no gate. Its
            // activations die before the FFN runs.
            const Attention& ca = b.cross_attn;
            auto xq = linear(layer_norm(x, cfg_.eps, b.norm3_weight, b.norm3_bias), ca.q);
            rms_norm_(xq, ca.norm_q, cfg_.eps);
            const int64_t lc = consts.cross_k[i].size(1);
            const auto qh = xq.view({1, l, heads, hd}).transpose(1, 2);                  // -> [1,heads,L,hd]
            const auto kh = consts.cross_k[i].view({1, lc, heads, hd}).transpose(1, 2);  // -> [1,heads,Lc,hd]
            const auto vh = consts.cross_v[i].view({1, lc, heads, hd}).transpose(1, 2);  // -> [1,heads,Lc,hd]
            const auto co = at::scaled_dot_product_attention(qh, kh, vh);
            // [1,heads,L,hd] -> [1,L,dim]
            residual_(x, linear(co.transpose(1, 2).reshape({1, l, cfg_.dim}), ca.o));
        }

        // FFN, a block of tokens at a time: every step is token-wise, and its hidden layer (ffn_dim wide,
        // 5.8x dim) is the DiT's largest activation (896x512 first chunk: 385 MB whole, 147 MB a block).
        const int64_t ffn_tokens = opts.ffn_tokens > 0 ? opts.ffn_tokens : kFfnTokens;
        for (int64_t t0 = 0; t0 < l; t0 += ffn_tokens) {
            const int64_t n = std::min(ffn_tokens, l - t0);
            at::Tensor xs = n == l ? x : x.narrow(1, t0, n);
            auto hidden = linear(norm_modulate(xs, mod[3], mod[4], cfg_.eps), b.ffn0);
            const at::Tensor y = linear(at::gelu_(hidden, "tanh"), b.ffn2);
            if (n == l) {
                residual_(x, y, mod[5]);
            } else {
                at::Tensor r = xs;
                residual_(r, y, mod[5]);
                if (!r.is_same(xs)) {
                    xs.copy_(r);  // half dtypes: residual_ returned a new tensor
                }
            }
        }
        if (after_block) {
            after_block();
        }
    }
    // Head: modulation + t (not t_mod) -> shift, scale.
    const auto hm = (w_->head_modulation + consts.t.unsqueeze(1)).chunk(2, 1);  // 2 x [1, 1, dim]
    const auto out =
        linear(norm_modulate(x, hm[0], hm[1], cfg_.eps), w_->head);  // [1, L, out*4], window order

    state.grid_h = h;
    state.grid_w = w;
    ++state.chunk_index;
    guard.done = true;
    return unpatchify(window_reverse(as_windows(out), f, h, w), f, h, w);
}

}  // namespace flashvsr::models
