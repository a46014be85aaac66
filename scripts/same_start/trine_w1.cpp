// quality.sh w1 --same-start, trine's side: workload W1 trained from the peer's start.
//
//   trine_same_start_w1 DATA_DIR WORK_DIR [THREADS]   (CMake builds it from this file)
//   trine_same_start_w1 --describe   prints the CPU backend line (the OpenBLAS kernel in use),
//                                    which quality.sh then gives the peer
//
// Reads what peer_w1.py wrote in WORK_DIR: the peer's initial weights (param{0..7}.npy, in the
// order of the mnist-w1 net's parameters, which is the peer's EmbedNet order) and its batches
// (batches.npy: every step's P K = 128 training-image indices, flat). Trains trine's W1 on those
// batches in that order (batch-hard triplet loss, Euclidean, margin 0.2, mean over anchors; Adam,
// lr 1e-3), then writes the test embeddings to WORK_DIR/trine_emb.npy. So the two engines share
// their initial weights and batches, and differ only in their arithmetic.
#include <cstdlib>
#include <exception>
#include <iostream>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "apps/embedding.h"
#include "datasets/mnist.h"
#include "datasets/npy.h"
#include "engine/backend.h"
#include "engine/error.h"
#include "engine/optim.h"
#include "engine/parallel.h"
#include "layers/models.h"
#include "losses/triplet_loss.h"

using namespace trine;

int main(int argc, char** argv) {
  if (argc == 2 && std::string(argv[1]) == "--describe") {
    std::cerr << backend_for(Device::cpu()).description() << "\n";
    return 0;
  }
  if (argc != 3 && argc != 4) {
    std::cerr << "usage: trine_same_start_w1 DATA_DIR WORK_DIR [THREADS], or "
                 "trine_same_start_w1 --describe\n";
    return 2;
  }
  try {
    const std::string data = argv[1], work = argv[2];
    if (argc == 4) {
      const int threads = std::atoi(argv[3]);
      TRINE_CHECK(threads >= 1, "THREADS must be a whole number >= 1, got '", argv[3], "'");
      set_num_threads(threads);
    }
    const MnistDataset train = MnistDataset::load(data, MnistSplit::Train);
    const MnistDataset test = MnistDataset::load(data, MnistSplit::Test);
    std::shared_ptr<Sequential> net = make_mnist_w1(64);
    std::map<std::string, Tensor> weights;  // the peer's, by the order of the parameters
    const auto params = net->named_parameters();
    for (size_t i = 0; i < params.size(); ++i)
      weights[params[i].first] = read_npy_floats(work + "/param" + std::to_string(i) + ".npy");
    net->load_state_dict(weights);  // checks every shape
    const std::vector<int32_t> batches = read_npy_labels(work + "/batches.npy");
    const size_t B = 128;
    TRINE_CHECK(!batches.empty() && batches.size() % B == 0, work,
                "/batches.npy: expected whole batches of 128 indices, got ", batches.size());
    TripletLossOptions lo;
    lo.margin = 0.2f;
    TripletMarginLoss loss(parse_distance("euclidean"), parse_miner("batch-hard"), lo);
    Adam opt(net->parameters(), {.lr = 1e-3f});
    for (size_t s = 0; s < batches.size() / B; ++s) {
      std::span<const int32_t> idx(batches.data() + s * B, B);
      Tensor l = loss.forward((*net)(train.images(idx)), train.labels_of(idx));
      opt.zero_grad();
      l.backward();
      opt.step();
    }
    const Tensor emb = cli::embed_all(*net, test.size(), 1000, [&](int64_t begin, int64_t end) {
      return test.images_range(begin, end);
    });
    write_npy(work + "/trine_emb.npy", emb);
    std::cout << "ok\n";
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "trine_same_start_w1: " << e.what() << "\n";
    return 1;
  }
}
