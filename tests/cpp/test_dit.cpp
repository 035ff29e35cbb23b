// DiT weights, constants and streaming forward (MODEL.md §1.2, §2; MODEL.md §13 items 6, 8, 9, 11).
#include <flashvsr/flashvsr.h>
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <ATen/record_function.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <string_view>
#include <vector>

#include "error_test_util.h"
#include "models/common/random_weights.h"
#include "models/dit.h"

using namespace flashvsr::models;

namespace {

const auto kF64 = at::TensorOptions().dtype(at::kDouble);

double max_abs(const at::Tensor& a, const at::Tensor& b) { return (a - b).abs().max().item<double>(); }

bool ends_with(const std::string& s, const std::string& t) {
    return s.size() >= t.size() && s.compare(s.size() - t.size(), t.size(), t) == 0;
}

/// Random weights for every manifest entry (models::random_weights' scaling rules).
TensorMap random_weights(const DiTConfig& cfg, uint64_t seed, at::ScalarType dt = at::kDouble) {
    return flashvsr::models::random_weights(DiTConfig::manifest(cfg), seed, dt);
}

/// Small test network: 2 heads of 32, so the RoPE split is 12/10/10.
DiTConfig test_config() {
    DiTConfig c;
    c.dim = 64, c.head_dim = 32, c.num_layers = 2, c.ffn_dim = 128, c.text_dim = 32, c.freq_dim = 64;
    return c;
}

struct Fixture {
    DiT dit;
    DiTConstants consts;
    explicit Fixture(uint64_t seed = 1)
        : dit(random_weights(test_config(), seed), "test.safetensors", LoadOptions{at::kDouble}, 32) {
        consts = dit.prepare(at::randn({1, 7, 32}, kF64));
    }
};

/// Latents and LQ tokens of chunk k on an 8x24 token grid (128x384 output; S = 1x3 windows).
struct ChunkInput {
    at::Tensor latents, lq;
};
std::vector<ChunkInput> make_chunks(int64_t n, int64_t dim, uint64_t seed) {
    at::manual_seed(seed);
    std::vector<ChunkInput> v;
    for (int64_t k = 0; k < n; ++k) {
        const int64_t f = k == 0 ? 6 : 2;
        v.push_back({at::randn({1, 16, f, 16, 48}, kF64), 0.5 * at::randn({1, f * 8 * 24, dim}, kF64)});
    }
    return v;
}

AttentionOptions sparse_options() {
    AttentionOptions o;
    o.sparse_ratio = 0.05;  // topk = int(9 * 1.0) - 1 = 8 of 21 (chunk 0) / 28 (later) allowed per slice
    o.local_range = 3;
    return o;
}

std::string load_error(const TensorMap& m) {
    return flashvsr::testing::model_error_of([&] { DiT d(m, "dit.safetensors", LoadOptions{at::kDouble}); });
}

}  // namespace

TEST(DitManifest, FullKeyContract) {
    const auto specs = DiTConfig::manifest(DiTConfig::preset("full"));
    EXPECT_EQ(specs.size(), 825u);
    EXPECT_EQ(manifest_numel(specs), 1418996800);
    EXPECT_EQ(key_hash(specs), "9269f8db9040a9d860eaca435be61814");
    int64_t block0 = 0;
    for (const auto& s : specs) {
        block0 += s.name.rfind("blocks.0.", 0) == 0 ? s.numel() : 0;
    }
    EXPECT_EQ(block0, 46440704);
    EXPECT_EQ(specs.front().name, "patch_embedding.weight");
    EXPECT_EQ(specs.back().name, "head.head.bias");
    EXPECT_EQ(DiTConfig::preset("full").num_heads(), 12);
    EXPECT_THROW(DiTConfig::preset("huge"), flashvsr::InputError);
}

TEST(DitManifest, ConfigFromShapes) {
    for (const std::string size : {"tiny", "small"}) {
        const auto want = DiTConfig::preset(size);
        TensorMap m;
        for (const auto& s : DiTConfig::manifest(want)) {
            m[s.name] = at::zeros(s.shape);
        }
        const auto got = DiTConfig::from_tensors(m, "x.safetensors");
        EXPECT_EQ(got.dim, want.dim) << size;
        EXPECT_EQ(got.ffn_dim, want.ffn_dim);
        EXPECT_EQ(got.num_layers, want.num_layers);
        EXPECT_EQ(got.text_dim, want.text_dim);
        EXPECT_EQ(got.freq_dim, 256);
        EXPECT_EQ(got.in_dim, 16);
        EXPECT_EQ(got.out_dim, 16);
        EXPECT_EQ(got.num_heads(), want.dim / 128);
    }
}

TEST(DitManifest, BadBlockNumberIsAModelError) {
    auto m = random_weights(DiTConfig::preset("tiny"), 5);
    m["blocks.x.w"] = at::zeros({1});
    EXPECT_EQ(load_error(m), "dit.safetensors: key 'blocks.x.w' has no block number after 'blocks.'");
}

TEST(DitManifest, StrictLoadingNamesTheKey) {
    const auto good = random_weights(DiTConfig::preset("tiny"), 5);
    EXPECT_EQ(load_error(good), "<no error>");
    auto missing = good;
    missing.erase("blocks.1.ffn.2.bias");
    EXPECT_EQ(load_error(missing),
              "dit.safetensors: missing key 'blocks.1.ffn.2.bias' (expected shape [256])");
    auto wrong = good;
    wrong["blocks.0.self_attn.norm_q.weight"] = at::zeros({255});
    EXPECT_EQ(load_error(wrong),
              "dit.safetensors: key 'blocks.0.self_attn.norm_q.weight' has shape [255], expected [256]");
    auto extra = good;
    extra["blocks.0.self_attn.extra"] = at::zeros({2});
    EXPECT_EQ(load_error(extra), "dit.safetensors: unexpected key 'blocks.0.self_attn.extra' with shape [2]");
    auto no_patch = good;
    no_patch.erase("patch_embedding.weight");
    EXPECT_EQ(load_error(no_patch), "dit.safetensors: missing key 'patch_embedding.weight'");
    auto gap = good;
    gap["blocks.3.modulation"] = at::zeros({1, 6, 256});
    EXPECT_NE(load_error(gap).find("block indices are not 0..2"), std::string::npos) << load_error(gap);
}

TEST(DitConstants, TimeEmbeddingAndCrossKv) {
    Fixture fx;
    const auto w = random_weights(test_config(), 1);
    // Independent sinusoid: cos half first, freq_i = 10000^(-i/32), t = 1000.
    auto emb = at::zeros({1, 64}, kF64);
    for (int64_t i = 0; i < 32; ++i) {
        const double a = 1000.0 * std::pow(10000.0, -static_cast<double>(i) / 32.0);
        emb[0][i] = std::cos(a);
        emb[0][32 + i] = std::sin(a);
    }
    const auto t =
        at::linear(at::silu(at::linear(emb, w.at("time_embedding.0.weight"), w.at("time_embedding.0.bias"))),
                   w.at("time_embedding.2.weight"), w.at("time_embedding.2.bias"));
    EXPECT_LT(max_abs(fx.consts.t, t), 1e-12);
    const auto t_mod =
        at::linear(at::silu(t), w.at("time_projection.1.weight"), w.at("time_projection.1.bias"));
    EXPECT_LT(max_abs(fx.consts.t_mod, t_mod.view({1, 6, 64})), 1e-12);
    ASSERT_EQ(fx.consts.cross_k.size(), 2u);
    ASSERT_EQ(fx.consts.cross_k[1].sizes(), at::IntArrayRef({1, 7, 64}));
    // Keys are RMS-normed over the full width before the weight.
    const auto unit = fx.consts.cross_k[1] / w.at("blocks.1.cross_attn.norm_k.weight");
    EXPECT_LT((unit.pow(2).mean(-1) - 1).abs().max().item<double>(), 1e-4);
    EXPECT_GT(fx.consts.bytes(), 0);
}

TEST(DitPatchify, RoundTripAndConvEquivalence) {
    DiTConfig c = test_config();  // dim 64 = 16 * 2 * 2
    DiT dit(c, LoadOptions{at::kDouble});
    TensorMap w = random_weights(c, 2);
    // Identity-like patch embedding: output channel (py*2+px)*16 + ch <- input (ch, py, px).
    auto pw = at::zeros({64, 16, 1, 2, 2}, kF64);
    for (int64_t ch = 0; ch < 16; ++ch) {
        for (int64_t py = 0; py < 2; ++py) {
            for (int64_t px = 0; px < 2; ++px) {
                pw[(py * 2 + px) * 16 + ch][ch][0][py][px] = 1.0;
            }
        }
    }
    w["patch_embedding.weight"] = pw;
    w["patch_embedding.bias"] = at::zeros({64}, kF64);
    dit.params().load(w, "mem", LoadOptions{at::kDouble});
    const auto x = at::randn({1, 16, 6, 16, 24}, kF64);
    const auto tok = dit.patchify(x);
    ASSERT_EQ(tok.sizes(), at::IntArrayRef({1, 6 * 8 * 12, 64}));
    EXPECT_TRUE(at::equal(dit.unpatchify(tok, 6, 8, 12), x));
    // With random weights patchify equals the Conv3d it replaces.
    const auto rw = at::randn({64, 16, 1, 2, 2}, kF64), rb = at::randn({64}, kF64);
    w["patch_embedding.weight"] = rw;
    w["patch_embedding.bias"] = rb;
    dit.params().load(w, "mem", LoadOptions{at::kDouble});
    const auto conv =
        at::conv3d(x, rw, rb, {1, 2, 2}).flatten(2).transpose(1, 2);  // [1,64,f,h,w] -> [1,L,64]
    EXPECT_LT(max_abs(dit.patchify(x), conv), 1e-12);
}

TEST(DitForward, FastPathEqualsDenseOracleOverThreeChunks) {
    Fixture fx;
    const auto chunks = make_chunks(3, 64, 21);
    // sparse_ratio 0.02: topk = int(9 * 0.4) - 1 = 2, so each (head, slice) of 3 query windows keeps 2
    // key windows and at least one query window is empty in every block.
    for (double ratio : {0.05, 0.02}) {
        auto opts = sparse_options();
        opts.sparse_ratio = ratio;
        auto oracle = opts;
        oracle.dense_oracle = true;
        DiTState a, b;
        for (const auto& ch : chunks) {
            const auto va = fx.dit.forward_chunk(ch.latents, ch.lq, fx.consts, a, opts);
            const auto vb = fx.dit.forward_chunk(ch.latents, ch.lq, fx.consts, b, oracle);
            ASSERT_EQ(va.sizes(), ch.latents.sizes());
            EXPECT_LT(max_abs(va, vb), 1e-10) << "sparse_ratio " << ratio << " chunk " << a.chunk_index - 1;
            EXPECT_FALSE(va.isnan().any().item<bool>());
            EXPECT_GT(va.abs().max().item<double>(), 1e-3);
        }
    }
    // The LQ tokens matter (they are added before block 0).
    const auto opts = sparse_options();
    DiTState c;
    const auto with = fx.dit.forward_chunk(chunks[0].latents, chunks[0].lq, fx.consts, c, opts);
    c.reset();
    const auto without = fx.dit.forward_chunk(chunks[0].latents, at::Tensor(), fx.consts, c, opts);
    EXPECT_GT(max_abs(with, without), 1e-3);
}

TEST(DitForward, FfnInTokenBlocksEqualsOneBlock) {
    // The FFN runs a block of tokens at a time (its hidden layer is the DiT's largest activation): any block
    // size, even ones that leave a short last block, gives the one-block result over a stream of chunks;
    // float64 to its rounding, bfloat16 (where the residual is rounded out of place and copied back) to its.
    Fixture fx;
    const auto chunks = make_chunks(2, 64, 24);  // 1152 tokens, then 384
    for (const int64_t block : {7, 384, 1000}) {
        auto blocked = sparse_options();
        blocked.ffn_tokens = block;
        DiTState a, b;
        for (const auto& ch : chunks) {
            const auto va = fx.dit.forward_chunk(ch.latents, ch.lq, fx.consts, a, sparse_options());
            const auto vb = fx.dit.forward_chunk(ch.latents, ch.lq, fx.consts, b, blocked);
            EXPECT_LT(max_abs(va, vb), 1e-12) << block << " tokens per block, chunk " << a.chunk_index - 1;
        }
    }
    const DiT bf(random_weights(test_config(), 1), "test.safetensors", LoadOptions{at::kBFloat16}, 32);
    const DiTConstants consts = bf.prepare(at::randn({1, 7, 32}, kF64).to(at::kBFloat16));
    auto blocked = sparse_options();
    blocked.ffn_tokens = 100;
    DiTState a, b;
    const auto va =
        bf.forward_chunk(chunks[0].latents, chunks[0].lq, consts, a, sparse_options()).to(at::kDouble);
    const auto vb = bf.forward_chunk(chunks[0].latents, chunks[0].lq, consts, b, blocked).to(at::kDouble);
    EXPECT_GT(va.abs().max().item<double>(), 1e-2);
    EXPECT_LE(max_abs(va, vb), 1e-2 * va.abs().max().item<double>());
}

TEST(DitForward, AfterBlockRunsAfterEachBlockInOrderAndChangesNothing) {
    // The hook (where the tile runner trims the host heap) runs once per block, after the block: when it runs
    // for block i, block i has replaced its K/V window and block i + 1 has not; the output is the same.
    Fixture fx;
    const auto chunks = make_chunks(2, 64, 25);
    const size_t layers = static_cast<size_t>(test_config().num_layers);
    ASSERT_GE(layers, 2u);
    DiTState a, b;
    for (const auto& ch : chunks) {
        const std::vector<at::Tensor> before = b.k_cache;
        size_t calls = 0;
        const auto hook = [&] {
            ASSERT_LT(calls, layers);
            EXPECT_TRUE(b.k_cache[calls].defined());
            if (!before.empty()) {
                EXPECT_FALSE(b.k_cache[calls].is_same(before[calls])) << "block " << calls;
                if (calls + 1 < layers) {
                    EXPECT_TRUE(b.k_cache[calls + 1].is_same(before[calls + 1])) << "block " << calls + 1;
                }
            } else if (calls + 1 < layers) {
                EXPECT_FALSE(b.k_cache[calls + 1].defined()) << "block " << calls + 1;
            }
            ++calls;
        };
        const auto va = fx.dit.forward_chunk(ch.latents, ch.lq, fx.consts, a, sparse_options());
        const auto vb = fx.dit.forward_chunk(ch.latents, ch.lq, fx.consts, b, sparse_options(), hook);
        EXPECT_EQ(calls, layers);
        EXPECT_TRUE(at::equal(va, vb)) << "chunk " << a.chunk_index - 1;
    }
}

TEST(DitForward, MovedInLqTokensAreReleasedOnceAdded) {
    // The tile runner moves a chunk's LQ tokens in (66 MB at 896x512 in chunk 0): the DiT drops them once
    // they are added to the patch tokens, so they are not held under the blocks; a caller's copy stays valid.
    Fixture fx;
    const auto chunks = make_chunks(1, 64, 26);
    DiTState a, b;
    const at::Tensor kept = chunks[0].lq.clone();
    at::Tensor moved = chunks[0].lq.clone();
    const c10::weak_intrusive_ptr<c10::StorageImpl> storage(moved.storage().getWeakStorageImpl());
    int checked = 0;
    const auto hook = [&] {
        EXPECT_TRUE(storage.expired()) << "block " << checked;
        ++checked;
    };
    const at::Tensor vb =
        fx.dit.forward_chunk(chunks[0].latents, std::move(moved), fx.consts, b, sparse_options(), hook);
    EXPECT_EQ(checked, test_config().num_layers);
    const at::Tensor va = fx.dit.forward_chunk(chunks[0].latents, kept, fx.consts, a, sparse_options());
    EXPECT_TRUE(at::equal(kept, chunks[0].lq)) << "the caller's tokens are not changed";
    EXPECT_TRUE(at::equal(va, vb));
}

TEST(DitForward, KvTrimmingSlicesAndRatioOneEqualsTwo) {
    Fixture fx;
    const auto chunks = make_chunks(3, 64, 22);
    const int64_t s = 3;
    struct Case {
        double ratio;
        int64_t after0, later;
    };
    std::vector<std::vector<at::Tensor>> outs;
    for (const Case& cs : {Case{1.0, 2, 2}, Case{2.0, 2, 2}, Case{3.0, 3, 3}, Case{4.0, 3, 4}}) {
        auto opts = sparse_options();
        opts.kv_ratio = cs.ratio;
        DiTState st;
        outs.emplace_back();
        for (size_t k = 0; k < chunks.size(); ++k) {
            const std::vector<at::Tensor> prev_k = st.k_cache, prev_v = st.v_cache;
            outs.back().push_back(fx.dit.forward_chunk(chunks[k].latents, chunks[k].lq, fx.consts, st, opts));
            for (size_t b = 0; b < 2; ++b) {
                const int64_t n = st.k_cache[b].size(0);
                EXPECT_EQ(n, (k == 0 ? cs.after0 : cs.later) * s)
                    << "kv_ratio " << cs.ratio << " chunk " << k;
                EXPECT_EQ(st.v_cache[b].sizes(), st.k_cache[b].sizes());
                if (k > 0) {
                    // Oldest slices dropped first: the kept old windows are the newest of the previous
                    // cache, followed by this chunk's slice.
                    const int64_t old = n - s;
                    const int64_t np = prev_k[b].size(0);
                    EXPECT_TRUE(
                        at::equal(st.k_cache[b].narrow(0, 0, old), prev_k[b].narrow(0, np - old, old)));
                    EXPECT_TRUE(
                        at::equal(st.v_cache[b].narrow(0, 0, old), prev_v[b].narrow(0, np - old, old)));
                }
            }
        }
    }
    for (size_t k = 0; k < chunks.size(); ++k) {
        EXPECT_TRUE(at::equal(outs[0][k], outs[1][k])) << "kv 1.0 vs 2.0, chunk " << k;
    }
    EXPECT_TRUE(at::equal(outs[0][0], outs[2][0]));   // chunk 0 does not depend on the ratio
    EXPECT_GT(max_abs(outs[0][2], outs[2][2]), 0.0);  // later chunks see a different span
}

namespace {
// Storages of the K/V windows a chunk starts with, and how many of them are alive at each aten::cat of the
// forward (the cache concatenation of every block is one).
std::vector<c10::weak_intrusive_ptr<c10::StorageImpl>> g_old_windows;
std::vector<int64_t> g_alive_at_cat;

std::unique_ptr<at::ObserverContext> count_alive_windows(const at::RecordFunction& fn) {
    if (std::string_view(fn.name()) == "aten::cat") {
        int64_t alive = 0;
        for (const auto& w : g_old_windows) {
            alive += w.expired() ? 0 : 1;
        }
        g_alive_at_cat.push_back(alive);
    }
    return nullptr;
}
}  // namespace

TEST(DitForward, EachBlockFreesItsOldWindowBeforeTheNextBlock) {
    // The peak of a chunk holds one block's old and new K/V windows, not every block's: block 0's old
    // windows are gone by the time block 1 concatenates its own.
    Fixture fx;
    const auto chunks = make_chunks(2, 64, 5);
    DiTState st;
    const at::Tensor out0 =
        fx.dit.forward_chunk(chunks[0].latents, chunks[0].lq, fx.consts, st, sparse_options());
    ASSERT_EQ(st.k_cache.size(), 2u);
    g_old_windows.clear();
    g_alive_at_cat.clear();
    for (const auto* cache : {&st.k_cache, &st.v_cache}) {
        for (const at::Tensor& t : *cache) {
            g_old_windows.emplace_back(t.storage().getWeakStorageImpl());
        }
    }
    const auto handle = at::addThreadLocalCallback(at::RecordFunctionCallback(&count_alive_windows));
    fx.dit.forward_chunk(chunks[1].latents, chunks[1].lq, fx.consts, st, sparse_options());
    at::removeCallback(handle);
    ASSERT_GE(g_alive_at_cat.size(), 4u);  // K and V of 2 blocks at least
    EXPECT_EQ(g_alive_at_cat.front(), 4);  // block 0's concatenation: every old window still alive
    // block 1's concatenations: only block 1's own old K and V (4 if every block kept its old window to the
    // end)
    EXPECT_EQ(*std::min_element(g_alive_at_cat.begin(), g_alive_at_cat.end()), 2);
    for (const auto& w : g_old_windows) {
        EXPECT_TRUE(w.expired());
    }
    EXPECT_EQ(st.chunk_index, 2);
    EXPECT_EQ(st.grid_h, 8);
}

TEST(DitForward, StateBytesFlatAndResetReproduces) {
    Fixture fx;
    const auto chunks = make_chunks(6, 64, 23);
    auto opts = sparse_options();
    opts.kv_ratio = 4.0;
    DiTState st;
    std::vector<int64_t> bytes;
    std::vector<at::Tensor> first;
    for (const auto& ch : chunks) {
        first.push_back(fx.dit.forward_chunk(ch.latents, ch.lq, fx.consts, st, opts));
        bytes.push_back(st.bytes());
    }
    const int64_t slice_bytes = 2 /*K,V*/ * 2 /*blocks*/ * 3 * 128 * 64 * 8;
    EXPECT_EQ(bytes[0], 3 * slice_bytes);
    for (size_t k = 1; k < bytes.size(); ++k) {
        EXPECT_EQ(bytes[k], 4 * slice_bytes) << "chunk " << k;
    }
    EXPECT_EQ(st.chunk_index, 6);
    st.reset();
    EXPECT_EQ(st.bytes(), 0);
    EXPECT_EQ(st.chunk_index, 0);
    // Interleaving a second stream on the same model changes nothing.
    DiTState other;
    const auto others = make_chunks(2, 64, 99);
    for (size_t k = 0; k < 3; ++k) {
        if (k < others.size()) {
            fx.dit.forward_chunk(others[k].latents, others[k].lq, fx.consts, other, opts);
        }
        EXPECT_TRUE(
            at::equal(fx.dit.forward_chunk(chunks[k].latents, chunks[k].lq, fx.consts, st, opts), first[k]))
            << "chunk " << k;
    }
}

TEST(DitForward, AbsoluteTemporalPositions) {
    // Chunk 0 covers latent frames 0..5, chunk k >= 1 frames 4+2k, 5+2k (MODEL.md §2.6 item 2).
    EXPECT_EQ(DiT::first_frame_position(0), 0);
    EXPECT_EQ(DiT::first_frame_position(1), 6);
    EXPECT_EQ(DiT::first_frame_position(2), 8);
    EXPECT_EQ(DiT::first_frame_position(600), 1204);  // beyond upstream's 1024-row table
}

TEST(DitForward, InputContractErrors) {
    Fixture fx;
    DiTState st;
    const auto opts = sparse_options();
    EXPECT_THROW(fx.dit.forward_chunk(at::randn({1, 16, 2, 16, 48}, kF64), {}, fx.consts, st, opts),
                 c10::Error);
    EXPECT_THROW(fx.dit.forward_chunk(at::randn({1, 16, 6, 24, 48}, kF64), {}, fx.consts, st, opts),
                 c10::Error);
    EXPECT_EQ(st.chunk_index, 0);
    fx.dit.forward_chunk(at::randn({1, 16, 6, 16, 48}, kF64), {}, fx.consts, st, opts);
    // Later chunks: 2 frames on the same grid.
    EXPECT_THROW(fx.dit.forward_chunk(at::randn({1, 16, 6, 16, 48}, kF64), {}, fx.consts, st, opts),
                 c10::Error);
    EXPECT_THROW(fx.dit.forward_chunk(at::randn({1, 16, 2, 16, 32}, kF64), {}, fx.consts, st, opts),
                 c10::Error);
    EXPECT_THROW(fx.dit.forward_chunk(at::randn({1, 16, 2, 16, 48}, kF64), at::zeros({1, 5, 64}, kF64),
                                      fx.consts, st, opts),
                 c10::Error);
    EXPECT_EQ(st.chunk_index, 1);  // failed calls leave the state untouched
}

TEST(DitForward, TinyPresetBf16Runs) {
    DiT dit(random_weights(DiTConfig::preset("tiny"), 4, at::kBFloat16), "tiny.safetensors",
            LoadOptions{at::kBFloat16});
    const auto consts = dit.prepare(at::randn({1, 16, 64}));
    DiTState st;
    for (int64_t k = 0; k < 2; ++k) {
        const auto v = dit.forward_chunk(at::randn({1, 16, k == 0 ? 6 : 2, 16, 16}), {}, consts, st);
        EXPECT_EQ(v.scalar_type(), at::kBFloat16);
        EXPECT_TRUE(v.isfinite().all().item<bool>());
        EXPECT_GT(v.abs().max().item<float>(), 1e-3f);
    }
}
