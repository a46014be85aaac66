// Online miners over a batch distance matrix.
#include "mining/miner.h"

#include <cmath>
#include <sstream>

#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/error.h"
#include "engine/ops.h"

namespace trine {

namespace {

void check_inputs(const Tensor& D, const Tensor& labels, const char* who) {
  TRINE_CHECK(D.dim() == 2 && D.size(0) == D.size(1), who, ": distance matrix must be [B, B], got ",
              D.shape_str());
  TRINE_CHECK(labels.dtype() == DType::I32 && labels.dim() == 1 && labels.size(0) == D.size(0), who,
              ": labels must be int32 [", D.size(0), "]");
  TRINE_CHECK(labels.device() == D.device(), who, ": labels and distances on different devices");
}

// Replaces -1 entries by 0 and returns {index, valid} (one launch on a GPU).
std::pair<Tensor, Tensor> split_invalid(const Tensor& idx) {
  Tensor safe = Tensor::empty(idx.shape(), idx.device(), DType::I32);
  Tensor valid = Tensor::empty(idx.shape(), idx.device());
  idx.backend().split_indices(idx.int_data(), idx.numel(), safe.int_data(), valid.data());
  return {safe, valid};
}

MinerOutput window_output(TripletWindow w) {
  MinerOutput out{MinerOutput::Kind::Window, {}, w};
  return out;
}

}  // namespace

MinerOutput BatchAllMiner::mine(const Tensor& D, const Tensor& labels, float) const {
  check_inputs(D, labels, "batch-all miner");
  return window_output({-INFINITY, INFINITY, true, true});
}

MinerOutput BatchHardMiner::mine(const Tensor& D, const Tensor& labels, float) const {
  check_inputs(D, labels, "batch-hard miner");
  NoGradGuard ng;
  const int64_t B = D.size(0);
  Tensor pos = Tensor::empty({B, 1}, D.device(), DType::I32);
  Tensor neg = Tensor::empty({B, 1}, D.device(), DType::I32);
  D.backend().mine_anchor_pairs(D.data(), labels.int_data(), B, PositivePick::Hardest,
                                pos.int_data(), neg.int_data());
  auto [p, pv] = split_invalid(pos);
  auto [n, nv] = split_invalid(neg);
  MinerOutput out{MinerOutput::Kind::Triplets, {Tensor(), p, n, pv * nv}, {}};
  return out;
}

MinerOutput SemiHardMiner::mine(const Tensor& D, const Tensor& labels, float margin) const {
  check_inputs(D, labels, "semi-hard miner");
  if (kind_ == SemiHardKind::Band) return window_output({0.f, margin, false, false});
  NoGradGuard ng;
  const int64_t B = D.size(0);
  Tensor neg = Tensor::empty({B, B}, D.device(), DType::I32);
  D.backend().mine_semihard(
      D.data(), labels.int_data(), B, margin,
      kind_ == SemiHardKind::Facenet ? SemiHardMode::Facenet : SemiHardMode::Tfa, neg.int_data());
  // Candidate c of anchor row r is the pair (r, c): the positive is the column itself.
  auto [n, valid] = split_invalid(neg);
  MinerOutput out{MinerOutput::Kind::Triplets, {Tensor(), Tensor(), n, valid}, {}};
  return out;
}

std::string SemiHardMiner::name() const {
  switch (kind_) {
    case SemiHardKind::Facenet:
      return "semi-hard:facenet";
    case SemiHardKind::Tfa:
      return "semi-hard:tfa";
    case SemiHardKind::Band:
      return "semi-hard:band";
  }
  return "semi-hard";
}

HardnessWindowMiner::HardnessWindowMiner(float lo, float hi, bool lo_inclusive, bool hi_inclusive,
                                         std::string name)
    : w_{lo, hi, lo_inclusive, hi_inclusive}, name_(std::move(name)) {
  TRINE_CHECK_AS(UsageError, !(lo > hi) && !std::isnan(lo) && !std::isnan(hi),
                 "hardness window: lower bound ", lo, " is above upper bound ", hi);
}

MinerOutput HardnessWindowMiner::mine(const Tensor& D, const Tensor& labels, float) const {
  check_inputs(D, labels, "hardness-window miner");
  return window_output(w_);
}

std::string HardnessWindowMiner::name() const {
  if (!name_.empty()) return name_;
  std::ostringstream os;
  os << "window:" << w_.lo << ":" << w_.hi;
  return os.str();
}

std::shared_ptr<Miner> make_easy_miner() {
  return std::make_shared<HardnessWindowMiner>(0.f, INFINITY, true, true, "easy");
}

std::shared_ptr<Miner> make_hard_miner() {
  return std::make_shared<HardnessWindowMiner>(-INFINITY, 0.f, true, false, "hard");
}

std::shared_ptr<Miner> parse_miner(const std::string& spec) {
  if (spec == "none" || spec == "batch-all" || spec == "all")
    return std::make_shared<BatchAllMiner>();
  if (spec == "batch-hard") return std::make_shared<BatchHardMiner>();
  if (spec == "semi-hard" || spec == "semi-hard:facenet")
    return std::make_shared<SemiHardMiner>(SemiHardKind::Facenet);
  if (spec == "semi-hard:tfa") return std::make_shared<SemiHardMiner>(SemiHardKind::Tfa);
  if (spec == "semi-hard:band") return std::make_shared<SemiHardMiner>(SemiHardKind::Band);
  if (spec == "easy") return make_easy_miner();
  if (spec == "hard") return make_hard_miner();
  if (spec.rfind("window:", 0) == 0) {
    const std::string rest = spec.substr(7);
    const size_t colon = rest.find(':');
    float lo = NAN, hi = NAN;
    try {
      if (colon != std::string::npos) {
        size_t u1 = 0, u2 = 0;
        lo = std::stof(rest.substr(0, colon), &u1);
        hi = std::stof(rest.substr(colon + 1), &u2);
        if (u1 != colon || u2 != rest.size() - colon - 1) lo = hi = NAN;
      }
    } catch (...) {
      lo = hi = NAN;
    }
    TRINE_CHECK_AS(UsageError, !std::isnan(lo) && !std::isnan(hi), "miner '", spec,
                   "': expected window:LO:HI with numbers (inf allowed)");
    return std::make_shared<HardnessWindowMiner>(lo, hi);
  }
  throw UsageError("unknown miner '" + spec +
                   "': expected none, batch-all, batch-hard, semi-hard:facenet, semi-hard:tfa, "
                   "semi-hard:band, easy, hard or window:LO:HI");
}

}  // namespace trine
