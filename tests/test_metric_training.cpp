// A small end-to-end metric-learning run on a synthetic clustered dataset: with batch-hard,
// semi-hard and batch-all mining, training must lower the loss and raise held-out 1-NN accuracy.
// The classes differ in 3 informative dimensions buried under 13 dimensions of larger noise, so
// an untrained network's embedding is poor and a trained one must learn to ignore the noise.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>

#include "engine/autograd.h"
#include "engine/ops.h"
#include "engine/optim.h"
#include "engine/random.h"
#include "layers/layers.h"
#include "losses/triplet_loss.h"
#include "mining/pk_sampler.h"

namespace trine {
namespace {

constexpr int kClasses = 8, kDim = 16, kPerClass = 60;

struct Data {
  Tensor x;  // [N, kDim]
  std::vector<int32_t> y;
};

// Train and test share the class centres (seed 0) and differ in their noise (`seed`).
Data make_data(uint64_t seed) {
  Generator cg(0), g(seed);
  std::vector<float> centers(kClasses * 3);
  for (float& c : centers) c = 2.f * cg.normal();
  Data d;
  std::vector<float> v;
  for (int c = 0; c < kClasses; ++c)
    for (int i = 0; i < kPerClass; ++i) {
      for (int k = 0; k < kDim; ++k)
        v.push_back(k < 3 ? centers[c * 3 + k] + 0.35f * g.normal() : 2.5f * g.normal());
      d.y.push_back(c);
    }
  d.x = Tensor::from_vector(v, {kClasses * kPerClass, kDim});
  return d;
}

// Leave-one-out 1-NN accuracy of `queries` against `gallery` embeddings (brute force).
double nn_accuracy(const Tensor& q, const std::vector<int32_t>& qy, const Tensor& g,
                   const std::vector<int32_t>& gy) {
  std::vector<float> D = pairwise_distance(q, g).to_vector();
  const int64_t n = q.size(0), m = g.size(0);
  int64_t hits = 0;
  for (int64_t i = 0; i < n; ++i) {
    int64_t best = -1;
    for (int64_t j = 0; j < m; ++j)
      if (best < 0 || D[i * m + j] < D[i * m + best]) best = j;
    hits += gy[best] == qy[i];
  }
  return static_cast<double>(hits) / static_cast<double>(n);
}

struct Result {
  double loss_start, loss_end, acc_start, acc_end;
};

Result train(const std::string& miner) {
  manual_seed(42);
  Data train = make_data(1), test = make_data(2);
  Sequential net{std::make_shared<Linear>(kDim, 32), std::make_shared<ReLU>(),
                 std::make_shared<Linear>(32, 8), std::make_shared<L2Normalize>()};
  TripletMarginLoss loss(parse_distance("euclidean"), parse_miner(miner), {});
  Adam opt(net.parameters(), {.lr = 3e-3f});
  PKSampler sampler(train.y, 4, 8, 3);
  auto embed = [&](const Tensor& x) {
    NoGradGuard ng;
    net.eval();
    Tensor e = net(x);
    net.train();
    return e;
  };
  auto batch_loss = [&](const std::vector<int64_t>& idx, bool step) {
    std::vector<int32_t> rows(idx.begin(), idx.end()), labels;
    for (int64_t i : idx) labels.push_back(train.y[i]);
    Tensor xb = index_select(train.x, 0, Tensor::from_ints(rows));
    Tensor l = loss.forward(net(xb), labels);
    if (step) {
      opt.zero_grad();
      l.backward();
      opt.step();
    }
    return static_cast<double>(l.item());
  };
  Result r{};
  std::vector<std::vector<int64_t>> first = sampler.epoch(0).batches;
  for (const auto& b : first)
    r.loss_start += batch_loss(b, false) / static_cast<double>(first.size());
  r.acc_start = nn_accuracy(embed(test.x), test.y, embed(train.x), train.y);
  for (int epoch = 0; epoch < 40; ++epoch)
    for (const auto& b : sampler.epoch(epoch).batches) batch_loss(b, true);
  for (const auto& b : first)
    r.loss_end += batch_loss(b, false) / static_cast<double>(first.size());
  r.acc_end = nn_accuracy(embed(test.x), test.y, embed(train.x), train.y);
  return r;
}

class MetricTraining : public ::testing::TestWithParam<std::string> {};

TEST_P(MetricTraining, LowersLossAndRaisesNearestNeighbourAccuracy) {
  Result r = train(GetParam());
  RecordProperty("acc_end", std::to_string(r.acc_end));
  std::printf("%s: loss %.3f -> %.3f, 1-NN %.3f -> %.3f\n", GetParam().c_str(), r.loss_start,
              r.loss_end, r.acc_start, r.acc_end);
  EXPECT_LT(r.loss_end, 0.5 * r.loss_start) << GetParam();
  EXPECT_LT(r.acc_start, 0.6) << "the task should not be solved before training";
  EXPECT_GT(r.acc_end, 0.8) << GetParam();
  EXPECT_GT(r.acc_end, r.acc_start + 0.25) << GetParam();
}

INSTANTIATE_TEST_SUITE_P(Miners, MetricTraining,
                         ::testing::Values("batch-hard", "semi-hard:facenet", "batch-all"),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (char& c : n)
                             if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                           return n;
                         });

}  // namespace
}  // namespace trine
