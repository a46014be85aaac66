// Differentiable tensor operations. Each op's backward sits beside its forward in the ops_*.cpp
// file named in its section. Unless noted, ops broadcast like NumPy, return new contiguous
// tensors, and record a graph node when an input requires a gradient.
#pragma once

#include <vector>

#include "engine/tensor.h"

namespace trine {

// ---------------------------------------------------------------- elementwise (ops_elementwise)
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor maximum(const Tensor& a, const Tensor& b);  // gradient to the larger (a on ties)
Tensor minimum(const Tensor& a, const Tensor& b);  // gradient to the smaller (a on ties)
Tensor add_scalar(const Tensor& x, float s);
Tensor mul_scalar(const Tensor& x, float s);
Tensor neg(const Tensor& x);
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
Tensor sqrt(const Tensor& x);
Tensor abs(const Tensor& x);  // gradient 0 at 0
Tensor square(const Tensor& x);
Tensor reciprocal(const Tensor& x);
Tensor pow(const Tensor& x, float p);
Tensor clamp(const Tensor& x, float lo, float hi);  // gradient passes where lo <= x <= hi
Tensor clamp_min(const Tensor& x, float lo);
Tensor relu(const Tensor& x);
Tensor leaky_relu(const Tensor& x, float negative_slope = 0.01f);
Tensor sigmoid(const Tensor& x);
Tensor tanh(const Tensor& x);
Tensor softplus(const Tensor& x);  // log(1 + e^x), stable for large |x|

// Comparisons: 1 where true, 0 elsewhere. Not differentiable.
Tensor eq(const Tensor& a, const Tensor& b);
Tensor ne(const Tensor& a, const Tensor& b);
Tensor lt(const Tensor& a, const Tensor& b);
Tensor le(const Tensor& a, const Tensor& b);
Tensor gt(const Tensor& a, const Tensor& b);
Tensor ge(const Tensor& a, const Tensor& b);

// cond != 0 ? a : b (cond is not differentiated).
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);
// x where mask == 0, value where mask != 0.
Tensor masked_fill(const Tensor& x, const Tensor& mask, float value);

// ------------------------------------------------------------------------- reductions (ops_reduce)
Tensor sum(const Tensor& x);  // all elements -> scalar
Tensor sum(const Tensor& x, std::vector<int64_t> dims, bool keepdim = false);
Tensor mean(const Tensor& x);
Tensor mean(const Tensor& x, std::vector<int64_t> dims, bool keepdim = false);
// Max/min over one dim; the gradient goes to the arg-max (lowest index on ties).
Tensor max(const Tensor& x, int64_t dim, bool keepdim = false);
Tensor min(const Tensor& x, int64_t dim, bool keepdim = false);
Tensor max(const Tensor& x);  // all elements
Tensor min(const Tensor& x);
// The largest |x| of each tensor: a float32 tensor [xs.size()] on their device (all must share
// one), NaN where a tensor holds a NaN, +inf where it holds an inf, 0 for an empty one. One
// launch for a whole model on a GPU (the trainer's finite check at every step). No gradient.
Tensor max_abs_each(const std::vector<Tensor>& xs);
// Positions (I32) of the max/min over one dim, lowest index on ties.
Tensor argmax(const Tensor& x, int64_t dim, bool keepdim = false);
Tensor argmin(const Tensor& x, int64_t dim, bool keepdim = false);
// Sums a broadcast result back to `shape` (the reverse of broadcasting; used by backward).
Tensor sum_to(const Tensor& x, const Shape& shape);

// ----------------------------------------------------------------------------- shape (ops_shape)
Tensor reshape(const Tensor& x, Shape shape);  // a view; one dim may be -1
Tensor flatten(const Tensor& x, int64_t start_dim = 0, int64_t end_dim = -1);
Tensor unsqueeze(const Tensor& x, int64_t dim);
Tensor squeeze(const Tensor& x, int64_t dim);
Tensor transpose(const Tensor& x, int64_t dim0, int64_t dim1);
Tensor permute(const Tensor& x, const std::vector<int64_t>& dims);
Tensor expand(const Tensor& x, const Shape& shape);  // broadcast to `shape` (copies)
Tensor concat(const std::vector<Tensor>& xs, int64_t dim);
// Elements start..end-1 (negative counts from the end) with a step along `dim`.
Tensor slice(const Tensor& x, int64_t dim, int64_t start, int64_t end, int64_t step = 1);
// Rows `index` (I32, 1-D) along `dim`; repeated indices accumulate in backward. An index out of
// range is an error on the CPU; on a GPU (not checked there: that would cost a round trip to the
// host) it reads as 0 and its gradient is dropped. Same for gather.
Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index);
// out[..., j, ...] = x[..., index[..., j, ...], ...] along `dim` (torch.gather).
Tensor gather(const Tensor& x, int64_t dim, const Tensor& index);

// ------------------------------------------------------------------------- linalg (ops_linalg)
// a [m,k] @ b [k,n]; or batched a [B,m,k] @ b [B,k,n] (b may also be [k,n]).
Tensor matmul(const Tensor& a, const Tensor& b);
// x [N,in] @ w[out,in]^T + b[out] (b may be undefined).
Tensor linear(const Tensor& x, const Tensor& w, const Tensor& b);
// x / max(||x||_2, eps) along `dim` (F.normalize).
Tensor l2_normalize(const Tensor& x, int64_t dim = 1, float eps = 1e-12f);
// Euclidean distances between the rows of a [n,d] and b [m,d] -> [n,m], from one GEMM:
// ||a||^2 + ||b||^2 - 2 a b^T (as torch.cdist computes them), clamped at 0, and exactly 0 on the
// diagonal when a is b. Not squared: sqrt, with gradient 0 (not inf/NaN) where a distance is 0.
// centred: both sets are first moved by the mean of a's rows, which cancels far less when the
// points lie close together far from the origin (L2-normalized embeddings collapsing toward one
// point: distances of 1e-3 keep about 5 digits instead of 1). The losses use the plain form
// unless told otherwise (`--distance euclidean:centred`): with the centred one, W1's training
// recovered from its collapse later (docs/benchmarks.md).
Tensor pairwise_distance(const Tensor& a, const Tensor& b, bool squared = false,
                         bool centred = false);

// ----------------------------------------------------------------------------- nn (ops_nn)
struct Conv2dOptions {
  int64_t stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0;
};
// x [N,C,H,W] * w [M,C,kh,kw] + b [M] (b may be undefined) -> [N,M,OH,OW]; im2col + SGEMM.
Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& b, const Conv2dOptions& o = {});
// Pooling over [N,C,H,W] windows; padding counts as -inf (max) or 0 (avg, divides by k*k).
Tensor max_pool2d(const Tensor& x, int64_t kernel, int64_t stride = 0, int64_t pad = 0);
// max_pool2d(relu(x), ...) in the pooling's own pass, forward and backward, with no tensor of
// ReLU outputs. Also relu(max_pool2d(x, ...)) for inputs without NaN (both take maxima, ties
// break alike, a window with no positive value gives 0 and no gradient); a NaN, which the ReLU
// turns into 0 first, does not win its window here.
Tensor max_pool2d_relu(const Tensor& x, int64_t kernel, int64_t stride = 0, int64_t pad = 0);
Tensor avg_pool2d(const Tensor& x, int64_t kernel, int64_t stride = 0, int64_t pad = 0);
Tensor global_avg_pool2d(const Tensor& x);  // [N,C,H,W] -> [N,C]
// Batch normalization over every dim but 1 (channels): x [N,C] or [N,C,H,W].
// Training: batch statistics (biased variance for the output), and running_mean/running_var
// (if defined) updated in place with `momentum` and the unbiased variance, as in PyTorch.
// Inference: the running statistics.
Tensor batch_norm(const Tensor& x, const Tensor& weight, const Tensor& bias,
                  const Tensor& running_mean, const Tensor& running_var, bool training,
                  float momentum = 0.1f, float eps = 1e-5f);
// relu(batch_norm(...)) with the ReLU fused into the normalization's passes, forward and
// backward: the same values and gradients without a ReLU pass over memory of its own.
Tensor batch_norm_relu(const Tensor& x, const Tensor& weight, const Tensor& bias,
                       const Tensor& running_mean, const Tensor& running_var, bool training,
                       float momentum = 0.1f, float eps = 1e-5f);
// Zeroes each element with probability p and scales the rest by 1/(1-p) when training.
Tensor dropout(const Tensor& x, float p, bool training);

}  // namespace trine
