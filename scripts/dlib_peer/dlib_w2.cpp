// Workload W2 'lfw-verify' in dlib's C++ DNN (Debian's libdlib-dev, 19.24, CPU): trine's second
// peer, as ../shared/peers/torch_lfw.py is its first. `scripts/bench.sh w2 --peer dlib` builds
// and runs it beside `trine bench w2`.
//
//   dlib_w2 [--faces DIR] [--steps N] [--epochs N] [--threads N] [--seed N]
//   dlib_w2 --self-check   checks the loss against nested loops and central differences
//
// The workload is the PyTorch peer's, part for part (docs/benchmarks.md, "trine beside dlib"):
// - data: DIR/lfw/<identity>/<identity>_NNNN.jpg and DIR/pairs.txt (LFW View 2, 10 folds); test =
//   fold 1, train = every identity with at least 2 images that is in no fold-1 pair. Each JPEG is
//   decoded once and resized to 64 x 64 with a triangle filter widened by the scale (as Pillow's
//   BILINEAR, which the peer uses); random horizontal flips in training;
// - net: FaceNetS, [con 3x3 pad 1, bn_con, relu] x 16, 16 | max_pool 2 | 32, 32 | max_pool 2 |
//   64, 64 | max_pool 2 | 128 | avg_pool_everything | fc 128 | l2normalize; dlib's own
//   initialization. Input: dlib's input_rgb_image, (x - 127.5) / 256 per channel, half the
//   peer's (x/255 - 0.5)/0.5, which the batch norm after the first convolution cancels. Batch norm:
//   dlib's bn_con (epsilon 1e-4), running statistics with weight 1/10 per step as the peer's
//   momentum 0.1; evaluation runs the affine net dlib derives from the trained one;
// - batches: P x K = 32 identities x 4 images, the identities without replacement, an identity's
//   images without replacement when it has at least 4 (64 steps an epoch);
// - loss: batch-hard triplet, Euclidean, margin 0.2, mean over anchors (dlib_peer.h); dlib's adam
//   (weight decay 0, beta 0.9 and 0.999), learning rate 1e-3;
// - evaluation: the embedding of an image is the normalized sum of its and its mirror's (500
//   images a batch); fold1_accuracy with the threshold that is best on folds 2-10, fold1_auc,
//   fold1_tar_at_far_1e-2 (at most 3 of fold 1's 300 negatives accepted), fold1_oracle_accuracy.
// Prints the peer's figure names: train_img_per_s (batch assembly with the flips, forward,
// backward and update; not the decoding), embed_img_per_s (each mirrored pass an image), the fold-1
// figures and peak_rss_mb.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <numeric>
#include <random>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <dlib/dnn.h>
#include <dlib/image_io.h>
#include <dlib/image_transforms.h>

#include "dlib_peer.h"

namespace {

using Image = dlib::matrix<dlib::rgb_pixel>;

template <template <typename> class BN, long N, typename SUBNET>
using cbr = dlib::relu<BN<dlib::con<N, 3, 3, 1, 1, SUBNET>>>;
template <typename SUBNET>
using max_pool2 = dlib::max_pool<2, 2, 2, 2, SUBNET>;

// FaceNetS with batch norm BN: bn_con to train, affine to evaluate.
template <template <typename> class BN>
using FaceNetS = dlib_peer::loss_batch_hard<dlib::l2normalize<dlib::fc<
    128, dlib::avg_pool_everything<cbr<
             BN, 128,
             max_pool2<cbr<
                 BN, 64,
                 cbr<BN, 64,
                     max_pool2<cbr<
                         BN, 32,
                         cbr<BN, 32,
                             max_pool2<cbr<BN, 16, cbr<BN, 16, dlib::input_rgb_image>>>>>>>>>>>>>>;
using TrainNet = FaceNetS<dlib::bn_con>;
using TestNet = FaceNetS<dlib::affine>;

// ------------------------------------------------------------------ data

// The weights [out][in] of a triangle filter from `in` samples to `out` (a dense matrix: small
// images only), its support widened by the scale when shrinking (Pillow's BILINEAR), centres at
// half pixels. Computed once per pair of sizes.
const std::vector<std::vector<double>>& triangle_weights(long in, long out) {
  static std::map<std::pair<long, long>, std::vector<std::vector<double>>> cache;
  auto [it, fresh] = cache.try_emplace({in, out});
  if (!fresh) return it->second;
  const double scale = double(in) / out, support = std::max(1.0, scale);
  auto& w = it->second;
  w.assign(out, std::vector<double>(in, 0.0));
  for (long o = 0; o < out; ++o) {
    const double centre = (o + 0.5) * scale;
    double total = 0;
    for (long i = std::max(0L, long(centre - support));
         i < std::min(in, long(centre + support) + 1); ++i) {
      const double v = std::max(0.0, 1.0 - std::abs((i + 0.5 - centre) / support));
      w[o][i] = v, total += v;
    }
    for (double& v : w[o]) v /= total;
  }
  return w;
}

// src resized to size x size by triangle_weights along each axis; rounded to 8 bits.
Image resize_triangle(const Image& src, long size) {
  const auto &wy = triangle_weights(src.nr(), size), &wx = triangle_weights(src.nc(), size);
  std::vector<double> rows(size * src.nc() * 3, 0.0);  // vertical pass: [size, nc, 3]
  for (long o = 0; o < size; ++o)
    for (long y = 0; y < src.nr(); ++y)
      if (const double w = wy[o][y]; w != 0)
        for (long x = 0; x < src.nc(); ++x) {
          const dlib::rgb_pixel p = src(y, x);
          double* r = &rows[(o * src.nc() + x) * 3];
          r[0] += w * p.red, r[1] += w * p.green, r[2] += w * p.blue;
        }
  Image out(size, size);
  auto to8 = [](double v) {
    return static_cast<unsigned char>(std::clamp(std::lround(v), 0L, 255L));
  };
  for (long y = 0; y < size; ++y)
    for (long o = 0; o < size; ++o) {
      double c[3] = {0, 0, 0};
      for (long x = 0; x < src.nc(); ++x)
        if (const double w = wx[o][x]; w != 0)
          for (int k = 0; k < 3; ++k) c[k] += w * rows[(y * src.nc() + x) * 3 + k];
      out(y, o) = dlib::rgb_pixel(to8(c[0]), to8(c[1]), to8(c[2]));
    }
  return out;
}

Image load_face(const std::string& path) {
  Image im;
  dlib::load_image(im, path);
  return resize_triangle(im, 64);
}

struct Pair {
  std::string name1, name2;
  int i1, i2;
  bool same;
};

// pairs.txt: "FOLDS N", then per fold N same-identity lines "name i j" and N others "a i b j".
std::vector<std::vector<Pair>> read_pairs(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open " + path);
  int folds = 0, n = 0;
  in >> folds >> n;
  std::vector<std::vector<Pair>> out(folds);
  for (int f = 0; f < folds; ++f)
    for (int j = 0; j < 2 * n; ++j) {
      Pair p;
      p.same = j < n;
      if (p.same)
        in >> p.name1 >> p.i1 >> p.i2, p.name2 = p.name1;
      else
        in >> p.name1 >> p.i1 >> p.name2 >> p.i2;
      if (!in) throw std::runtime_error(path + ": fold " + std::to_string(f + 1) + " is short");
      out[f].push_back(p);
    }
  return out;
}

std::string face_path(const std::string& root, const std::string& name, int i) {
  char num[16];
  std::snprintf(num, sizeof num, "_%04d.jpg", i);
  return root + "/" + name + "/" + name + num;
}

// ------------------------------------------------------------------ evaluation

// Accuracy of "same iff d < t" at the best threshold t (between distinct sorted distances).
double best_threshold(const std::vector<double>& d, const std::vector<bool>& same, double* acc) {
  std::vector<size_t> o(d.size());
  std::iota(o.begin(), o.end(), size_t{0});
  std::stable_sort(o.begin(), o.end(), [&](size_t a, size_t b) { return d[a] < d[b]; });
  const double negatives = std::count(same.begin(), same.end(), false);
  double tp = 0, fp = 0, best = -1, t = d[o[0]] - 1e-6;
  for (size_t k = 0; k <= o.size(); ++k) {  // the first k sorted pairs called "same"
    if (k > 0) (same[o[k - 1]] ? tp : fp) += 1;
    const bool valid = k == 0 || k == o.size() || d[o[k]] > d[o[k - 1]];
    const double a = (tp + negatives - fp) / d.size();
    if (valid && a > best) {
      best = a;
      t = k == 0          ? d[o[0]] - 1e-6
          : k == o.size() ? d[o.back()] + 1e-6
                          : 0.5 * (d[o[k - 1]] + d[o[k]]);
    }
  }
  *acc = best;
  return t;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 2 && std::string(argv[1]) == "--self-check") return dlib_peer::self_check() ? 0 : 1;
  try {
    const std::string faces = dlib_peer::text_flag(argc, argv, "--faces", "../shared/data/faces");
    const auto [steps, epochs, threads, seed] = dlib_peer::run_flags(argc, argv, 20);

    // ---- splits and decoding
    const std::string root = faces + "/lfw";
    const auto folds = read_pairs(faces + "/pairs.txt");
    std::set<std::string> fold1_ids;
    for (const Pair& p : folds.at(0)) fold1_ids.insert(p.name1), fold1_ids.insert(p.name2);
    std::vector<std::string> ids;
    for (const auto& e : std::filesystem::directory_iterator(root))
      if (e.is_directory()) ids.push_back(e.path().filename().string());
    std::sort(ids.begin(), ids.end());
    const auto t_decode0 = std::chrono::steady_clock::now();
    std::vector<Image> train;
    std::vector<unsigned long> labels;
    std::vector<std::vector<long>> by_class;
    for (const std::string& id : ids) {
      std::vector<std::string> files;
      for (const auto& e : std::filesystem::directory_iterator(root + "/" + id))
        if (e.path().extension() == ".jpg") files.push_back(e.path().string());
      if (files.size() < 2 || fold1_ids.count(id)) continue;
      std::sort(files.begin(), files.end());
      by_class.emplace_back();
      for (const std::string& f : files) {
        by_class.back().push_back(long(train.size()));
        train.push_back(load_face(f));
        labels.push_back(by_class.size() - 1);
      }
    }
    std::map<std::pair<std::string, int>, long> pair_index;
    for (const auto& fold : folds)
      for (const Pair& p : fold) pair_index[{p.name1, p.i1}] = 0, pair_index[{p.name2, p.i2}] = 0;
    std::vector<Image> pair_images;
    for (auto& [key, index] : pair_index) {
      index = long(pair_images.size());
      pair_images.push_back(load_face(face_path(root, key.first, key.second)));
    }
    std::cerr << "[dlib] train identities " << by_class.size() << ", train images " << train.size()
              << ", unique pair images " << pair_images.size() << "; decoded in "
              << std::chrono::duration<double>(std::chrono::steady_clock::now() - t_decode0).count()
              << " s\n";

    // ---- training
    TrainNet net;
    net.input_layer() = dlib::input_rgb_image(127.5f, 127.5f, 127.5f);
    dlib::set_all_bn_running_stats_window_sizes(net, 9);  // weight 1/(9 + 1) per step
    std::vector<dlib::adam> solvers(TrainNet::num_computational_layers, dlib::adam(0, 0.9, 0.999));
    std::mt19937_64 rng(seed);
    const long P = 32, K = 4, per_epoch = long(train.size()) / (P * K);
    std::vector<long> classes(by_class.size());
    std::iota(classes.begin(), classes.end(), 0L);
    std::vector<Image> batch;
    std::vector<unsigned long> batch_labels;
    dlib::resizable_tensor x;
    double t_train = 0;
    long step = 0, images = 0;
    for (long ep = 0; ep < epochs && (!steps || step < steps); ++ep)
      for (long s = 0; s < per_epoch && (!steps || step < steps); ++s) {
        const std::vector<long> idx = dlib_peer::pk_batch(by_class, classes, P, K, rng);
        std::vector<bool> flip(idx.size());
        for (size_t i = 0; i < idx.size(); ++i)
          flip[i] = std::uniform_real_distribution<>()(rng) < 0.5;
        const auto t0 = std::chrono::steady_clock::now();
        batch.clear(), batch_labels.clear();
        for (size_t i = 0; i < idx.size(); ++i) {
          if (flip[i])
            batch.push_back(dlib::fliplr(train[idx[i]]));
          else
            batch.push_back(train[idx[i]]);
          batch_labels.push_back(labels[idx[i]]);
        }
        net.to_tensor(batch.begin(), batch.end(), x);
        const double loss = net.compute_parameter_gradients(x, batch_labels.begin());
        net.update_parameters(dlib::make_sstack(solvers), 1e-3);
        t_train += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        images += long(idx.size());
        if (++step % 50 == 0) std::cerr << "step " << step << " loss " << loss << "\n";
      }

    // ---- evaluation: normalize(f(x) + f(mirror x))
    TestNet test_net = net;
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<std::vector<float>> E(pair_images.size());
    for (size_t i = 0; i < pair_images.size(); i += 500) {
      const size_t end = std::min(pair_images.size(), i + 500);
      std::vector<Image> part(pair_images.begin() + i, pair_images.begin() + end), mirrored;
      for (const Image& im : part) mirrored.push_back(dlib::fliplr(im));
      test_net.to_tensor(part.begin(), part.end(), x);
      const dlib::tensor& y = test_net.subnet().forward(x);
      const long D = y.k();
      std::vector<float> sum(y.host(), y.host() + (end - i) * D);
      test_net.to_tensor(mirrored.begin(), mirrored.end(), x);
      const dlib::tensor& ym = test_net.subnet().forward(x);
      for (size_t j = 0; j < sum.size(); ++j) sum[j] += ym.host()[j];
      for (size_t n = i; n < end; ++n) {
        const float* e = sum.data() + (n - i) * D;
        double norm = 0;
        for (long k = 0; k < D; ++k) norm += double(e[k]) * e[k];
        norm = std::max(std::sqrt(norm), 1e-12);
        for (long k = 0; k < D; ++k) E[n].push_back(float(e[k] / norm));
      }
    }
    const double t_embed =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

    auto distances = [&](const std::vector<Pair>& fold, std::vector<double>& d,
                         std::vector<bool>& s) {
      for (const Pair& p : fold) {
        const auto& a = E[pair_index.at({p.name1, p.i1})];
        const auto& b = E[pair_index.at({p.name2, p.i2})];
        double sq = 0;
        for (size_t k = 0; k < a.size(); ++k) sq += double(a[k] - b[k]) * (a[k] - b[k]);
        d.push_back(std::sqrt(sq)), s.push_back(p.same);
      }
    };
    std::vector<double> d1, drest;
    std::vector<bool> s1, srest;
    distances(folds[0], d1, s1);
    for (size_t f = 1; f < folds.size(); ++f) distances(folds[f], drest, srest);
    double acc_rest, acc_oracle;
    const double t = best_threshold(drest, srest, &acc_rest);
    best_threshold(d1, s1, &acc_oracle);
    double correct = 0, auc = 0, pos = 0, neg = 0;
    std::vector<double> dneg;
    for (size_t i = 0; i < d1.size(); ++i) {
      correct += (d1[i] < t) == s1[i];
      (s1[i] ? pos : neg) += 1;
      if (!s1[i]) dneg.push_back(d1[i]);
    }
    for (size_t i = 0; i < d1.size(); ++i)  // AUC: P(d same < d different), ties counting half
      if (s1[i])
        for (size_t j = 0; j < d1.size(); ++j)
          if (!s1[j]) auc += d1[i] < d1[j] ? 1.0 : d1[i] == d1[j] ? 0.5 : 0.0;
    std::sort(dneg.begin(), dneg.end());
    const size_t false_accepts = size_t(std::floor(1e-2 * dneg.size() + 1e-9));
    const double t_far = false_accepts < dneg.size() ? dneg[false_accepts] : INFINITY;
    double tar = 0;
    for (size_t i = 0; i < d1.size(); ++i) tar += s1[i] && d1[i] < t_far;

    std::printf("train_img_per_s %.1f\n", images / t_train);
    std::printf("embed_img_per_s %.1f\n", 2 * pair_images.size() / t_embed);
    std::printf("fold1_accuracy %.4f\n", correct / d1.size());
    std::printf("fold1_auc %.4f\n", auc / (pos * neg));
    std::printf("fold1_tar_at_far_1e-2 %.4f\n", tar / pos);
    std::printf("fold1_oracle_accuracy %.4f\n", acc_oracle);
    std::printf("train_steps %ld\n", step);
    std::printf("peak_rss_mb %.1f\n", dlib_peer::peak_rss_mb());
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "dlib_w2: " << e.what() << "\n";
    return 1;
  }
}
