#include "kernels/block_sparse_attention/block_sparse_attention.h"

#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include <cmath>

namespace flashvsr::kernels {

AttentionGeometry check_block_sparse_attention_inputs(const at::Tensor& q, const at::Tensor& k,
                                                      const at::Tensor& v, const at::Tensor& mask,
                                                      int64_t num_heads) {
    TORCH_CHECK(q.dim() == 3 && q.size(1) == kBlockTokens, "block_sparse_attention: q must be [nq, ",
                kBlockTokens, ", C], got ", q.sizes());
    TORCH_CHECK(k.dim() == 3 && k.size(1) == kBlockTokens && k.size(2) == q.size(2),
                "block_sparse_attention: k must be [nk, ", kBlockTokens, ", ", q.size(2), "], got ",
                k.sizes());
    TORCH_CHECK(v.sizes() == k.sizes(), "block_sparse_attention: v ", v.sizes(), " != k ", k.sizes());
    TORCH_CHECK(q.scalar_type() == k.scalar_type() && q.scalar_type() == v.scalar_type(),
                "block_sparse_attention: q, k, v must share one dtype, got ", q.scalar_type(), ", ",
                k.scalar_type(), ", ", v.scalar_type());
    const auto t = q.scalar_type();
    TORCH_CHECK(t == at::kFloat || t == at::kDouble || t == at::kHalf || t == at::kBFloat16,
                "block_sparse_attention: dtype must be float32, float64, float16 or bfloat16, got ", t);
    TORCH_CHECK(k.device() == q.device() && v.device() == q.device() && mask.device() == q.device(),
                "block_sparse_attention: q, k, v and mask must be on one device, got ", q.device(), ", ",
                k.device(), ", ", v.device(), ", ", mask.device());
    TORCH_CHECK(num_heads > 0 && q.size(2) % num_heads == 0, "block_sparse_attention: ", q.size(2),
                " channels do not split into ", num_heads, " heads");
    TORCH_CHECK(mask.scalar_type() == at::kBool, "block_sparse_attention: mask must be bool, got ",
                mask.scalar_type());
    TORCH_CHECK(mask.dim() == 3 && mask.size(0) == num_heads && mask.size(1) == q.size(0) &&
                    mask.size(2) == k.size(0),
                "block_sparse_attention: mask must be [", num_heads, ", ", q.size(0), ", ", k.size(0),
                "], got ", mask.sizes());
    AttentionGeometry g;
    g.nq = q.size(0);
    g.nk = k.size(0);
    g.heads = num_heads;
    g.channels = q.size(2);
    g.head_dim = g.channels / num_heads;
    g.scale = 1.0 / std::sqrt(static_cast<double>(g.head_dim));
    return g;
}

at::Tensor block_sparse_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                  const at::Tensor& mask, int64_t num_heads) {
    static auto op = c10::Dispatcher::singleton()
                         .findSchemaOrThrow("flashvsr::block_sparse_attention", "")
                         .typed<at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                           const at::Tensor&, int64_t)>();
    return op.call(q, k, v, mask, num_heads);
}

namespace {

at::Tensor block_sparse_attention_meta(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                       const at::Tensor& mask, int64_t num_heads) {
    check_block_sparse_attention_inputs(q, k, v, mask, num_heads);
    return at::empty(q.sizes(), q.options());
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(flashvsr, m) {
    m.def("block_sparse_attention(Tensor q, Tensor k, Tensor v, Tensor mask, int num_heads) -> Tensor");
}

TORCH_LIBRARY_IMPL(flashvsr, Meta, m) { m.impl("block_sparse_attention", &block_sparse_attention_meta); }

}  // namespace flashvsr::kernels
