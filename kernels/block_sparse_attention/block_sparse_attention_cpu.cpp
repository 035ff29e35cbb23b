// CPU twin of block_sparse_attention.
//
// A mask row (head h, query window i) keeps some key windows; consecutive kept windows form a run, and a
// run is one (r*128) x head_dim matrix read in place (row stride C), so no key/value block is ever copied.
// A row's runs are cut into groups of at most kGroupBlocks windows. Rows are processed in batches (rows
// sorted by width, score memory bounded by kBatchScoreBytes): one batched BLAS call (the torch wheel's
// MKL ?gemm_batch, threaded inside) computes every scores block S = scale * Q K_run^T of the batch into a
// [B, 128, W] buffer (columns past a row's width hold -inf), ATen's vectorized ops turn it into
// P = exp(S - m) with row maxima and sums, and batched calls add P V_run into the output rows (one run
// of each row per call, so that no two products of a call write the same rows).
// A row with more than one group is merged with an online softmax (earlier output rescaled by
// exp(m_old - m_new)); with one group (up to 64 kept windows) this is exactly softmax(QK^T)V. float16 and
// bfloat16 inputs are computed in float32 (one conversion of q, k, v per call).
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/from_blob.h>
#include <ATen/ops/full.h>
#include <ATen/ops/maximum.h>
#include <ATen/ops/ones.h>
#include <ATen/ops/tensor.h>
#include <ATen/ops/zeros.h>
#include <torch/library.h>

#include <algorithm>
#include <limits>
#include <numeric>
#include <vector>

#include "kernels/block_sparse_attention/block_sparse_attention.h"

// Fortran BLAS of the torch wheel (MKL on x86-64), group interface: group i has group_size[i] products
// C = alpha * op(A) * op(B) + beta * C, column-major, everything by pointer.
extern "C" {
void sgemm_batch_(const char* transa, const char* transb, const int* m, const int* n, const int* k,
                  const float* alpha, const float** a, const int* lda, const float** b, const int* ldb,
                  const float* beta, float** c, const int* ldc, const int* group_count,
                  const int* group_size);
void dgemm_batch_(const char* transa, const char* transb, const int* m, const int* n, const int* k,
                  const double* alpha, const double** a, const int* lda, const double** b, const int* ldb,
                  const double* beta, double** c, const int* ldc, const int* group_count,
                  const int* group_size);
}

namespace flashvsr::kernels {
namespace {

/// Key windows of one row scored at once (score buffer of a row: 128 x 64*128).
constexpr int64_t kGroupBlocks = 64;
/// Score buffer of one batch of rows.
constexpr int64_t kBatchScoreBytes = int64_t{64} << 20;

/// A list of independent products for one ?gemm_batch call (one group each).
template <typename T>
struct GemmList {
    std::vector<char> ta, tb;
    std::vector<int> m, n, k, lda, ldb, ldc, size;
    std::vector<T> alpha, beta;
    std::vector<const T*> a, b;
    std::vector<T*> c;

    void add(char ta_, char tb_, int64_t m_, int64_t n_, int64_t k_, T alpha_, const T* a_, int64_t lda_,
             const T* b_, int64_t ldb_, T beta_, T* c_, int64_t ldc_) {
        ta.push_back(ta_), tb.push_back(tb_);
        m.push_back(static_cast<int>(m_)), n.push_back(static_cast<int>(n_)),
            k.push_back(static_cast<int>(k_));
        alpha.push_back(alpha_), beta.push_back(beta_);
        a.push_back(a_), b.push_back(b_), c.push_back(c_);
        lda.push_back(static_cast<int>(lda_)), ldb.push_back(static_cast<int>(ldb_)),
            ldc.push_back(static_cast<int>(ldc_));
        size.push_back(1);
    }
    void run_and_clear() {
        const int groups = static_cast<int>(m.size());
        if (groups > 0) {
            if constexpr (std::is_same_v<T, float>) {
                sgemm_batch_(ta.data(), tb.data(), m.data(), n.data(), k.data(), alpha.data(), a.data(),
                             lda.data(), b.data(), ldb.data(), beta.data(), c.data(), ldc.data(), &groups,
                             size.data());
            } else {
                dgemm_batch_(ta.data(), tb.data(), m.data(), n.data(), k.data(), alpha.data(), a.data(),
                             lda.data(), b.data(), ldb.data(), beta.data(), c.data(), ldc.data(), &groups,
                             size.data());
            }
        }
        *this = GemmList{};
    }
};

struct Run {
    int64_t first;  // first key window
    int64_t count;  // consecutive kept windows
};

/// The groups of one row: runs cut so that no group holds more than kGroupBlocks windows.
std::vector<std::vector<Run>> groups_of(const bool* row, int64_t nk) {
    std::vector<std::vector<Run>> groups;
    int64_t in_group = kGroupBlocks;  // start a new group at the first kept window
    for (int64_t j = 0; j < nk;) {
        if (!row[j]) {
            ++j;
            continue;
        }
        if (in_group == kGroupBlocks) {
            groups.emplace_back();
            in_group = 0;
        }
        int64_t e = j;
        while (e < nk && row[e] && in_group + (e - j) < kGroupBlocks) {
            ++e;
        }
        groups.back().push_back({j, e - j});
        in_group += e - j;
        j = e;
    }
    return groups;
}

int64_t width_of(const std::vector<Run>& group) {
    int64_t w = 0;
    for (const Run& r : group) {
        w += r.count * kBlockTokens;
    }
    return w;
}

template <typename T>
void attend(const T* q, const T* k, const T* v, const bool* mask, T* out, const AttentionGeometry& g) {
    constexpr int64_t t = kBlockTokens;
    const int64_t c = g.channels, hd = g.head_dim, rows = g.heads * g.nq;
    const auto opts = at::TensorOptions().dtype(c10::CppTypeToScalarType<T>::value);
    std::vector<std::vector<std::vector<Run>>> row_groups(static_cast<size_t>(rows));
    size_t rounds = 0;
    for (int64_t r = 0; r < rows; ++r) {
        row_groups[r] = groups_of(mask + r * g.nk, g.nk);
        rounds = std::max(rounds, row_groups[r].size());
    }
    // Output rows as [heads, nq, 128, hd] (a view of out [nq, 128, C]); running max and sum per query.
    const at::Tensor out_rows =
        at::from_blob(out, {g.nq, t, g.heads, hd}, opts).permute({2, 0, 1, 3});  // [heads,nq,128,hd]
    at::Tensor m_run = at::full({rows, t}, -std::numeric_limits<T>::infinity(), opts);
    at::Tensor l_run = at::zeros({rows, t}, opts);
    const T scale = static_cast<T>(g.scale);
    GemmList<T> gemms;
    std::vector<int64_t> batch;
    for (size_t round = 0; round < rounds; ++round) {
        std::vector<int64_t> order;  // rows with a group in this round, widest first
        for (int64_t r = 0; r < rows; ++r) {
            if (row_groups[r].size() > round) {
                order.push_back(r);
            }
        }
        std::stable_sort(order.begin(), order.end(), [&](int64_t x, int64_t y) {
            return width_of(row_groups[x][round]) > width_of(row_groups[y][round]);
        });
        for (size_t b0 = 0; b0 < order.size();) {
            const int64_t w = width_of(row_groups[order[b0]][round]);  // the batch's padded width
            const auto per_row = static_cast<int64_t>(sizeof(T)) * t * w;
            const size_t n = std::min(order.size() - b0,
                                      static_cast<size_t>(std::max<int64_t>(1, kBatchScoreBytes / per_row)));
            batch.assign(order.begin() + static_cast<std::ptrdiff_t>(b0),
                         order.begin() + static_cast<std::ptrdiff_t>(b0 + n));
            const auto bn = static_cast<int64_t>(n);
            at::Tensor s = at::empty({bn, t, w}, opts);  // scores of the batch
            T* sp = s.data_ptr<T>();
            for (int64_t x = 0; x < bn; ++x) {  // S[x][:, col:col+len] = scale * Q K_run^T
                const int64_t r = batch[x], h = r / g.nq, i = r % g.nq;
                int64_t col = 0;
                for (const Run& run : row_groups[r][round]) {
                    const int64_t len = run.count * t;
                    gemms.add('T', 'N', len, t, hd, scale, k + run.first * t * c + h * hd, c,
                              q + i * t * c + h * hd, c, T(0), sp + x * t * w + col, w);
                    col += len;
                }
                if (col < w) {
                    s[x].narrow(1, col, w - col).fill_(-std::numeric_limits<T>::infinity());
                }
            }
            gemms.run_and_clear();
            const at::Tensor idx = at::tensor(batch, at::TensorOptions().dtype(at::kLong));
            const at::Tensor m_old = m_run.index_select(0, idx);      // [B,128]
            const at::Tensor m_new = at::maximum(m_old, s.amax(-1));  // [B,128]
            s.sub_(m_new.unsqueeze(-1)).exp_();                       // P = exp(S - m); padding -> 0
            const at::Tensor alpha = m_old.sub(m_new).exp_();         // 0 in the first round
            l_run.index_copy_(0, idx, l_run.index_select(0, idx).mul_(alpha).add_(s.sum(-1)));
            m_run.index_copy_(0, idx, m_new);
            if (round > 0) {  // rescale what the earlier groups left in these rows
                for (int64_t x = 0; x < bn; ++x) {
                    const int64_t r = batch[x];
                    out_rows[r / g.nq][r % g.nq].mul_(alpha[x].unsqueeze(-1));
                }
            }
            // O += P[x][:, col:col+len] V_run. Products into the same output rows must not run in one call
            // (they would race), so pass p takes the p-th run of every row.
            for (size_t pass = 0;; ++pass) {
                for (int64_t x = 0; x < bn; ++x) {
                    const int64_t r = batch[x], h = r / g.nq, i = r % g.nq;
                    const auto& runs = row_groups[r][round];
                    if (pass >= runs.size()) {
                        continue;
                    }
                    int64_t col = 0;
                    for (size_t y = 0; y < pass; ++y) {
                        col += runs[y].count * t;
                    }
                    gemms.add('N', 'N', hd, t, runs[pass].count * t, T(1),
                              v + runs[pass].first * t * c + h * hd, c, sp + x * t * w + col, w, T(1),
                              out + i * t * c + h * hd, c);
                }
                if (gemms.m.empty()) {
                    break;
                }
                gemms.run_and_clear();
            }
            b0 += n;
        }
    }
    // Rows that kept nothing have l = 0 and output 0 (never written); divide the others by their sums.
    out_rows.div_(l_run.masked_fill(l_run.eq(0), 1).view({g.heads, g.nq, t, 1}));
}

at::Tensor block_sparse_attention_cpu(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                      const at::Tensor& mask, int64_t num_heads) {
    const AttentionGeometry g = check_block_sparse_attention_inputs(q, k, v, mask, num_heads);
    const auto in_type = q.scalar_type();
    const auto work = in_type == at::kDouble ? at::kDouble : at::kFloat;
    const at::Tensor qc = q.to(work).contiguous(), kc = k.to(work).contiguous(), vc = v.to(work).contiguous();
    const at::Tensor mc = mask.contiguous();
    at::Tensor out = at::zeros(q.sizes(), qc.options());
    if (out.numel() > 0) {
        if (work == at::kDouble) {
            attend<double>(qc.const_data_ptr<double>(), kc.const_data_ptr<double>(),
                           vc.const_data_ptr<double>(), mc.const_data_ptr<bool>(), out.data_ptr<double>(), g);
        } else {
            attend<float>(qc.const_data_ptr<float>(), kc.const_data_ptr<float>(), vc.const_data_ptr<float>(),
                          mc.const_data_ptr<bool>(), out.data_ptr<float>(), g);
        }
    }
    return out.to(in_type);
}

}  // namespace

TORCH_LIBRARY_IMPL(flashvsr, CPU, m) { m.impl("block_sparse_attention", &block_sparse_attention_cpu); }

}  // namespace flashvsr::kernels
