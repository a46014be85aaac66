// Distances between embeddings, all differentiable, each usable as a pairwise matrix over a
// batch ([n,d] x [m,d] -> [n,m]) and on explicit row pairs ([n,d] x [n,d] -> [n]). Gradients stay
// finite when two embeddings coincide (the derivative of a distance at 0 is taken as 0).
//
// Losses and miners treat every measure as a distance: smaller = closer. `dot` is therefore the
// negated dot product and `cosine` is 1 - cos(x, y).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace trine {

class Distance {
 public:
  virtual ~Distance() = default;
  // [n,d] x [m,d] -> [n,m]. When x and y are the same tensor the diagonal is exactly 0.
  virtual Tensor pairwise(const Tensor& x, const Tensor& y) const = 0;
  // [n,d] x [n,d] -> [n]: distance between row i of x and row i of y.
  virtual Tensor paired(const Tensor& x, const Tensor& y) const = 0;
  // The spec string parse_distance() accepts ("lp:2", "cosine", ...).
  virtual std::string name() const = 0;
  // Learnable parameters (Mahalanobis); train them with the model's.
  virtual std::vector<Tensor> parameters() const { return {}; }
};

// Minkowski distance (sum |x - y|^p)^(1/p), p >= 1: Manhattan p = 1, Euclidean p = 2.
// squared: the distance squared. Euclidean pairwise uses one GEMM (|x|^2 + |y|^2 - 2 x.y, as
// torch.cdist); centred (p = 2 only, "euclidean:centred"): both sets moved by x's mean first, so
// that close points far from the origin keep accurate distances (pairwise_distance in ops.h).
// Other p are computed over row chunks without storing the [n,m,d] differences for backward.
class LpDistance : public Distance {
 public:
  explicit LpDistance(float p = 2.f, bool squared = false, bool centred = false);
  Tensor pairwise(const Tensor& x, const Tensor& y) const override;
  Tensor paired(const Tensor& x, const Tensor& y) const override;
  std::string name() const override;
  float p() const { return p_; }
  bool squared() const { return squared_; }
  bool centred() const { return centred_; }

 private:
  float p_;
  bool squared_, centred_;
};

// 1 - cos(x, y), in [0, 2]. Pairwise: rows L2-normalized, then one GEMM.
class CosineDistance : public Distance {
 public:
  Tensor pairwise(const Tensor& x, const Tensor& y) const override;
  Tensor paired(const Tensor& x, const Tensor& y) const override;
  std::string name() const override { return "cosine"; }
};

// -x.y (the negated dot product, so that smaller is closer). Pairwise: one GEMM.
class DotDistance : public Distance {
 public:
  Tensor pairwise(const Tensor& x, const Tensor& y) const override;
  Tensor paired(const Tensor& x, const Tensor& y) const override;
  std::string name() const override { return "dot"; }
};

// Soft Jaccard distance for non-negative embeddings: 1 - sum min(x, y) / sum max(x, y)
// (0 when both are all zero). Negative input is an error. At x_k == y_k the derivative of min
// and max is split half and half.
class JaccardDistance : public Distance {
 public:
  Tensor pairwise(const Tensor& x, const Tensor& y) const override;
  Tensor paired(const Tensor& x, const Tensor& y) const override;
  std::string name() const override { return "jaccard"; }
};

// Mahalanobis distance with a learnable factor L [k, d]: ||L (x - y)||, positive semi-definite by
// construction (M = L^T L). L starts as the identity (k = d) or a scaled random projection.
class MahalanobisDistance : public Distance {
 public:
  explicit MahalanobisDistance(int64_t dim, int64_t rank = 0);
  Tensor pairwise(const Tensor& x, const Tensor& y) const override;
  Tensor paired(const Tensor& x, const Tensor& y) const override;
  std::string name() const override;
  std::vector<Tensor> parameters() const override { return {L}; }
  Tensor L;
};

// Parses lp:P, euclidean (lp:2), lp2sq (squared Euclidean), euclidean:centred, lp2sq:centred,
// manhattan (lp:1), cosine, dot, jaccard, mahalanobis[:RANK] (needs `dim`, the embedding size).
// Throws UsageError otherwise.
std::shared_ptr<Distance> parse_distance(const std::string& spec, int64_t dim = 0);
// The specs parse_distance accepts, as one line for --distance's help.
inline constexpr const char* kDistanceSpecs =
    "lp:P (minkowski:P) | euclidean[:centred] | lp2sq[:centred] | manhattan | cosine | dot | "
    "jaccard | mahalanobis[:RANK]";

// Differentiable building blocks, broadcasting x and y over all but the last dim and reducing
// it: Minkowski (p, optionally squared) and soft Jaccard. Used by the classes above.
Tensor minkowski_reduce(const Tensor& x, const Tensor& y, float p, bool squared);
Tensor jaccard_reduce(const Tensor& x, const Tensor& y);

}  // namespace trine
