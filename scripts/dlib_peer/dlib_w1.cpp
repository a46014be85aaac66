// Workload W1 'mnist-embed' in dlib's C++ DNN (Debian's libdlib-dev, 19.24, CPU): trine's second
// peer, as ../shared/peers/torch_mnist.py is its first. `scripts/bench.sh w1 --peer dlib` builds
// and runs it beside `trine bench w1`.
//
//   dlib_w1 --data DIR [--steps N] [--epochs N] [--threads N] [--seed N]
//   dlib_w1 --self-check   checks the loss against nested loops and central differences
//
// The workload is the PyTorch peer's, part for part (docs/benchmarks.md, "trine beside dlib"):
// - data: MNIST's four IDX files (gzipped or not), pixels (x/255 - 0.1307)/0.3081;
// - net: con 5x5 1->32 pad 2, relu, max_pool 2 . con 5x5 32->64 pad 2, relu, max_pool 2 .
//   fc 3136->256, relu . fc 256->64 . l2normalize (dlib pads a stride-1 5x5 con by 2 and a
//   stride-2 max_pool by 0 by default); dlib's own initialization;
// - batches: P x K = 8 classes x 16 images, the P classes drawn without replacement, the K
//   images of a class without replacement (468 steps an epoch);
// - loss: batch-hard triplet, Euclidean (not squared) distance, margin 0.2, mean over anchors.
//   dlib has no triplet loss (its loss_metric is a pairwise loss around a distance threshold),
//   so dlib_peer.h has one, written as dlib's own losses are;
// - optimizer: dlib's adam (weight decay 0, beta 0.9 and 0.999), learning rate 1e-3;
// - evaluation: embed the test and train sets 1000 images at a time; Precision@1 and MAP@R,
//   leave-one-out, on test; 1-NN accuracy of the test images with the train set as gallery.
// Prints the peer's figure names: train_img_per_s (batch assembly, forward, backward and update),
// embed_img_per_s, the three accuracy figures and peak_rss_mb.
//
// dlib's CPU layers run on one thread except its matrix products, which go to the BLAS Debian
// links (OpenBLAS, whose kernel OPENBLAS_CORETYPE sets); --threads sets OpenBLAS's threads.
#include <zlib.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <numeric>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include <dlib/dnn.h>

#include "dlib_peer.h"

namespace {

using Net = dlib_peer::loss_batch_hard<dlib::l2normalize<dlib::fc<
    64,
    dlib::relu<dlib::fc<
        256, dlib::max_pool<
                 2, 2, 2, 2,
                 dlib::relu<dlib::con<
                     64, 5, 5, 1, 1,
                     dlib::max_pool<2, 2, 2, 2,
                                    dlib::relu<dlib::con<
                                        32, 5, 5, 1, 1, dlib::input<dlib::matrix<float>>>>>>>>>>>>>;

// ------------------------------------------------------------------ data

struct Split {
  std::vector<dlib::matrix<float>> images;
  std::vector<unsigned long> labels;
};

// An IDX file (gzipped or not: zlib reads both) as bytes, its magic and dimensions checked.
std::vector<uint8_t> read_idx(const std::string& path, int dims, std::vector<uint32_t>& shape) {
  gzFile f = gzopen(path.c_str(), "rb");
  if (!f) throw std::runtime_error("cannot open " + path);
  std::vector<uint8_t> bytes;
  uint8_t buf[1 << 16];
  int n;
  while ((n = gzread(f, buf, sizeof buf)) > 0) bytes.insert(bytes.end(), buf, buf + n);
  gzclose(f);
  if (n < 0 || bytes.size() < size_t(4 + 4 * dims) || bytes[2] != 0x08 || bytes[3] != dims)
    throw std::runtime_error(path + ": not an IDX file of unsigned bytes with " +
                             std::to_string(dims) + " dimensions");
  shape.clear();
  size_t count = 1;
  for (int d = 0; d < dims; ++d) {
    const uint8_t* p = bytes.data() + 4 + 4 * d;
    shape.push_back(uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | p[3]);
    count *= shape.back();
  }
  if (bytes.size() != 4 + 4 * dims + count)
    throw std::runtime_error(path + ": " + std::to_string(bytes.size()) + " bytes, expected " +
                             std::to_string(4 + 4 * dims + count));
  return std::vector<uint8_t>(bytes.begin() + 4 + 4 * dims, bytes.end());
}

std::string find_file(const std::string& dir, const std::string& name) {
  for (const std::string& p : {dir + "/" + name + ".gz", dir + "/" + name})
    if (FILE* f = std::fopen(p.c_str(), "rb")) {
      std::fclose(f);
      return p;
    }
  throw std::runtime_error("no " + name + "(.gz) in " + dir);
}

Split load_split(const std::string& dir, const std::string& prefix) {
  std::vector<uint32_t> is, ls;
  const auto pixels = read_idx(find_file(dir, prefix + "-images-idx3-ubyte"), 3, is);
  const auto labels = read_idx(find_file(dir, prefix + "-labels-idx1-ubyte"), 1, ls);
  if (is[0] != ls[0]) throw std::runtime_error(dir + ": image and label counts differ");
  Split s;
  const long h = is[1], w = is[2];
  for (uint32_t i = 0; i < is[0]; ++i) {
    dlib::matrix<float> m(h, w);
    for (long y = 0; y < h; ++y)
      for (long x = 0; x < w; ++x)
        m(y, x) = (pixels[(size_t(i) * h + y) * w + x] / 255.f - 0.1307f) / 0.3081f;
    s.images.push_back(std::move(m));
    s.labels.push_back(labels[i]);
  }
  return s;
}

// ------------------------------------------------------------------ evaluation

// The embeddings of `images`, `batch` at a time: [n, D] row-major.
dlib::matrix<float> embed(Net& net, const std::vector<dlib::matrix<float>>& images, long batch) {
  dlib::matrix<float> out;
  dlib::resizable_tensor x;
  for (size_t i = 0; i < images.size(); i += batch) {
    const size_t end = std::min(images.size(), i + batch);
    net.to_tensor(images.begin() + i, images.begin() + end, x);
    const dlib::tensor& y = net.subnet().forward(x);
    const long D = y.k() * y.nr() * y.nc();
    if (out.size() == 0) out.set_size(images.size(), D);
    std::copy(y.host(), y.host() + (end - i) * D, &out(i, 0));
  }
  return out;
}

struct Retrieval {
  double p1, map_at_r;
};

// Queries q against gallery g by Euclidean distance, 1000 queries at a time (the distance block
// by dlib's BLAS product). Leave-one-out when `loo` (q is g): a query never finds itself.
Retrieval retrieve(const dlib::matrix<float>& q, const std::vector<unsigned long>& ql,
                   const dlib::matrix<float>& g, const std::vector<unsigned long>& gl, bool loo) {
  const long nq = q.nr(), ng = g.nr();
  std::vector<long> count(*std::max_element(gl.begin(), gl.end()) + 1, 0);
  for (auto l : gl) ++count[l];
  const dlib::matrix<float, 0, 1> gn = dlib::sum_cols(dlib::squared(g));
  double hits1 = 0, map_sum = 0;
  std::vector<float> d(ng);
  std::vector<long> order(ng);
  for (long q0 = 0; q0 < nq; q0 += 1000) {
    const long qn = std::min(1000L, nq - q0);
    const dlib::matrix<float> block = dlib::rowm(q, dlib::range(q0, q0 + qn - 1));
    const dlib::matrix<float> dots = block * dlib::trans(g);
    for (long i = 0; i < qn; ++i) {
      const long qi = q0 + i;
      const float qq = dlib::sum(dlib::squared(dlib::rowm(block, i)));
      for (long j = 0; j < ng; ++j) d[j] = std::max(0.f, qq + gn(j) - 2 * dots(i, j));
      if (loo) d[qi] = INFINITY;
      const long R = count[ql[qi]] - (loo ? 1 : 0);
      const long top = std::max(1L, std::min(R, ng));
      std::iota(order.begin(), order.end(), 0L);
      std::partial_sort(order.begin(), order.begin() + top, order.end(),
                        [&](long a, long b) { return d[a] < d[b]; });
      hits1 += gl[order[0]] == ql[qi];
      double ap = 0, hits = 0;
      for (long r = 0; r < top; ++r)
        if (gl[order[r]] == ql[qi]) hits += 1, ap += hits / (r + 1);
      map_sum += R > 0 ? ap / R : 0;
    }
  }
  return {hits1 / nq, map_sum / nq};
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 2 && std::string(argv[1]) == "--self-check") return dlib_peer::self_check() ? 0 : 1;
  try {
    const std::string data = dlib_peer::text_flag(argc, argv, "--data", "");
    if (data.empty()) {
      std::cerr << "usage: dlib_w1 --data DIR [--steps N] [--epochs N] [--threads N] [--seed N]\n";
      return 2;
    }
    const auto [steps, epochs, threads, seed] = dlib_peer::run_flags(argc, argv, 1);

    const Split train = load_split(data, "train"), test = load_split(data, "t10k");
    Net net;
    std::vector<dlib::adam> solvers(Net::num_computational_layers, dlib::adam(0, 0.9, 0.999));

    std::mt19937_64 rng(seed);
    std::vector<std::vector<long>> by_class(10);
    for (size_t i = 0; i < train.labels.size(); ++i) by_class.at(train.labels[i]).push_back(i);
    const long P = 8, K = 16, per_epoch = long(train.labels.size()) / (P * K);
    std::vector<long> classes(10);
    std::iota(classes.begin(), classes.end(), 0L);

    std::vector<dlib::matrix<float>> batch;
    std::vector<unsigned long> labels;
    dlib::resizable_tensor x;
    double t_train = 0;
    long step = 0, images = 0;
    for (long ep = 0; ep < epochs && (!steps || step < steps); ++ep)
      for (long s = 0; s < per_epoch && (!steps || step < steps); ++s) {
        const std::vector<long> idx = dlib_peer::pk_batch(by_class, classes, P, K, rng);
        const auto t0 = std::chrono::steady_clock::now();
        batch.clear(), labels.clear();
        for (long i : idx) batch.push_back(train.images[i]), labels.push_back(train.labels[i]);
        net.to_tensor(batch.begin(), batch.end(), x);
        const double loss = net.compute_parameter_gradients(x, labels.begin());
        net.update_parameters(dlib::make_sstack(solvers), 1e-3);
        t_train += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        images += long(idx.size());
        if (++step % 100 == 0) std::cerr << "step " << step << " loss " << loss << "\n";
      }

    const auto t0 = std::chrono::steady_clock::now();
    const dlib::matrix<float> ete = embed(net, test.images, 1000);
    const dlib::matrix<float> etr = embed(net, train.images, 1000);
    const double t_embed =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const Retrieval loo = retrieve(ete, test.labels, ete, test.labels, true);
    const Retrieval gallery = retrieve(ete, test.labels, etr, train.labels, false);

    std::printf("train_img_per_s %.1f\n", images / t_train);
    std::printf("embed_img_per_s %.1f\n", (test.images.size() + train.images.size()) / t_embed);
    std::printf("test_precision_at_1 %.4f\n", loo.p1);
    std::printf("test_map_at_r %.4f\n", loo.map_at_r);
    std::printf("test_1nn_train_gallery %.4f\n", gallery.p1);
    std::printf("peak_rss_mb %.1f\n", dlib_peer::peak_rss_mb());
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "dlib_w1: " << e.what() << "\n";
    return 1;
  }
}
