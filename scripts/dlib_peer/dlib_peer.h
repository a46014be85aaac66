// What the dlib peers (dlib_w1.cpp, dlib_w2.cpp) share: the batch-hard triplet loss as a dlib
// loss layer, their flags, the BLAS set-up, P x K batches and the peak memory figure.
#pragma once

#include <dlfcn.h>
#include <sys/resource.h>

#include <algorithm>
#include <cmath>
#include <iostream>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include <dlib/dnn.h>

namespace dlib_peer {

// Batch-hard triplet loss (Hermans et al. 2017) as a dlib loss layer: for every anchor a, its
// farthest positive p and nearest negative n in the batch (Euclidean distance of the network's
// outputs), loss = mean over anchors of max(0, d(a, p) - d(a, n) + margin). The gradient of a
// distance at 0 is taken as 0, as PyTorch's cdist does.
class loss_batch_hard_ {
 public:
  typedef unsigned long training_label_type;
  typedef dlib::matrix<float, 0, 1> output_label_type;

  explicit loss_batch_hard_(float margin = 0.2f) : margin_(margin) {}

  template <typename SUB_TYPE, typename label_iterator>
  void to_label(const dlib::tensor&, const SUB_TYPE& sub, label_iterator iter) const {
    const dlib::tensor& out = sub.get_output();
    const float* p = out.host();
    for (long i = 0; i < out.num_samples(); ++i, p += out.k()) *iter++ = dlib::mat(p, out.k(), 1);
  }

  template <typename const_label_iterator, typename SUBNET>
  double compute_loss_value_and_gradient(const dlib::tensor&, const_label_iterator truth,
                                         SUBNET& sub) const {
    const dlib::tensor& out = sub.get_output();
    dlib::tensor& grad = sub.get_gradient_input();
    const long B = out.num_samples(), D = out.k() * out.nr() * out.nc();
    const float* e = out.host();
    float* g = grad.host();
    std::fill(g, g + B * D, 0.f);
    auto dist = [&](long i, long j) {
      double s = 0;
      for (long k = 0; k < D; ++k)
        s += double(e[i * D + k] - e[j * D + k]) * (e[i * D + k] - e[j * D + k]);
      return std::sqrt(s);
    };
    // g_i += sign * (e_i - e_j) / d(i, j) * scale, and the opposite to g_j.
    auto add_pair = [&](long i, long j, double d, double scale) {
      if (d <= 0) return;
      for (long k = 0; k < D; ++k) {
        const float v = static_cast<float>((e[i * D + k] - e[j * D + k]) / d * scale);
        g[i * D + k] += v;
        g[j * D + k] -= v;
      }
    };
    double loss = 0;
    for (long a = 0; a < B; ++a) {
      long p = -1, n = -1;
      double dp = 0, dn = 0;
      for (long j = 0; j < B; ++j) {
        if (j == a) continue;
        const double d = dist(a, j);
        if (truth[j] == truth[a]) {
          if (p < 0 || d > dp) p = j, dp = d;
        } else if (n < 0 || d < dn) {
          n = j, dn = d;
        }
      }
      if (p < 0 || n < 0) throw std::runtime_error("a batch needs a positive and a negative");
      const double l = dp - dn + margin_;
      if (l <= 0) continue;
      loss += l / B;
      add_pair(a, p, dp, 1.0 / B);
      add_pair(a, n, dn, -1.0 / B);
    }
    return loss;
  }

  friend void serialize(const loss_batch_hard_& item, std::ostream& out) {
    dlib::serialize("loss_batch_hard_", out);
    dlib::serialize(item.margin_, out);
  }
  friend void deserialize(loss_batch_hard_& item, std::istream& in) {
    std::string version;
    dlib::deserialize(version, in);
    if (version != "loss_batch_hard_")
      throw dlib::serialization_error("expected loss_batch_hard_, found " + version);
    dlib::deserialize(item.margin_, in);
  }
  friend std::ostream& operator<<(std::ostream& out, const loss_batch_hard_& item) {
    return out << "loss_batch_hard (margin=" << item.margin_ << ")";
  }
  friend void to_xml(const loss_batch_hard_& item, std::ostream& out) {
    out << "<loss_batch_hard margin='" << item.margin_ << "'/>";
  }

 private:
  float margin_;
};

template <typename SUBNET>
using loss_batch_hard = dlib::add_loss_layer<loss_batch_hard_, SUBNET>;

// Checks loss_batch_hard_ on 12 random 5-d points of 3 classes (margin 0.5, so that most anchors
// are active) against a brute-force nested loop (the loss) and central differences (its
// gradient). Prints what it found; true when both agree. `--self-check` runs it.
inline bool self_check() {
  struct Sub {  // what the loss reads from the net: its output, and where the gradient goes
    dlib::resizable_tensor out, grad;
    const dlib::tensor& get_output() const { return out; }
    dlib::tensor& get_gradient_input() { return grad; }
  } sub;
  const long B = 12, D = 5;
  sub.out.set_size(B, D), sub.grad.set_size(B, D);
  dlib::tt::tensor_rand(1).fill_gaussian(sub.out);
  std::vector<unsigned long> labels(B);
  for (long i = 0; i < B; ++i) labels[i] = i % 3;
  const loss_batch_hard_ loss(0.5f);
  const dlib::resizable_tensor unused;
  const double value = loss.compute_loss_value_and_gradient(unused, labels.begin(), sub);
  const std::vector<float> grad(sub.grad.host(), sub.grad.host() + B * D);
  float* e = sub.out.host();
  double reference = 0, worst = 0;
  for (long a = 0; a < B; ++a) {
    double pos = 0, neg = INFINITY;
    for (long j = 0; j < B; ++j) {
      if (j == a) continue;
      double s = 0;
      for (long k = 0; k < D; ++k)
        s += double(e[a * D + k] - e[j * D + k]) * (e[a * D + k] - e[j * D + k]);
      if (labels[j] == labels[a])
        pos = std::max(pos, std::sqrt(s));
      else
        neg = std::min(neg, std::sqrt(s));
    }
    reference += std::max(0.0, pos - neg + 0.5) / B;
  }
  for (long i = 0; i < B * D; ++i) {
    const float v = e[i];
    e[i] = v + 1e-3f;
    const double plus = loss.compute_loss_value_and_gradient(unused, labels.begin(), sub);
    e[i] = v - 1e-3f;
    const double minus = loss.compute_loss_value_and_gradient(unused, labels.begin(), sub);
    e[i] = v;
    worst = std::max(worst, std::abs((plus - minus) / 2e-3 - grad[i]));
  }
  std::cerr << "[dlib] loss self-check: loss " << value << ", nested loops " << reference
            << ", largest gradient difference " << worst << "\n";
  return std::abs(value - reference) < 1e-5 && worst < 1e-3;
}

// The value of `--name N` (a whole number), or `fallback`.
inline long flag(int argc, char** argv, const std::string& name, long fallback) {
  for (int i = 1; i + 1 < argc; ++i)
    if (argv[i] == name) return std::stol(argv[i + 1]);
  return fallback;
}

// The value of `--name TEXT`, or `fallback`.
inline std::string text_flag(int argc, char** argv, const std::string& name,
                             const std::string& fallback) {
  for (int i = 1; i + 1 < argc; ++i)
    if (argv[i] == name) return argv[i + 1];
  return fallback;
}

// OpenBLAS, where it is the BLAS Debian links: sets its threads and says which kernel it runs.
inline void set_up_blas(long threads) {
  if (auto set = reinterpret_cast<void (*)(int)>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads")))
    set(static_cast<int>(threads));
  if (auto core = reinterpret_cast<char* (*)()>(dlsym(RTLD_DEFAULT, "openblas_get_corename")))
    std::cerr << "[dlib] BLAS: OpenBLAS, kernel " << core() << ", " << threads << " threads\n";
}

// The flags both peers take: --steps (0: all epochs), --epochs, --threads, --seed. Sets
// OpenBLAS to the thread count.
struct RunFlags {
  long steps, epochs, threads, seed;
};
inline RunFlags run_flags(int argc, char** argv, long default_epochs) {
  const RunFlags f{flag(argc, argv, "--steps", 0), flag(argc, argv, "--epochs", default_epochs),
                   flag(argc, argv, "--threads", 2), flag(argc, argv, "--seed", 0)};
  set_up_blas(f.threads);
  return f;
}

// One P x K batch, as item indices: `classes` (all class ids) shuffled, then K items of each of
// the first P classes, drawn without replacement, or with it for a class holding fewer than K.
inline std::vector<long> pk_batch(const std::vector<std::vector<long>>& by_class,
                                  std::vector<long>& classes, long P, long K,
                                  std::mt19937_64& rng) {
  std::vector<long> idx;
  std::shuffle(classes.begin(), classes.end(), rng);
  for (long c = 0; c < P; ++c) {
    std::vector<long> pool = by_class[classes[c]];
    if (long(pool.size()) >= K) {
      std::shuffle(pool.begin(), pool.end(), rng);
      idx.insert(idx.end(), pool.begin(), pool.begin() + K);
    } else {
      std::uniform_int_distribution<size_t> pick(0, pool.size() - 1);
      for (long k = 0; k < K; ++k) idx.push_back(pool[pick(rng)]);
    }
  }
  return idx;
}

// The process's peak resident memory so far, in MB.
inline double peak_rss_mb() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss / 1024.0;
}

}  // namespace dlib_peer
