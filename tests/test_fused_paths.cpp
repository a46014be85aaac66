// The CPU backend's fused primitives against the Backend's generic defaults (which other
// backends inherit): per-image convolution vs chunked im2col + GEMM, and one-pass batch norm vs
// composed elementwise ops; forward and backward, odd shapes, outputs pre-filled with NaN.
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

TEST(FusedPaths, ConvMatchesGenericDefault) {
  auto& be = static_cast<CpuBackend&>(backend_for(Device::cpu()));
  manual_seed(5);
  for (const Case& c :
       {Case{1, 1, 5, 5, 1, 1, 1, 0}, Case{3, 2, 7, 11, 5, 3, 1, 1}, Case{5, 3, 13, 9, 4, 3, 2, 1},
        Case{7, 4, 10, 10, 6, 5, 3, 2}, Case{2, 8, 6, 6, 3, 2, 2, 0}, Case{3, 2, 9, 6, 4, 5, 1, 2},
        Case{2, 3, 1, 8, 2, 3, 1, 1}}) {
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

TEST(FusedPaths, BatchNormMatchesGenericDefault) {
  auto& be = static_cast<CpuBackend&>(backend_for(Device::cpu()));
  manual_seed(6);
  struct Bn {
    int64_t N, C, HW;
  };
  for (const Bn& c : {Bn{2, 1, 1}, Bn{3, 5, 7}, Bn{16, 3, 1}, Bn{4, 7, 33}}) {
    Tensor x = Tensor::randn({c.N, c.C, c.HW}, 0.5f, 2.f), gy = Tensor::randn({c.N, c.C, c.HW});
    Tensor w = Tensor::randn({c.C}), b = Tensor::randn({c.C});
    for (bool affine : {true, false})
      for (bool relu : {false, true}) {
        const float* wp = affine ? w.data() : nullptr;
        const float* bp = affine ? b.data() : nullptr;
        Tensor y[2], mean[2], var[2], inv[2], gx[2], gw[2], gb[2];
        for (int k = 0; k < 2; ++k) {
          y[k] = Tensor::full(x.shape(), NAN);
          mean[k] = Tensor::full({c.C}, NAN), var[k] = Tensor::full({c.C}, NAN);
          inv[k] = Tensor::full({c.C}, NAN);
          gx[k] = Tensor::full(x.shape(), NAN), gw[k] = Tensor::full({c.C}, NAN);
          gb[k] = Tensor::full({c.C}, NAN);
        }
        be.Backend::batch_norm_forward(x.data(), c.N, c.C, c.HW, wp, bp, 1e-5f, relu, y[0].data(),
                                       mean[0].data(), var[0].data(), inv[0].data());
        be.batch_norm_forward(x.data(), c.N, c.C, c.HW, wp, bp, 1e-5f, relu, y[1].data(),
                              mean[1].data(), var[1].data(), inv[1].data());
        // Both backwards mask by the same output, so only the backward is compared.
        const float* relu_out = relu ? y[1].data() : nullptr;
        be.Backend::batch_norm_backward(x.data(), relu_out, gy.data(), c.N, c.C, c.HW,
                                        mean[0].data(), inv[0].data(), wp, gx[0].data(),
                                        gw[0].data(), gb[0].data());
        be.batch_norm_backward(x.data(), relu_out, gy.data(), c.N, c.C, c.HW, mean[1].data(),
                               inv[1].data(), wp, gx[1].data(), gw[1].data(), gb[1].data());
        Case tag{c.N, c.C, c.HW, 1, 0, 0, 0, 0};
        expect_close(y[1], y[0], "batch norm output", tag);
        expect_close(mean[1], mean[0], "batch norm mean", tag);
        expect_close(var[1], var[0], "batch norm variance", tag);
        expect_close(inv[1], inv[0], "batch norm invstd", tag);
        expect_close(gx[1], gx[0], "batch norm input gradient", tag);
        expect_close(gw[1], gw[0], "batch norm weight gradient", tag);
        expect_close(gb[1], gb[0], "batch norm bias gradient", tag);
      }
  }
}

}  // namespace
}  // namespace trine
