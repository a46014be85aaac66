// SGD, Adam and AdamW against a double-precision reference of torch.optim's update rules, with
// skipped parameters and state round trips; learning-rate schedules and their parser.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <optional>

#include "engine/checkpoint.h"
#include "engine/error.h"
#include "engine/lr_schedule.h"
#include "engine/optim.h"
#include "support/test_util.h"

namespace trine {
namespace {

using test::throws_with;

// One parameter's reference state, in double.
struct RefParam {
  std::vector<double> p, buf, m, v;
  bool has_buf = false;
  int64_t step = 0;  // PyTorch counts steps per parameter
};

// torch.optim.SGD, one parameter.
void sgd_ref(RefParam& r, const std::vector<float>& g, const SgdOptions& o) {
  const size_t n = r.p.size();
  std::vector<double> d(n);
  for (size_t i = 0; i < n; ++i) d[i] = g[i] + double(o.weight_decay) * r.p[i];
  if (o.momentum != 0.f) {
    if (!r.has_buf) {
      r.buf = d;  // the first buffer is the gradient itself, undamped
      r.has_buf = true;
    } else {
      for (size_t i = 0; i < n; ++i)
        r.buf[i] = double(o.momentum) * r.buf[i] + (1.0 - double(o.dampening)) * d[i];
    }
    for (size_t i = 0; i < n; ++i)
      d[i] = o.nesterov ? d[i] + double(o.momentum) * r.buf[i] : r.buf[i];
  }
  for (size_t i = 0; i < n; ++i) r.p[i] -= double(o.lr) * d[i];
}

// torch.optim.Adam / AdamW (amsgrad off), one parameter.
void adam_ref(RefParam& r, const std::vector<float>& g, const AdamOptions& o, bool decoupled) {
  const size_t n = r.p.size();
  if (r.m.empty()) r.m.assign(n, 0.0), r.v.assign(n, 0.0);
  ++r.step;
  const double b1 = o.beta1, b2 = o.beta2, lr = o.lr, wd = o.weight_decay;
  const double bc1 = 1 - std::pow(b1, double(r.step)), bc2 = 1 - std::pow(b2, double(r.step));
  for (size_t i = 0; i < n; ++i) {
    double grad = g[i];
    if (decoupled)
      r.p[i] *= 1 - lr * wd;
    else
      grad += wd * r.p[i];
    r.m[i] = b1 * r.m[i] + (1 - b1) * grad;
    r.v[i] = b2 * r.v[i] + (1 - b2) * grad * grad;
    const double denom = std::sqrt(r.v[i]) / std::sqrt(bc2) + double(o.eps);
    r.p[i] -= lr / bc1 * r.m[i] / denom;
  }
}

// Gradient of parameter `k` at step `t`, or none (the parameter is skipped that step).
using GradPlan = std::function<std::optional<std::vector<float>>(int t, size_t k, size_t n)>;

GradPlan every_step() {
  return [](int t, size_t k, size_t n) -> std::optional<std::vector<float>> {
    return test::random_values(n, 1000 + 10 * t + k, -1.f, 1.f);
  };
}
// Parameter 1 gets no gradient in the first two steps (e.g. frozen, then unfrozen).
GradPlan late_second_param() {
  return [](int t, size_t k, size_t n) -> std::optional<std::vector<float>> {
    if (k == 1 && t < 2) return std::nullopt;
    return test::random_values(n, 2000 + 10 * t + k, -1.f, 1.f);
  };
}

std::vector<Tensor> make_params() {
  return {test::random_tensor({5}, 1, -1.f, 1.f, true),
          test::random_tensor({2, 3}, 2, -1.f, 1.f, true)};
}

std::vector<RefParam> make_refs(const std::vector<Tensor>& params) {
  std::vector<RefParam> refs(params.size());
  for (size_t k = 0; k < params.size(); ++k) {
    std::vector<float> v = params[k].to_vector();
    refs[k].p.assign(v.begin(), v.end());
  }
  return refs;
}

// Runs `steps` steps of `opt` and of the reference `ref_step` with the same gradients and
// compares every parameter after each step.
void run_and_compare(Optimizer& opt, std::vector<Tensor>& params, std::vector<RefParam>& refs,
                     const GradPlan& plan, int steps,
                     const std::function<void(RefParam&, const std::vector<float>&)>& ref_step) {
  for (int t = 0; t < steps; ++t) {
    opt.zero_grad();
    for (size_t k = 0; k < params.size(); ++k) {
      auto g = plan(t, k, static_cast<size_t>(params[k].numel()));
      if (!g) continue;
      params[k].set_grad(Tensor::from_vector(*g, params[k].shape()));
      ref_step(refs[k], *g);
    }
    opt.step();
    for (size_t k = 0; k < params.size(); ++k) {
      SCOPED_TRACE(::testing::Message() << "step " << t << " param " << k);
      ASSERT_TRUE(test::all_close_ref(params[k].to_vector(), refs[k].p, 1e-5, 1e-5));
    }
  }
  EXPECT_EQ(opt.steps(), steps);
}

std::vector<SgdOptions> sgd_configs() {
  std::vector<SgdOptions> out;
  SgdOptions o;
  o.lr = 0.1f;
  out.push_back(o);  // plain
  o.momentum = 0.9f;
  out.push_back(o);  // momentum
  o.dampening = 0.3f;
  out.push_back(o);  // momentum + dampening
  o.dampening = 0.f;
  o.nesterov = true;
  out.push_back(o);  // Nesterov
  o.weight_decay = 0.05f;
  out.push_back(o);  // Nesterov + weight decay
  SgdOptions wd;
  wd.lr = 0.2f;
  wd.weight_decay = 0.1f;
  out.push_back(wd);  // weight decay without momentum
  return out;
}

TEST(Sgd, MatchesTorchReference) {
  for (const SgdOptions& o : sgd_configs()) {
    SCOPED_TRACE(::testing::Message() << "momentum " << o.momentum << " dampening " << o.dampening
                                      << " nesterov " << o.nesterov << " wd " << o.weight_decay);
    std::vector<Tensor> params = make_params();
    std::vector<RefParam> refs = make_refs(params);
    SGD opt(params, o);
    run_and_compare(opt, params, refs, every_step(), 5,
                    [&](RefParam& r, const std::vector<float>& g) { sgd_ref(r, g, o); });
  }
}

TEST(Sgd, ParameterWithLateGradientStartsItsOwnMomentum) {
  // PyTorch creates each parameter's momentum buffer (= its first gradient, undamped) when that
  // parameter first has a gradient, not at the optimizer's first step.
  for (const SgdOptions& o : sgd_configs()) {
    SCOPED_TRACE(::testing::Message() << "momentum " << o.momentum << " dampening " << o.dampening
                                      << " nesterov " << o.nesterov << " wd " << o.weight_decay);
    std::vector<Tensor> params = make_params();
    std::vector<RefParam> refs = make_refs(params);
    SGD opt(params, o);
    run_and_compare(opt, params, refs, late_second_param(), 5,
                    [&](RefParam& r, const std::vector<float>& g) { sgd_ref(r, g, o); });
  }
}

struct AdamConfig {
  AdamOptions o;
  bool decoupled;
};

std::vector<AdamConfig> adam_configs() {
  std::vector<AdamConfig> out;
  AdamOptions o;
  o.lr = 0.01f;
  out.push_back({o, false});  // Adam
  o.weight_decay = 0.1f;
  out.push_back({o, false});  // Adam + L2
  out.push_back({o, true});   // AdamW
  AdamOptions b;
  b.lr = 0.05f;
  b.beta1 = 0.5f;
  b.beta2 = 0.9f;
  b.eps = 1e-3f;
  out.push_back({b, false});
  out.push_back({AdamW::defaults(), true});
  return out;
}

std::unique_ptr<Optimizer> make_adam(std::vector<Tensor> params, const AdamConfig& c) {
  if (c.decoupled) return std::make_unique<AdamW>(std::move(params), c.o);
  return std::make_unique<Adam>(std::move(params), c.o);
}

TEST(Adam, MatchesTorchReference) {
  for (const AdamConfig& c : adam_configs()) {
    SCOPED_TRACE(::testing::Message() << (c.decoupled ? "AdamW" : "Adam") << " lr " << c.o.lr
                                      << " wd " << c.o.weight_decay);
    std::vector<Tensor> params = make_params();
    std::vector<RefParam> refs = make_refs(params);
    auto opt = make_adam(params, c);
    run_and_compare(
        *opt, params, refs, every_step(), 6,
        [&](RefParam& r, const std::vector<float>& g) { adam_ref(r, g, c.o, c.decoupled); });
  }
}

TEST(Adam, ParameterWithLateGradientCountsItsOwnSteps) {
  // Bias correction uses the number of updates that parameter received (torch keeps a step
  // count per parameter), so an unfrozen parameter's first update has the usual size.
  for (const AdamConfig& c : adam_configs()) {
    SCOPED_TRACE(::testing::Message() << (c.decoupled ? "AdamW" : "Adam") << " lr " << c.o.lr
                                      << " wd " << c.o.weight_decay);
    std::vector<Tensor> params = make_params();
    std::vector<RefParam> refs = make_refs(params);
    auto opt = make_adam(params, c);
    run_and_compare(
        *opt, params, refs, late_second_param(), 5,
        [&](RefParam& r, const std::vector<float>& g) { adam_ref(r, g, c.o, c.decoupled); });
  }
}

TEST(Optimizer, ParametersWithoutGradAreSkipped) {
  std::vector<Tensor> params = make_params();
  const std::vector<float> frozen = params[1].to_vector();
  AdamW adam(params);
  SgdOptions so;
  so.momentum = 0.9f;
  so.weight_decay = 0.1f;  // decay must not touch a skipped parameter either
  SGD sgd(params, so);
  for (int t = 0; t < 3; ++t) {
    params[0].set_grad(Tensor::ones({5}));
    params[1].zero_grad();
    adam.step();
    sgd.step();
  }
  EXPECT_EQ(params[1].to_vector(), frozen);
  EXPECT_NE(params[0].to_vector(), test::random_tensor({5}, 1).to_vector());
  // No state was created for the skipped parameter.
  for (const auto& [key, t] : adam.state_dict())
    EXPECT_EQ(key.find(".1"), std::string::npos) << key;
  for (const auto& [key, t] : sgd.state_dict()) EXPECT_EQ(key.find(".1"), std::string::npos) << key;
}

TEST(Optimizer, ZeroGradAndLr) {
  std::vector<Tensor> params = make_params();
  SGD opt(params, {});
  params[0].set_grad(Tensor::ones({5}));
  opt.zero_grad();
  EXPECT_FALSE(params[0].grad().defined());
  EXPECT_FLOAT_EQ(opt.lr(), 0.01f);
  opt.set_lr(0.5f);
  EXPECT_FLOAT_EQ(opt.lr(), 0.5f);
  EXPECT_THROW(opt.set_lr(-1.f), UsageError);
  EXPECT_THROW(opt.set_lr(NAN), UsageError);
  EXPECT_EQ(opt.params().size(), 2u);
}

TEST(Optimizer, ConstructorChecks) {
  EXPECT_THROW(SGD({}, {}), UsageError);
  EXPECT_THROW(SGD({Tensor::ones({2})}, {}), Error);  // does not require grad
  Tensor x = Tensor::ones({2}).set_requires_grad(true);
  EXPECT_THROW(SGD({x * 2.f}, {}), Error);  // not a leaf
  SgdOptions bad;
  bad.nesterov = true;  // without momentum
  EXPECT_THROW(SGD({x}, bad), UsageError);
  bad.momentum = 0.9f;
  bad.dampening = 0.1f;  // Nesterov with dampening
  EXPECT_THROW(SGD({x}, bad), UsageError);
  SgdOptions neg;
  neg.lr = -0.1f;
  EXPECT_THROW(SGD({x}, neg), UsageError);
  AdamOptions ab;
  ab.beta1 = 1.f;
  EXPECT_THROW(Adam({x}, ab), UsageError);
  AdamOptions ae;
  ae.eps = 0.f;
  EXPECT_THROW(Adam({x}, ae), UsageError);
}

// Deep copy of a state dict (the optimizer's own tensors keep changing).
std::map<std::string, Tensor> snapshot(const std::map<std::string, Tensor>& state) {
  std::map<std::string, Tensor> out;
  for (const auto& [k, t] : state) out[k] = t.detach().clone();
  return out;
}

std::vector<Tensor> clone_params(const std::vector<Tensor>& params) {
  std::vector<Tensor> out;
  for (const Tensor& p : params) out.push_back(p.detach().clone().set_requires_grad(true));
  return out;
}

// Runs 3 steps on A, restores its state into B (fresh optimizer, copied parameters), then both
// run 3 more identical steps: the parameters must agree exactly.
template <typename MakeOpt>
void check_resume(MakeOpt make, const GradPlan& plan, const std::string& ckpt_path) {
  std::vector<Tensor> pa = make_params();
  auto a = make(pa);
  auto feed = [&](Optimizer& opt, std::vector<Tensor>& params, int t) {
    opt.zero_grad();
    for (size_t k = 0; k < params.size(); ++k)
      if (auto g = plan(t, k, static_cast<size_t>(params[k].numel())))
        params[k].set_grad(Tensor::from_vector(*g, params[k].shape()));
    opt.step();
  };
  for (int t = 0; t < 3; ++t) feed(*a, pa, t);
  a->set_lr(a->lr() * 0.5f);

  // Through a checkpoint file, as a training run would resume.
  Checkpoint ck;
  ck.tensors = snapshot(a->state_dict());
  save_checkpoint(ckpt_path, ck);
  std::vector<Tensor> pb = clone_params(pa);
  auto b = make(pb);
  b->load_state_dict(load_checkpoint(ckpt_path).tensors);
  EXPECT_EQ(b->steps(), a->steps());
  EXPECT_FLOAT_EQ(b->lr(), a->lr());
  for (int t = 3; t < 6; ++t) {
    feed(*a, pa, t);
    feed(*b, pb, t);
  }
  for (size_t k = 0; k < pa.size(); ++k) EXPECT_EQ(pa[k].to_vector(), pb[k].to_vector());
  // Without the state, B would have diverged: the test can fail.
  std::vector<Tensor> pc = clone_params(pb);
  auto c = make(pc);
  for (int t = 6; t < 8; ++t) {
    feed(*b, pb, t);
    feed(*c, pc, t);
  }
  EXPECT_NE(pb[0].to_vector(), pc[0].to_vector());
  std::remove(ckpt_path.c_str());
}

TEST(Optimizer, StateDictRoundTripContinuesIdentically) {
  // Per process: other builds' test runs may share the temporary folder.
  const std::string path =
      ::testing::TempDir() + "trine_test_optim_state_" + std::to_string(::getpid()) + ".ckpt";
  SgdOptions so;
  so.lr = 0.1f;
  so.momentum = 0.9f;
  so.nesterov = true;
  for (const GradPlan& plan : {every_step(), late_second_param()}) {
    check_resume([&](std::vector<Tensor> p) { return std::make_unique<SGD>(p, so); }, plan, path);
    check_resume([&](std::vector<Tensor> p) { return std::make_unique<Adam>(p); }, plan, path);
    check_resume([&](std::vector<Tensor> p) { return std::make_unique<AdamW>(p); }, plan, path);
  }
}

TEST(Optimizer, LoadStateDictRejectsBadState) {
  std::vector<Tensor> params = make_params();
  Adam opt(params);
  params[0].set_grad(Tensor::ones({5}));
  params[1].set_grad(Tensor::ones({2, 3}));
  opt.step();
  const auto good = snapshot(opt.state_dict());
  auto missing_step = good;
  missing_step.erase("step");
  EXPECT_TRUE(throws_with<DataError>([&] { opt.load_state_dict(missing_step); }, {"step"}));
  auto wrong_shape = good;
  wrong_shape["exp_avg.0"] = Tensor::zeros({4});
  EXPECT_TRUE(throws_with<DataError>([&] { opt.load_state_dict(wrong_shape); }, {"exp_avg.0"}));
  auto out_of_range = good;
  out_of_range["exp_avg.7"] = Tensor::zeros({5});
  EXPECT_TRUE(throws_with<DataError>([&] { opt.load_state_dict(out_of_range); }, {"exp_avg.7"}));
  auto no_index = good;
  no_index["exp_avg"] = Tensor::zeros({5});
  EXPECT_TRUE(throws_with<DataError>([&] { opt.load_state_dict(no_index); }, {"exp_avg"}));
  auto bad_index = good;
  bad_index["exp_avg.x"] = Tensor::zeros({5});
  EXPECT_TRUE(throws_with<DataError>([&] { opt.load_state_dict(bad_index); }, {"exp_avg.x"}));
  opt.load_state_dict(good);  // still loads after the failures
  EXPECT_EQ(opt.steps(), 1);
}

// ------------------------------------------------------------------------------ schedules

TEST(LrSchedule, ValuesAtChosenSteps) {
  ConstantLr c(0.1f);
  EXPECT_FLOAT_EQ(c.lr_at(0), 0.1f);
  EXPECT_FLOAT_EQ(c.lr_at(100000), 0.1f);

  StepLr s(1.f, 10, 0.5f);
  EXPECT_FLOAT_EQ(s.lr_at(0), 1.f);
  EXPECT_FLOAT_EQ(s.lr_at(9), 1.f);
  EXPECT_FLOAT_EQ(s.lr_at(10), 0.5f);
  EXPECT_FLOAT_EQ(s.lr_at(25), 0.25f);

  CosineLr cos(1.f, 100, 0.1f);
  EXPECT_FLOAT_EQ(cos.lr_at(0), 1.f);
  EXPECT_NEAR(cos.lr_at(25), 0.1 + 0.9 * 0.5 * (1 + std::cos(M_PI / 4)), 1e-6);
  EXPECT_NEAR(cos.lr_at(50), 0.55, 1e-6);
  EXPECT_NEAR(cos.lr_at(99), 0.1 + 0.9 * 0.5 * (1 + std::cos(M_PI * 0.99)), 1e-6);
  EXPECT_FLOAT_EQ(cos.lr_at(100), 0.1f);
  EXPECT_FLOAT_EQ(cos.lr_at(1000), 0.1f);

  WarmupLr w(std::make_shared<ConstantLr>(1.f), 4);
  EXPECT_FLOAT_EQ(w.lr_at(0), 0.25f);
  EXPECT_FLOAT_EQ(w.lr_at(1), 0.5f);
  EXPECT_FLOAT_EQ(w.lr_at(3), 1.f);
  EXPECT_FLOAT_EQ(w.lr_at(4), 1.f);
  WarmupLr ws(std::make_shared<StepLr>(1.f, 10, 0.1f), 5);
  EXPECT_FLOAT_EQ(ws.lr_at(5), 1.f);  // the inner schedule starts after the warm-up
  EXPECT_FLOAT_EQ(ws.lr_at(14), 1.f);
  EXPECT_FLOAT_EQ(ws.lr_at(15), 0.1f);

  for (const LrSchedule* sched : std::vector<const LrSchedule*>{&c, &s, &cos, &w})
    EXPECT_FALSE(sched->describe().empty());
  EXPECT_THROW(StepLr(1.f, 0, 0.5f), UsageError);
  EXPECT_THROW(StepLr(1.f, 10, 0.f), UsageError);
  EXPECT_THROW(CosineLr(1.f, 0), UsageError);
  EXPECT_THROW(WarmupLr(std::make_shared<ConstantLr>(1.f), -1), UsageError);
}

TEST(LrSchedule, Parse) {
  EXPECT_FLOAT_EQ(parse_lr_schedule("constant", 0.3f, 100)->lr_at(77), 0.3f);
  auto step = parse_lr_schedule("step:30:0.1", 1.f, 100);
  EXPECT_FLOAT_EQ(step->lr_at(29), 1.f);
  EXPECT_FLOAT_EQ(step->lr_at(30), 0.1f);
  auto cos = parse_lr_schedule("cosine", 1.f, 100);
  EXPECT_NEAR(cos->lr_at(50), 0.5, 1e-6);
  EXPECT_NEAR(cos->lr_at(100), 0.0, 1e-6);
  auto cos_min = parse_lr_schedule("cosine:0.01", 1.f, 100);
  EXPECT_NEAR(cos_min->lr_at(100), 0.01, 1e-7);
  // Warm-up: the cosine runs over the steps left after it.
  auto warm = parse_lr_schedule("cosine+warmup:10", 1.f, 110);
  EXPECT_FLOAT_EQ(warm->lr_at(0), 0.1f);
  EXPECT_FLOAT_EQ(warm->lr_at(9), 1.f);
  EXPECT_FLOAT_EQ(warm->lr_at(10), 1.f);
  EXPECT_NEAR(warm->lr_at(60), 0.5, 1e-6);
  EXPECT_NEAR(warm->lr_at(110), 0.0, 1e-6);
  EXPECT_NE(warm->describe().find("warm-up"), std::string::npos) << warm->describe();
  auto step_warm = parse_lr_schedule("step:5:0.5+warmup:2", 2.f, 100);
  EXPECT_FLOAT_EQ(step_warm->lr_at(0), 1.f);
  EXPECT_FLOAT_EQ(step_warm->lr_at(7), 1.f);
  EXPECT_FLOAT_EQ(parse_lr_schedule("constant+warmup:0", 2.f, 10)->lr_at(0), 2.f);
}

TEST(LrSchedule, ParseRejectsBadText) {
  for (const std::string bad :
       {"", "linear", "constant:3", "step", "step:10", "step:x:0.1", "step:0:0.5", "step:10:-1",
        "step:10:0.5:1", "step:10:0.5junk", "step:1.5:0.5", "cosine:abc", "cosine:0.1:2",
        "cosine+warmup:abc", "constant+warmup:-5", "constant+warmup:5x",
        "constant+warmup:", "+warmup:5", "Constant"}) {
    SCOPED_TRACE("'" + bad + "'");
    EXPECT_THROW(parse_lr_schedule(bad, 0.1f, 100), UsageError);
  }
}

}  // namespace
}  // namespace trine
