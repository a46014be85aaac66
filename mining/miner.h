// Online miners: each reads a batch's distance matrix D [B, B] and labels [B] and says which
// triplets (a, p, n) the loss is taken over. A valid triplet has label(p) == label(a), p != a and
// label(n) != label(a). Miners never compute distances and never build a B^3 list: they return
// either index sets (at most B x B entries) or a window on the hardness m = d(a,n) - d(a,p) that
// the loss evaluates in one fused loop over D.
//
// What each miner yields (the triplets `mean` averages over); ties resolve to the lowest index:
//   batch-all        every valid triplet (Hermans et al. 2017, "batch all")
//   batch-hard       per anchor with a positive and a negative: its farthest positive and its
//                    closest negative (Hermans et al. 2017, "batch hard")
//   semi-hard:facenet per anchor-positive pair: the closest negative with
//                    d(a,p) < d(a,n) < d(a,p) + margin; pairs without one are dropped
//                    (Schroff et al. 2015, FaceNet, section 3.2)
//   semi-hard:tfa    per anchor-positive pair: the closest negative farther than the positive,
//                    or the farthest negative when none is (TensorFlow Addons
//                    triplet_semihard_loss)
//   semi-hard:band   every valid triplet with d(a,p) < d(a,n) < d(a,p) + margin
//   easy             every valid triplet with m >= 0: the negative is not closer than the
//                    positive (the easy half of the hardness scale; with a hinge only those with
//                    m < margin contribute)
//   hard             every valid triplet with m < 0: the negative is closer than the positive
//   window:LO:HI     every valid triplet with LO <= m <= HI
#pragma once

#include <memory>
#include <string>

#include "engine/backend.h"
#include "engine/tensor.h"

namespace trine {

// Explicit triplets as R anchor rows with C candidates each: triplet (r, c) is
// (anchor[r], positive[r, c], negative[r, c]), counted when valid[r, c] == 1. Index tensors are
// int32 and always in range (invalid entries hold 0), so gathers never need a host round trip.
struct MinedTriplets {
  Tensor anchor;  // I32 [R]; undefined means 0..B-1 (one row per batch element)
  Tensor
      positive;  // I32 [R, C]; undefined means positive[r, c] = c (one candidate per pair, C = B)
  Tensor negative;  // I32 [R, C]
  Tensor valid;     // F32 [R, C], 1 or 0
};

// A triplet set given by a window on m = d(a,n) - d(a,p), for Backend::triplet_set_loss.
struct TripletWindow {
  float lo, hi;
  bool lo_inclusive, hi_inclusive;
};

struct MinerOutput {
  enum class Kind { Triplets, Window } kind;
  MinedTriplets triplets;  // Kind::Triplets
  TripletWindow window;    // Kind::Window
};

class Miner {
 public:
  virtual ~Miner() = default;
  // D: [B, B] distances (read only, not differentiated); labels: I32 [B] on D's device;
  // margin: the loss's margin (used by the semi-hard definitions).
  virtual MinerOutput mine(const Tensor& D, const Tensor& labels, float margin) const = 0;
  // The spec string parse_miner() accepts.
  virtual std::string name() const = 0;
};

class BatchAllMiner : public Miner {
 public:
  MinerOutput mine(const Tensor& D, const Tensor& labels, float margin) const override;
  std::string name() const override { return "batch-all"; }
};

class BatchHardMiner : public Miner {
 public:
  MinerOutput mine(const Tensor& D, const Tensor& labels, float margin) const override;
  std::string name() const override { return "batch-hard"; }
};

enum class SemiHardKind { Facenet, Tfa, Band };

class SemiHardMiner : public Miner {
 public:
  explicit SemiHardMiner(SemiHardKind kind = SemiHardKind::Facenet) : kind_(kind) {}
  MinerOutput mine(const Tensor& D, const Tensor& labels, float margin) const override;
  std::string name() const override;

 private:
  SemiHardKind kind_;
};

// Every valid triplet with lo <= m <= hi (each bound inclusive or not); m = d(a,n) - d(a,p).
class HardnessWindowMiner : public Miner {
 public:
  HardnessWindowMiner(float lo, float hi, bool lo_inclusive = true, bool hi_inclusive = true,
                      std::string name = "");
  MinerOutput mine(const Tensor& D, const Tensor& labels, float margin) const override;
  std::string name() const override;

 private:
  TripletWindow w_;
  std::string name_;
};

// m >= 0 (see the table above).
std::shared_ptr<Miner> make_easy_miner();
// m < 0.
std::shared_ptr<Miner> make_hard_miner();

// Parses none (= batch-all: every valid triplet), batch-all, batch-hard, semi-hard:facenet,
// semi-hard:tfa, semi-hard:band, easy, hard, window:LO:HI. Throws UsageError otherwise.
std::shared_ptr<Miner> parse_miner(const std::string& spec);

}  // namespace trine
