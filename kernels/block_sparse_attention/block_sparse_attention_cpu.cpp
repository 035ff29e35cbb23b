// CPU twin of block_sparse_attention: a flash-style loop, one (head, query window) row at a time.
//
// A mask row (head h, query window i) keeps some key windows. Its kept windows are taken in pieces of at
// most kPieceBlocks windows; consecutive kept windows inside a piece are one (r*128) x head_dim matrix read
// in place (row stride C), so no key/value block is ever copied. For each piece: S = scale * Q K^T into a
// per-thread [128, <= kPieceBlocks*128] buffer (BLAS, one call per run), an online softmax step (row maxima
// m, P = exp(S - m), row sums l; what earlier pieces left in the output rows is rescaled by
// exp(m_old - m_new)), and O += P V (BLAS, one call per run); at the end O /= l. The piece buffer stays in
// the core's cache (512 KiB at kPieceBlocks = 8). Rows are handed to the threads one at a time (an atomic
// counter), and each BLAS call runs on its calling thread. A row that keeps nothing is never touched and
// stays exactly 0. float16 and bfloat16 inputs are computed in float32 (one conversion of q, k, v per call).
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/native/CPUBlas.h>
#include <ATen/ops/amax.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/from_blob.h>
#include <ATen/ops/full.h>
#include <ATen/ops/maximum.h>
#include <ATen/ops/mul.h>
#include <ATen/ops/zeros.h>
#include <torch/library.h>

#include <algorithm>
#include <atomic>
#include <limits>
#include <vector>

#include "kernels/block_sparse_attention/block_sparse_attention.h"

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

/// Key windows scored at once by one row (the piece buffer: 128 x kPieceBlocks*128 scores).
constexpr int64_t kPieceBlocks = 8;

/// float: C[m x n] (+)= A[m x k] B[k x n], row-major with leading dimensions, through ATen's cpublas::brgemm
/// (oneDNN's batch-reduce GEMM micro-kernel: AVX-512 where the CPU has it, MKL otherwise). On this project's
/// AMD development CPU it runs the attention's 128 x 1024 x 128 products at 2.2x MKL's sgemm, which takes
/// AVX2 code on AMD CPUs.
void brgemm(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb,
            float* c, int64_t ldc, bool accumulate) {
    at::native::cpublas::brgemm(m, n, k, lda, ldb, ldc, accumulate, a, b, c, /*is_vnni=*/false);
}

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

struct Run {
    int64_t first;  // first key window
    int64_t count;  // consecutive kept windows
};

/// The pieces of one mask row: its kept windows in order, as runs, at most kPieceBlocks windows a piece.
std::vector<std::vector<Run>> pieces_of(const bool* row, int64_t nk) {
    std::vector<std::vector<Run>> pieces;
    int64_t in_piece = kPieceBlocks;  // start a new piece at the first kept window
    for (int64_t j = 0; j < nk;) {
        if (!row[j]) {
            ++j;
            continue;
        }
        if (in_piece == kPieceBlocks) {
            pieces.emplace_back();
            in_piece = 0;
        }
        int64_t e = j;
        while (e < nk && row[e] && in_piece + (e - j) < kPieceBlocks) {
            ++e;
        }
        pieces.back().push_back({j, e - j});
        in_piece += e - j;
        j = e;
    }
    return pieces;
}

/// One row (head h, query window i): out[i, :, h] = softmax(scale * Q K_S^T) V_S over its kept windows.
template <typename T>
void attend_row(const T* q, const T* k, const T* kt, const T* v, const bool* mask_row, T* out, int64_t h,
                int64_t i, const AttentionGeometry& g, T* scores) {
    constexpr int64_t t = kBlockTokens;
    const int64_t c = g.channels, hd = g.head_dim;
    const auto opts = at::TensorOptions().dtype(c10::CppTypeToScalarType<T>::value);
    const std::vector<std::vector<Run>> pieces = pieces_of(mask_row, g.nk);
    if (pieces.empty()) {
        return;  // keeps nothing: stays 0
    }
    T* o = out + i * t * c + h * hd;                                          // [128, hd], row stride c
    const at::Tensor o_rows = at::from_blob(o, {t, hd}, {c, 1}, opts);        // a view of those rows
    at::Tensor m = at::full({t}, -std::numeric_limits<T>::infinity(), opts);  // running row maxima
    at::Tensor l = at::zeros({t}, opts);                                      // running row sums
    at::Tensor m_new = at::empty({t}, opts);
    const T scale = static_cast<T>(g.scale);
    for (const std::vector<Run>& piece : pieces) {
        int64_t w = 0;
        for (const Run& run : piece) {
            w += run.count * t;
        }
        // S[:, col:col+len] = scale * Q K_run^T: column-major C (len x 128, ldc w) is row-major [128, w].
        int64_t col = 0;
        for (const Run& run : piece) {
            const int64_t len = run.count * t;
            if constexpr (std::is_same_v<T, float>) {  // q comes scaled; kt is K transposed, [C, nk·128]
                brgemm(t, len, hd, q + i * t * c + h * hd, c, kt + h * hd * g.nk * t + run.first * t,
                       g.nk * t, scores + col, w, false);
            } else {
                gemm<T>('T', 'N', len, t, hd, scale, k + run.first * t * c + h * hd, c,
                        q + i * t * c + h * hd, c, T(0), scores + col, w);
            }
            col += len;
        }
        const at::Tensor s = at::from_blob(scores, {t, w}, opts);
        at::amax_out(m_new, s, {1});
        at::maximum_out(m_new, m_new, m);
        s.sub_(m_new.unsqueeze(1)).exp_();              // P = exp(S - m_new)
        const at::Tensor alpha = m.sub_(m_new).exp_();  // exp(m_old - m_new): 0 for the first piece
        l.mul_(alpha).add_(s.sum(1));
        o_rows.mul_(alpha.unsqueeze(1));
        m.copy_(m_new);
        col = 0;
        for (const Run& run : piece) {  // O += P[:, col:col+len] V_run
            const int64_t len = run.count * t;
            if constexpr (std::is_same_v<T, float>) {
                brgemm(t, hd, len, scores + col, w, v + run.first * t * c + h * hd, c, o, c, true);
            } else {
                gemm<T>('N', 'N', hd, t, len, T(1), v + run.first * t * c + h * hd, c, scores + col, w, T(1),
                        o, c);
            }
            col += len;
        }
    }
    o_rows.div_(l.unsqueeze(1));  // l >= 1: each row's maximum contributes exp(0)
}

template <typename T>
void attend(const T* q, const T* k, const T* kt, const T* v, const bool* mask, T* out,
            const AttentionGeometry& g) {
    const int64_t rows = g.heads * g.nq;
    std::atomic<int64_t> next{0};
    at::parallel_for(0, at::get_num_threads(), 1, [&](int64_t, int64_t) {
        std::vector<T> scores(static_cast<size_t>(kBlockTokens * kPieceBlocks * kBlockTokens));
        for (int64_t r = next++; r < rows; r = next++) {
            const int64_t h = r / g.nq, i = r % g.nq;
            attend_row<T>(q, k, kt, v, mask + r * g.nk, out, h, i, g, scores.data());
        }
        if constexpr (std::is_same_v<T, float>) {
            at::native::cpublas::brgemm_release(/*is_vnni=*/false);
        }
    });
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
            attend<double>(qc.const_data_ptr<double>(), kc.const_data_ptr<double>(), nullptr,
                           vc.const_data_ptr<double>(), mc.const_data_ptr<bool>(), out.data_ptr<double>(), g);
        } else {
            // brgemm takes no transposes and no alpha: K^T once per call, Q scaled once per call.
            const at::Tensor qs = at::mul(qc, at::Scalar(g.scale));
            const at::Tensor kt = kc.view({g.nk * kBlockTokens, g.channels}).t().contiguous();
            attend<float>(qs.const_data_ptr<float>(), kc.const_data_ptr<float>(), kt.const_data_ptr<float>(),
                          vc.const_data_ptr<float>(), mc.const_data_ptr<bool>(), out.data_ptr<float>(), g);
        }
    }
    return out.to(in_type);
}

}  // namespace

TORCH_LIBRARY_IMPL(flashvsr, CPU, m) { m.impl("block_sparse_attention", &block_sparse_attention_cpu); }

}  // namespace flashvsr::kernels
