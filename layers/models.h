// Reference models, built by name so checkpoints can record which one they hold:
//   mnist-w1   workload W1's net: conv5x5 1->32 pad 2, ReLU, max-pool 2, conv5x5 32->64 pad 2,
//              ReLU, max-pool 2, dense 3136->256, ReLU, dense 256->dim, L2-normalize
//              (input [N, 1, 28, 28])
//   facenet-s  workload W2's FaceNetS: six conv3x3 + BN + ReLU in three stages of two (16, 32,
//              64 channels) with max-pool 2 after each, conv3x3 64->128 + BN + ReLU, global
//              average pool, dense 128->dim, L2-normalize (input [N, 3, H, W])
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "layers/sequential.h"

namespace trine {

std::shared_ptr<Sequential> make_mnist_w1(int64_t dim = 64);
std::shared_ptr<Sequential> make_facenet_s(int64_t dim = 128, int64_t in_channels = 3);

// Builds a model by name (above); throws UsageError for an unknown name.
std::shared_ptr<Sequential> make_model(const std::string& name, int64_t dim, int64_t in_channels);
std::vector<std::string> model_names();

}  // namespace trine
