// Distances: pairwise and paired forms, with custom backward passes where the composition of
// ops would produce inf/NaN at coincident points.
#include "losses/distance.h"

#include <cmath>
#include <sstream>

#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/error.h"
#include "engine/ops.h"
#include "layers/init.h"

namespace trine {

namespace {

void check_pair(const Tensor& x, const Tensor& y, const char* what, bool same_rows) {
  TRINE_CHECK(x.dim() == 2 && y.dim() == 2 && x.size(1) == y.size(1), what,
              ": expected embeddings [n,d] and [m,d], got ", x.shape_str(), " and ", y.shape_str());
  TRINE_CHECK(!same_rows || x.size(0) == y.size(0), what, ": paired distances need the same ",
              "number of rows, got ", x.shape_str(), " and ", y.shape_str());
}

Tensor zero_like_scalar(const Tensor& t) {
  return Tensor::scalar(0.f, t.device());
}

// sign(x) as 1/0/-1 (0 at 0, unlike x/|x|).
Tensor sign(const Tensor& x) {
  Tensor z = zero_like_scalar(x);
  return gt(x, z) - lt(x, z);
}

// Rows of x per chunk so that one chunk's [c, m, d] temporaries hold ~8M floats.
int64_t row_chunk(int64_t m, int64_t d) {
  return std::max<int64_t>(1, (int64_t{8} << 20) / std::max<int64_t>(1, m * d));
}

// Applies `reduce` (broadcasting, last dim reduced) to x [n,d] against y [m,d] in row chunks.
template <typename F>
Tensor pairwise_chunked(const Tensor& x, const Tensor& y, F reduce) {
  const int64_t n = x.size(0), m = y.size(0), d = x.size(1);
  const int64_t c = row_chunk(m, d);
  Tensor yb = unsqueeze(y, 0);  // [1, m, d]
  if (c >= n) return reduce(unsqueeze(x, 1), yb);
  std::vector<Tensor> parts;
  for (int64_t i = 0; i < n; i += c)
    parts.push_back(reduce(unsqueeze(x.slice(0, i, std::min(n, i + c)), 1), yb));
  return concat(parts, 0);
}

}  // namespace

// ------------------------------------------------------------------ broadcasting building blocks

Tensor minkowski_reduce(const Tensor& x, const Tensor& y, float p, bool squared) {
  TRINE_CHECK(p >= 1.f && std::isfinite(p), "Minkowski distance: p must be >= 1, got ", p);
  Tensor out, s;
  {
    NoGradGuard ng;
    Tensor diff = abs(x.detach() - y.detach());
    s = sum(p == 1.f ? diff : (p == 2.f ? square(diff) : pow(diff, p)), {-1});
    out = squared ? (p == 2.f ? s : pow(s, 2.f / p)) : (p == 1.f ? s : pow(s, 1.f / p));
  }
  Tensor xd = x.detach(), yd = y.detach(), od = out.detach();
  const Shape xs = x.shape(), ys = y.shape();
  return record(out, "minkowski", {x, y}, [=](const Tensor& g) -> Grads {
    // D = s^(1/p): dD/dx_k = D^(1-p) |x_k - y_k|^(p-1) sign(x_k - y_k); squared: 2 D^(2-p) ...
    // Where D = 0 the weight is taken as 0 (for p = 1 it is 1, and sign(0) = 0 anyway).
    Tensor D = squared ? (p == 2.f ? sqrt(od) : pow(od, 0.5f)) : od;
    Tensor z = Tensor::scalar(0.f, g.device());
    Tensor w;
    if (p == 1.f) {
      w = squared ? g * D * 2.f : g;
    } else {
      Tensor safe = where(gt(D, z), D, Tensor::scalar(1.f, g.device()));
      Tensor wd = squared ? pow(safe, 2.f - p) * 2.f : pow(safe, 1.f - p);
      w = where(gt(D, z), g * wd, z);
    }
    Tensor diff = xd - yd;
    Tensor t = p == 1.f ? sign(diff) : (p == 2.f ? diff : sign(diff) * pow(abs(diff), p - 1.f));
    Tensor full = unsqueeze(w, -1) * t;
    return {sum_to(full, xs), sum_to(neg(full), ys)};
  });
}

Tensor jaccard_reduce(const Tensor& x, const Tensor& y) {
  Tensor out, num, den;
  {
    NoGradGuard ng;
    Tensor xd = x.detach(), yd = y.detach();
    TRINE_CHECK(min(xd).item() >= 0.f && min(yd).item() >= 0.f,
                "Jaccard distance needs non-negative embeddings (e.g. after a ReLU); got a "
                "negative value");
    num = sum(minimum(xd, yd), {-1});
    den = sum(maximum(xd, yd), {-1});
    Tensor z = zero_like_scalar(den);
    out =
        where(gt(den, z), 1.f - num / where(gt(den, z), den, Tensor::scalar(1.f, den.device())), z);
  }
  Tensor xd = x.detach(), yd = y.detach();
  const Shape xs = x.shape(), ys = y.shape();
  return record(out, "jaccard", {x, y}, [=](const Tensor& g) -> Grads {
    // D = 1 - N/M: dD = -(dN M - N dM) / M^2, with dN/dx_k = [x<y] (+1/2 at ties), dM/dx_k = [x>y].
    Tensor z = Tensor::scalar(0.f, g.device());
    Tensor pos = gt(den, z);
    Tensor safe = where(pos, den, Tensor::scalar(1.f, g.device()));
    Tensor u = unsqueeze(where(pos, g / safe, z), -1);
    Tensor v = unsqueeze(where(pos, g * num / square(safe), z), -1);
    Tensor a = lt(xd, yd) + eq(xd, yd) * 0.5f;  // d min / dx
    Tensor b = 1.f - a;                         // d max / dx
    return {sum_to(v * b - u * a, xs), sum_to(v * a - u * b, ys)};
  });
}

// ------------------------------------------------------------------ Lp

LpDistance::LpDistance(float p, bool squared, bool centred)
    : p_(p), squared_(squared), centred_(centred) {
  TRINE_CHECK_AS(UsageError, p >= 1.f && std::isfinite(p),
                 "Lp distance: p must be a finite number >= 1, got ", p);
  TRINE_CHECK_AS(UsageError, !centred || p == 2.f,
                 "Lp distance: only the Euclidean one (p = 2) can be centred, got p = ", p);
}

Tensor LpDistance::pairwise(const Tensor& x, const Tensor& y) const {
  check_pair(x, y, "Lp distance", false);
  if (p_ == 2.f) return pairwise_distance(x, y, squared_, centred_);
  // |x_i - x_i| is exactly 0, so the diagonal of a self-distance matrix is exactly 0 here too.
  return pairwise_chunked(
      x, y, [&](const Tensor& a, const Tensor& b) { return minkowski_reduce(a, b, p_, squared_); });
}

Tensor LpDistance::paired(const Tensor& x, const Tensor& y) const {
  check_pair(x, y, "Lp distance", true);
  return minkowski_reduce(x, y, p_, squared_);
}

std::string LpDistance::name() const {
  if (centred_) return squared_ ? "lp2sq:centred" : "euclidean:centred";
  if (p_ == 2.f && squared_) return "lp2sq";
  std::ostringstream os;
  os << "lp:" << p_ << (squared_ ? " squared" : "");
  return os.str();
}

// ------------------------------------------------------------------ cosine, dot, Jaccard

Tensor CosineDistance::pairwise(const Tensor& x, const Tensor& y) const {
  check_pair(x, y, "cosine distance", false);
  Tensor xn = l2_normalize(x, 1);
  Tensor yn = x.same(y) ? xn : l2_normalize(y, 1);
  return 1.f - matmul(xn, transpose(yn, 0, 1));
}

Tensor CosineDistance::paired(const Tensor& x, const Tensor& y) const {
  check_pair(x, y, "cosine distance", true);
  return 1.f - sum(l2_normalize(x, 1) * l2_normalize(y, 1), {1});
}

Tensor DotDistance::pairwise(const Tensor& x, const Tensor& y) const {
  check_pair(x, y, "dot distance", false);
  return neg(matmul(x, transpose(y, 0, 1)));
}

Tensor DotDistance::paired(const Tensor& x, const Tensor& y) const {
  check_pair(x, y, "dot distance", true);
  return neg(sum(x * y, {1}));
}

Tensor JaccardDistance::pairwise(const Tensor& x, const Tensor& y) const {
  check_pair(x, y, "Jaccard distance", false);
  return pairwise_chunked(x, y,
                          [](const Tensor& a, const Tensor& b) { return jaccard_reduce(a, b); });
}

Tensor JaccardDistance::paired(const Tensor& x, const Tensor& y) const {
  check_pair(x, y, "Jaccard distance", true);
  return jaccard_reduce(x, y);
}

// ------------------------------------------------------------------ Mahalanobis

MahalanobisDistance::MahalanobisDistance(int64_t dim, int64_t rank) {
  TRINE_CHECK_AS(UsageError, dim > 0 && rank >= 0, "Mahalanobis distance: invalid dim ", dim,
                 " or rank ", rank);
  const int64_t k = rank == 0 ? dim : rank;
  if (k == dim) {
    std::vector<float> eye(static_cast<size_t>(dim * dim), 0.f);
    for (int64_t i = 0; i < dim; ++i) eye[i * dim + i] = 1.f;
    L = Tensor::from_vector(eye, {dim, dim});
  } else {
    L = Tensor::empty({k, dim});
    init::xavier_normal_(L);
  }
  L.set_requires_grad(true);
}

Tensor MahalanobisDistance::pairwise(const Tensor& x, const Tensor& y) const {
  check_pair(x, y, "Mahalanobis distance", false);
  TRINE_CHECK(x.size(1) == L.size(1), "Mahalanobis distance: embeddings of size ", x.size(1),
              " for a factor L of shape ", L.shape_str());
  Tensor Lt = transpose(L, 0, 1);
  Tensor zx = matmul(x, Lt);
  Tensor zy = x.same(y) ? zx : matmul(y, Lt);
  return pairwise_distance(zx, zy, false);
}

Tensor MahalanobisDistance::paired(const Tensor& x, const Tensor& y) const {
  check_pair(x, y, "Mahalanobis distance", true);
  Tensor Lt = transpose(L, 0, 1);
  return minkowski_reduce(matmul(x, Lt), matmul(y, Lt), 2.f, false);
}

std::string MahalanobisDistance::name() const {
  return L.size(0) == L.size(1) ? "mahalanobis" : "mahalanobis:" + std::to_string(L.size(0));
}

// ------------------------------------------------------------------ parsing

std::shared_ptr<Distance> parse_distance(const std::string& spec, int64_t dim) {
  if (spec == "euclidean" || spec == "lp:2" || spec == "l2")
    return std::make_shared<LpDistance>(2.f);
  if (spec == "lp2sq" || spec == "sqeuclidean") return std::make_shared<LpDistance>(2.f, true);
  if (spec == "euclidean:centred") return std::make_shared<LpDistance>(2.f, false, true);
  if (spec == "lp2sq:centred") return std::make_shared<LpDistance>(2.f, true, true);
  if (spec == "manhattan" || spec == "lp:1" || spec == "l1")
    return std::make_shared<LpDistance>(1.f);
  if (spec == "cosine") return std::make_shared<CosineDistance>();
  if (spec == "dot") return std::make_shared<DotDistance>();
  if (spec == "jaccard") return std::make_shared<JaccardDistance>();
  const bool minkowski = spec.rfind("minkowski:", 0) == 0;
  if (minkowski || spec.rfind("lp:", 0) == 0) {  // minkowski:P is lp:P's other name
    const std::string text = spec.substr(minkowski ? 10 : 3);
    size_t used = 0;
    float p = 0;
    try {
      p = std::stof(text, &used);
    } catch (...) {
      used = 0;
    }
    TRINE_CHECK_AS(UsageError, used > 0 && used == text.size(), "distance '", spec, "': expected ",
                   minkowski ? "minkowski" : "lp", ":P with a number P >= 1");
    return std::make_shared<LpDistance>(p);
  }
  if (spec == "mahalanobis" || spec.rfind("mahalanobis:", 0) == 0) {
    TRINE_CHECK_AS(UsageError, dim > 0, "distance '", spec,
                   "' needs the embedding size to create its matrix");
    int64_t rank = 0;  // the full d x d matrix
    if (spec != "mahalanobis") {
      const std::string text = spec.substr(12);
      size_t used = 0;
      try {
        rank = std::stoll(text, &used);
      } catch (...) {
        used = 0;
      }
      TRINE_CHECK_AS(UsageError, used > 0 && used == text.size() && rank >= 1 && rank <= dim,
                     "distance '", spec, "': RANK must be a whole number from 1 to the ",
                     "embedding size ", dim);
    }
    return std::make_shared<MahalanobisDistance>(dim, rank);
  }
  throw UsageError("unknown distance '" + spec +
                   "': expected lp:P (or minkowski:P), euclidean[:centred], lp2sq[:centred], "
                   "manhattan, cosine, dot, jaccard or mahalanobis[:RANK]");
}

}  // namespace trine
