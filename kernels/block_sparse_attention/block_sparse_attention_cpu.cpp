// CPU twin of block_sparse_attention: a flash-style loop over work items of one head and a few consecutive
// query windows.
//
// Work items (attention_work_items): per head, consecutive query windows that keep something are grouped,
// up to CpuAttentionTuning::max_group (2) windows, while the union of their kept key windows is hardly
// larger than each one's own (sum of kept >= 0.9 * windows * |union|); a window that keeps nothing gets no
// item and stays exactly 0. An item takes the union's key windows in nearly equal pieces of at most
// piece_blocks (8) windows; within a piece, each run of consecutive kept windows is one (r*128) x head_dim
// matrix read in place (row stride C), so no key/value block is ever copied. For each piece: S = scale *
// Q K^T for all the item's query rows at once into a per-thread [rows, <= 8*128] buffer (one GEMM per run: a
// group of 2 windows halves the K and V packing per FLOP), the fused online-softmax step of each
// window (online_softmax.h: the columns a window does not keep get p = 0; AVX-512 with a fast exp for
// float), and O += P V (one GEMM per run); at the end O /= l. Items are handed to the threads one at a
// time (an atomic counter), and each GEMM runs on its calling thread. The float GEMMs take one of three ways
// (CpuAttentionTuning::gemm, default by CPU): on AVX-512 CPUs ATen's cpublas::brgemm, oneDNN's batch-reduce
// micro-kernel: it takes no transposes and no alpha, so K is transposed once per call (K^T [C, nk*128]) and Q
// scaled once per call; on an AVX-512 AMD CPU it runs these products at 2.2x MKL's sgemm, which takes AVX2
// code on AMD. On AVX2-only CPUs our own register tiles (attention_tiles.h) over K^T and V panels packed once
// per call: MKL's sgemm, the faster of the two libraries there, repacks Q, K, V and the whole score matrix on
// every call. Elsewhere, MKL's sgemm.
// double goes through the wheel's Fortran BLAS (MKL). float16 and bfloat16 inputs are
// computed in float32 (one conversion of q, k, v per call).
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/native/CPUBlas.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/mul.h>
#include <ATen/ops/zeros.h>
#include <torch/library.h>

#include <algorithm>
#include <atomic>
#include <limits>
#include <type_traits>
#include <vector>

#include "csrc/core/cpu_isa.h"
#include "kernels/block_sparse_attention/attention_tiles.h"
#include "kernels/block_sparse_attention/block_sparse_attention.h"
#include "kernels/block_sparse_attention/block_sparse_attention_cpu.h"
#include "kernels/block_sparse_attention/online_softmax.h"

// Fortran BLAS of the torch wheel (MKL on x86-64): C = alpha * op(A) * op(B) + beta * C, column-major.
extern "C" {
void sgemm_(const char* transa, const char* transb, const int* m, const int* n, const int* k,
            const float* alpha, const float* a, const int* lda, const float* b, const int* ldb,
            const float* beta, float* c, const int* ldc);
void dgemm_(const char* transa, const char* transb, const int* m, const int* n, const int* k,
            const double* alpha, const double* a, const int* lda, const double* b, const int* ldb,
            const double* beta, double* c, const int* ldc);
}

namespace flashvsr::kernels {
namespace {

template <typename T>
void gemm(char ta, char tb, int64_t m, int64_t n, int64_t k, T alpha, const T* a, int64_t lda, const T* b,
          int64_t ldb, T beta, T* c, int64_t ldc) {
    const int m_ = static_cast<int>(m), n_ = static_cast<int>(n), k_ = static_cast<int>(k);
    const int lda_ = static_cast<int>(lda), ldb_ = static_cast<int>(ldb), ldc_ = static_cast<int>(ldc);
    if constexpr (std::is_same_v<T, float>) {
        sgemm_(&ta, &tb, &m_, &n_, &k_, &alpha, a, &lda_, b, &ldb_, &beta, c, &ldc_);
    } else {
        dgemm_(&ta, &tb, &m_, &n_, &k_, &alpha, a, &lda_, b, &ldb_, &beta, c, &ldc_);
    }
}

/// float: C[m x n] (+)= A[m x k] B[k x n], row-major with leading dimensions (cpublas::brgemm).
void brgemm(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb,
            float* c, int64_t ldc, bool accumulate) {
    at::native::cpublas::brgemm(m, n, k, lda, ldb, ldc, accumulate, a, b, c, /*is_vnni=*/false);
}

struct Run {
    int64_t first;  // first key window
    int64_t count;  // consecutive windows
};

struct Range {
    int64_t begin;  // key windows [begin, end)
    int64_t end;
};

/// What a work item reads and writes; the packed forms exist for the float GEMM way that uses them.
template <typename T>
struct Operands {
    const T* q = nullptr;  // [nq*128, C]; pre-scaled for kBrgemm
    const T* k = nullptr;  // [nk*128, C]
    const T* v = nullptr;  // [nk*128, C]
    const bool* mask = nullptr;
    T* out = nullptr;
    CpuAttentionGemm gemm = CpuAttentionGemm::kBlas;  // kBlas for double
    const float* kt = nullptr;                        // kBrgemm: K^T [C, nk*128]
    const float* kp = nullptr;  // kTiles: key panels, hd * nk*128 floats per head (attention_tiles.h)
    const float* vp = nullptr;  // kTiles: value panels, as kp
};

/// The pieces of a batch: its kept key windows (row: the union of its windows' masks) split into nearly
/// equal pieces of at most piece_blocks kept windows (18 windows: 6 + 6 + 6, not 8 + 8 + 2), each given as
/// the range of key windows it spans.
std::vector<Range> pieces_of(const std::vector<bool>& row, int64_t piece_blocks) {
    const int64_t total = std::count(row.begin(), row.end(), true);
    const int64_t n_pieces = (total + piece_blocks - 1) / piece_blocks;
    std::vector<Range> pieces;
    int64_t taken = 0, begin = -1;
    for (int64_t j = 0; j < static_cast<int64_t>(row.size()); ++j) {
        if (!row[static_cast<size_t>(j)]) {
            continue;
        }
        begin = begin < 0 ? j : begin;
        ++taken;
        if (taken == total * (static_cast<int64_t>(pieces.size()) + 1) / n_pieces) {
            pieces.push_back({begin, j + 1});
            begin = -1;
        }
    }
    return pieces;
}

/// The runs of key windows in `range` that any of `count` consecutive mask rows (nk apart) keeps.
void runs_of(const bool* rows, int64_t count, int64_t nk, Range range, std::vector<Run>& runs) {
    runs.clear();
    for (int64_t j = range.begin; j < range.end; ++j) {
        bool any = false;
        for (int64_t i = 0; i < count && !any; ++i) {
            any = rows[i * nk + j];
        }
        if (!any) {
            continue;
        }
        if (!runs.empty() && runs.back().first + runs.back().count == j) {
            ++runs.back().count;
        } else {
            runs.push_back({j, 1});
        }
    }
}

/// Per-thread buffers of one work item.
template <typename T>
struct Scratch {
    std::vector<T> scores;  // [item rows, piece width]
    std::vector<T> m, l;    // [item rows]: running row maxima and sums
    std::vector<bool> uni;
    std::vector<Run> runs;
    std::vector<uint8_t> keep;  // [blocks of the runs]: kept by the current window
};

/// S[:, col:col+len] = scale * Q K_run^T for one run of key windows (keys key0 .. key0+len of head h): the
/// item's rows qi (row stride C) into s (row-major [rows, ld]).
template <typename T>
void score_run(const Operands<T>& op, const AttentionGeometry& g, int64_t h, const T* qi, int64_t rows,
               int64_t key0, int64_t len, T scale, T* s, int64_t ld) {
    const int64_t c = g.channels, hd = g.head_dim, keys = g.nk * kBlockTokens;
    if constexpr (std::is_same_v<T, float>) {
        if (op.gemm == CpuAttentionGemm::kTiles) {
            attention_tiles::scores(qi, c, rows, op.kp + h * hd * keys, key0, len, hd, scale, s, ld);
            return;
        }
        if (op.gemm == CpuAttentionGemm::kBrgemm) {  // q comes scaled; kt is K^T [C, nk*128]
            brgemm(rows, len, hd, qi, c, op.kt + h * hd * keys + key0, keys, s, ld, false);
            return;
        }
    }
    // Column-major C (len x rows, ldc ld) is row-major [rows, ld].
    gemm<T>('T', 'N', len, rows, hd, scale, op.k + key0 * c + h * hd, c, qi, c, T(0), s, ld);
}

/// O += P[:, :len] V_run for the same run: p (row-major, row stride ld) into o (the item's rows of head h,
/// row stride C).
template <typename T>
void accumulate_run(const Operands<T>& op, const AttentionGeometry& g, int64_t h, const T* p, int64_t ld,
                    int64_t rows, int64_t key0, int64_t len, T* o) {
    const int64_t c = g.channels, hd = g.head_dim, keys = g.nk * kBlockTokens;
    if constexpr (std::is_same_v<T, float>) {
        if (op.gemm == CpuAttentionGemm::kTiles) {
            attention_tiles::accumulate(p, ld, rows, op.vp + h * hd * keys, keys, key0, len, hd, o, c);
            return;
        }
        if (op.gemm == CpuAttentionGemm::kBrgemm) {
            brgemm(rows, hd, len, p, ld, op.v + key0 * c + h * hd, c, o, c, true);
            return;
        }
    }
    gemm<T>('N', 'N', hd, rows, len, T(1), op.v + key0 * c + h * hd, c, p, ld, T(1), o, c);
}

/// One work item: for each of its windows i, out[i, :, h] = softmax(scale * Q_i K_S^T) V_S over its own kept
/// windows S. The union of the item's kept windows is taken piece by piece; a piece's scores are computed
/// for all the item's query rows at once (one GEMM per run of consecutive windows) and the columns a
/// window does not keep are left out of its softmax.
template <typename T>
void attend_item(const Operands<T>& op, const AttentionWorkItem& item, const AttentionGeometry& g,
                 int64_t piece_blocks, softmax_rows::Isa isa, Scratch<T>& sc) {
    constexpr int64_t t = kBlockTokens;
    const int64_t c = g.channels, hd = g.head_dim, h = item.h, rows = item.count * t;
    const bool* mrow = op.mask + (h * g.nq + item.first) * g.nk;  // the item's mask rows, nk apart
    sc.uni.assign(static_cast<size_t>(g.nk), false);
    for (int64_t i = 0; i < item.count; ++i) {
        for (int64_t j = 0; j < g.nk; ++j) {
            if (mrow[i * g.nk + j]) {
                sc.uni[static_cast<size_t>(j)] = true;
            }
        }
    }
    sc.m.assign(static_cast<size_t>(rows), -std::numeric_limits<T>::infinity());
    sc.l.assign(static_cast<size_t>(rows), T(0));
    const T scale = static_cast<T>(g.scale);
    T* scores = sc.scores.data();
    T* o = op.out + item.first * t * c + h * hd;       // [rows, hd], row stride c (consecutive windows)
    const T* qi = op.q + item.first * t * c + h * hd;  // [rows, hd], row stride c
    for (const Range& piece : pieces_of(sc.uni, piece_blocks)) {
        runs_of(mrow, item.count, g.nk, piece, sc.runs);
        int64_t blocks = 0;
        for (const Run& run : sc.runs) {
            blocks += run.count;
        }
        const int64_t w = blocks * t;
        // The tiles' score rows are padded by 16 floats: rows a power-of-two bytes apart share L1 sets.
        const int64_t ld = op.gemm == CpuAttentionGemm::kTiles ? w + attention_tiles::kPanel : w;
        int64_t col = 0;
        for (const Run& run : sc.runs) {
            const int64_t len = run.count * t;
            score_run<T>(op, g, h, qi, rows, run.first * t, len, scale, scores + col, ld);
            col += len;
        }
        for (int64_t gi = 0; gi < item.count; ++gi) {
            const uint8_t* keep = nullptr;  // null: window gi keeps every block of the runs
            if (item.count > 1) {
                sc.keep.clear();
                bool all = true;
                for (const Run& run : sc.runs) {
                    for (int64_t j = run.first; j < run.first + run.count; ++j) {
                        sc.keep.push_back(mrow[gi * g.nk + j] ? 1 : 0);
                        all = all && mrow[gi * g.nk + j];
                    }
                }
                keep = all ? nullptr : sc.keep.data();
            }
            const int64_t r0 = gi * t;
            softmax_rows::online_softmax_step<T>(scores + gi * t * ld, t, w, ld, keep, sc.m.data() + r0,
                                                 sc.l.data() + r0, o + gi * t * c, c, hd, isa);
        }
        col = 0;
        for (const Run& run : sc.runs) {  // O += P[:, col:col+len] V_run
            const int64_t len = run.count * t;
            accumulate_run<T>(op, g, h, scores + col, ld, rows, run.first * t, len, o);
            col += len;
        }
    }
    softmax_rows::finish_rows<T>(o, rows, c, hd, sc.l.data());
}

template <typename T>
void attend(const Operands<T>& op, const AttentionGeometry& g, const CpuAttentionTuning& tuning) {
    const std::vector<AttentionWorkItem> items = attention_work_items(op.mask, g, tuning);
    int64_t max_rows = 0;
    for (const AttentionWorkItem& it : items) {
        max_rows = std::max(max_rows, it.count * kBlockTokens);
    }
    const int64_t max_ld = tuning.piece_blocks * kBlockTokens + attention_tiles::kPanel;
    std::atomic<size_t> next{0};
    at::parallel_for(0, at::get_num_threads(), 1, [&](int64_t, int64_t) {
        Scratch<T> sc;
        sc.scores.resize(static_cast<size_t>(max_rows * max_ld));
        for (size_t i = next++; i < items.size(); i = next++) {
            attend_item<T>(op, items[i], g, tuning.piece_blocks, tuning.isa, sc);
        }
        if (op.gemm == CpuAttentionGemm::kBrgemm) {
            at::native::cpublas::brgemm_release(/*is_vnni=*/false);
        }
    });
}

at::Tensor block_sparse_attention_cpu_default(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                              const at::Tensor& mask, int64_t num_heads) {
    return block_sparse_attention_cpu(q, k, v, mask, num_heads, CpuAttentionTuning{});
}

}  // namespace

std::vector<AttentionWorkItem> attention_work_items(const bool* mask, const AttentionGeometry& g,
                                                    const CpuAttentionTuning& tuning) {
    std::vector<AttentionWorkItem> items;
    std::vector<int64_t> counts(static_cast<size_t>(g.nq));
    std::vector<bool> uni(static_cast<size_t>(g.nk));
    for (int64_t h = 0; h < g.heads; ++h) {
        const bool* mh = mask + h * g.nq * g.nk;
        for (int64_t i = 0; i < g.nq; ++i) {
            counts[static_cast<size_t>(i)] = std::count(mh + i * g.nk, mh + (i + 1) * g.nk, true);
        }
        for (int64_t i = 0; i < g.nq;) {
            if (counts[static_cast<size_t>(i)] == 0) {
                ++i;  // keeps nothing: no item, stays 0
                continue;
            }
            uni.assign(mh + i * g.nk, mh + (i + 1) * g.nk);
            int64_t n = 1, kept_sum = counts[static_cast<size_t>(i)];
            while (n < tuning.max_group && i + n < g.nq && counts[static_cast<size_t>(i + n)] > 0) {
                const bool* next = mh + (i + n) * g.nk;
                int64_t uni_count = 0;
                for (int64_t j = 0; j < g.nk; ++j) {
                    uni_count += (uni[static_cast<size_t>(j)] || next[j]) ? 1 : 0;
                }
                const int64_t sum = kept_sum + counts[static_cast<size_t>(i + n)];
                if (static_cast<double>(sum) < tuning.min_fill * static_cast<double>((n + 1) * uni_count)) {
                    break;
                }
                for (int64_t j = 0; j < g.nk; ++j) {
                    uni[static_cast<size_t>(j)] = uni[static_cast<size_t>(j)] || next[j];
                }
                kept_sum = sum;
                ++n;
            }
            items.push_back({h, i, n});
            i += n;
        }
    }
    return items;
}

CpuAttentionGemm default_attention_gemm() {
    if (core::cpu_supports(core::CpuIsa::kAvx512)) {
        return CpuAttentionGemm::kBrgemm;
    }
    return core::cpu_supports(core::CpuIsa::kAvx2) ? CpuAttentionGemm::kTiles : CpuAttentionGemm::kBlas;
}

at::Tensor block_sparse_attention_cpu(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                      const at::Tensor& mask, int64_t num_heads,
                                      const CpuAttentionTuning& tuning) {
    const AttentionGeometry g = check_block_sparse_attention_inputs(q, k, v, mask, num_heads);
    const auto in_type = q.scalar_type();
    const auto work = in_type == at::kDouble ? at::kDouble : at::kFloat;
    const at::Tensor qc = q.to(work).contiguous(), kc = k.to(work).contiguous(), vc = v.to(work).contiguous();
    const at::Tensor mc = mask.contiguous();
    at::Tensor out = at::zeros(q.sizes(), qc.options());
    if (out.numel() == 0) {
        return out.to(in_type);
    }
    if (work == at::kDouble) {
        Operands<double> op{qc.const_data_ptr<double>(), kc.const_data_ptr<double>(),
                            vc.const_data_ptr<double>(), mc.const_data_ptr<bool>(), out.data_ptr<double>()};
        attend<double>(op, g, tuning);
        return out.to(in_type);
    }
    Operands<float> op{qc.const_data_ptr<float>(), kc.const_data_ptr<float>(), vc.const_data_ptr<float>(),
                       mc.const_data_ptr<bool>(), out.data_ptr<float>()};
    op.gemm = tuning.gemm;
    if (op.gemm == CpuAttentionGemm::kTiles && !attention_tiles::supported(g.head_dim)) {
        op.gemm = CpuAttentionGemm::kBlas;
    }
    const int64_t keys = g.nk * kBlockTokens;
    at::Tensor qs, kt, kp, vp;  // the packed forms live until the call ends
    if (op.gemm == CpuAttentionGemm::kBrgemm) {
        // brgemm takes no transposes and no alpha: K^T once per call, Q scaled once per call.
        qs = at::mul(qc, at::Scalar(g.scale));
        kt = kc.view({keys, g.channels}).t().contiguous();
        op.q = qs.const_data_ptr<float>();
        op.kt = kt.const_data_ptr<float>();
    } else if (op.gemm == CpuAttentionGemm::kTiles) {
        kp = at::empty({g.heads, g.head_dim * keys}, qc.options());
        vp = at::empty({g.heads, g.head_dim * keys}, qc.options());
        float* kpd = kp.data_ptr<float>();
        float* vpd = vp.data_ptr<float>();
        at::parallel_for(0, 2 * g.heads, 1, [&](int64_t begin, int64_t end) {
            for (int64_t i = begin; i < end; ++i) {
                const int64_t h = i / 2;
                if (i % 2 == 0) {
                    attention_tiles::pack_keys(op.k, keys, g.channels, h, g.head_dim,
                                               kpd + h * g.head_dim * keys);
                } else {
                    attention_tiles::pack_values(op.v, keys, g.channels, h, g.head_dim,
                                                 vpd + h * g.head_dim * keys);
                }
            }
        });
        op.kp = kpd;
        op.vp = vpd;
    }
    attend<float>(op, g, tuning);
    return out.to(in_type);
}

TORCH_LIBRARY_IMPL(flashvsr, CPU, m) {
    m.impl("block_sparse_attention", &block_sparse_attention_cpu_default);
}

}  // namespace flashvsr::kernels
