// The CPU backend's fused per-image convolution against the Backend's generic chunked
// im2col + GEMM default (which other backends inherit), forward and backward, on odd shapes.
#include <gtest/gtest.h>

#include <cmath>

#include "engine/backend.h"
#include "engine/cpu/cpu_backend.h"
#include "engine/random.h"
#include "engine/tensor.h"

namespace trine {
namespace {

struct Case {
  int64_t N, C, H, W, M, k, s, p;
};

void expect_close(const Tensor& a, const Tensor& b, const char* what, const Case& c) {
  std::vector<float> x = a.to_vector(), y = b.to_vector();
  ASSERT_EQ(x.size(), y.size());
  for (size_t i = 0; i < x.size(); ++i)
    ASSERT_NEAR(x[i], y[i], 1e-4 + 1e-4 * std::fabs(y[i]))
        << what << " at " << i << " for N" << c.N << " C" << c.C << " " << c.H << "x" << c.W << " M"
        << c.M << " k" << c.k << " s" << c.s << " p" << c.p;
}

TEST(ConvPaths, FusedPerImageMatchesGenericDefault) {
  auto& be = static_cast<CpuBackend&>(backend_for(Device::cpu()));
  manual_seed(5);
  for (const Case& c :
       {Case{1, 1, 5, 5, 1, 1, 1, 0}, Case{3, 2, 7, 11, 5, 3, 1, 1}, Case{5, 3, 13, 9, 4, 3, 2, 1},
        Case{7, 4, 10, 10, 6, 5, 3, 2}, Case{2, 8, 6, 6, 3, 2, 2, 0}}) {
    ConvGeom g{c.C, c.H, c.W, c.k, c.k, c.s, c.s, c.p, c.p, 0, 0};
    g.OH = (c.H + 2 * c.p - c.k) / c.s + 1;
    g.OW = (c.W + 2 * c.p - c.k) / c.s + 1;
    Tensor x = Tensor::randn({c.N, c.C, c.H, c.W}), w = Tensor::randn({c.M, g.col_rows()});
    Tensor b = Tensor::randn({c.M}), gy = Tensor::randn({c.N, c.M, g.OH, g.OW});
    auto garbage = [](const Shape& s) { return Tensor::full(s, NAN); };  // must be overwritten
    Tensor y1 = garbage(gy.shape()), y2 = garbage(gy.shape());
    be.Backend::conv2d_forward(x.data(), w.data(), b.data(), g, c.N, c.M, y1.data());
    be.conv2d_forward(x.data(), w.data(), b.data(), g, c.N, c.M, y2.data());
    expect_close(y2, y1, "forward", c);
    Tensor gx1 = garbage(x.shape()), gw1 = garbage(w.shape()), gb1 = garbage({c.M});
    Tensor gx2 = garbage(x.shape()), gw2 = garbage(w.shape()), gb2 = garbage({c.M});
    be.Backend::conv2d_backward(x.data(), w.data(), gy.data(), g, c.N, c.M, gx1.data(), gw1.data(),
                                gb1.data());
    be.conv2d_backward(x.data(), w.data(), gy.data(), g, c.N, c.M, gx2.data(), gw2.data(),
                       gb2.data());
    expect_close(gx2, gx1, "input gradient", c);
    expect_close(gw2, gw1, "weight gradient", c);
    expect_close(gb2, gb1, "bias gradient", c);
    // Only some gradients asked for: the others stay untouched.
    Tensor gw3 = garbage(w.shape());
    be.conv2d_backward(x.data(), w.data(), gy.data(), g, c.N, c.M, nullptr, gw3.data(), nullptr);
    expect_close(gw3, gw1, "weight gradient alone", c);
  }
}

}  // namespace
}  // namespace trine
