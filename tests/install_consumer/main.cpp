// Uses an installed trine: tensors, a matmul and its backward, a layer, and the BLAS kernel in
// use. Exits non-zero when a gradient is wrong.
#include <cmath>
#include <cstdio>
#include <vector>

#include "engine/cpu/blas.h"
#include "engine/ops.h"
#include "engine/tensor.h"
#include "layers/linear.h"

int main() {
  using trine::Tensor;
  // y = sum(a @ b) with a [2,3], b [3,2]: dy/da = ones[2,2] @ b^T, so row i of the gradient
  // holds the row sums of b; dy/db = a^T @ ones[2,2], so row k holds the column sum of a.
  Tensor a = Tensor::from_vector({1, 2, 3, 4, 5, 6}, {2, 3}).set_requires_grad(true);
  Tensor b = Tensor::from_vector({1, -1, 2, 0.5f, -3, 4}, {3, 2}).set_requires_grad(true);
  Tensor y = trine::sum(trine::matmul(a, b));
  y.backward();

  const std::vector<float> want_a = {0, 2.5f, 1, 0, 2.5f, 1};
  const std::vector<float> want_b = {5, 5, 7, 7, 9, 9};
  const std::vector<float> ga = a.grad().to_vector(), gb = b.grad().to_vector();
  int wrong = std::fabs(y.item() - 26.5f) > 1e-4f;
  for (size_t i = 0; i < want_a.size(); ++i) wrong += std::fabs(ga[i] - want_a[i]) > 1e-5f;
  for (size_t i = 0; i < want_b.size(); ++i) wrong += std::fabs(gb[i] - want_b[i]) > 1e-5f;

  trine::Linear layer(3, 4);
  Tensor out = layer.forward(a);
  wrong += out.size(0) != 2 || out.size(1) != 4;

  std::printf("sum(a @ b) = %g\n", y.item());
  std::printf("blas_kernel %s\n", trine::blas::info().core.c_str());
  std::printf("blas %s\n", trine::blas::summary().c_str());
  if (wrong) {
    std::printf("install_consumer: FAILED (%d wrong values)\n", wrong);
    return 1;
  }
  std::printf("install_consumer: OK\n");
  return 0;
}
