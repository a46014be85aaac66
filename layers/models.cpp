// Reference models.
#include "layers/models.h"

#include "engine/error.h"
#include "layers/layers.h"

namespace trine {

std::shared_ptr<Sequential> make_mnist_w1(int64_t dim) {
  auto net = std::make_shared<Sequential>();
  net->add(std::make_shared<Conv2d>(1, 32, 5, 1, 2))
      .add(std::make_shared<ReLU>())
      .add(std::make_shared<MaxPool2d>(2))
      .add(std::make_shared<Conv2d>(32, 64, 5, 1, 2))
      .add(std::make_shared<ReLU>())
      .add(std::make_shared<MaxPool2d>(2))
      .add(std::make_shared<Flatten>())
      .add(std::make_shared<Linear>(64 * 7 * 7, 256))
      .add(std::make_shared<ReLU>())
      .add(std::make_shared<Linear>(256, dim))
      .add(std::make_shared<L2Normalize>());
  return net;
}

std::shared_ptr<Sequential> make_facenet_s(int64_t dim, int64_t in_channels) {
  auto net = std::make_shared<Sequential>();
  auto conv_bn_relu = [&](int64_t in, int64_t out) {
    net->add(std::make_shared<Conv2d>(in, out, 3, 1, 1))
        .add(std::make_shared<BatchNorm2d>(out))
        .add(std::make_shared<ReLU>());
  };
  conv_bn_relu(in_channels, 16);
  conv_bn_relu(16, 16);
  net->add(std::make_shared<MaxPool2d>(2));
  conv_bn_relu(16, 32);
  conv_bn_relu(32, 32);
  net->add(std::make_shared<MaxPool2d>(2));
  conv_bn_relu(32, 64);
  conv_bn_relu(64, 64);
  net->add(std::make_shared<MaxPool2d>(2));
  conv_bn_relu(64, 128);
  net->add(std::make_shared<GlobalAvgPool>())
      .add(std::make_shared<Linear>(128, dim))
      .add(std::make_shared<L2Normalize>());
  return net;
}

std::vector<std::string> model_names() {
  return {"mnist-w1", "facenet-s"};
}

std::shared_ptr<Sequential> make_model(const std::string& name, int64_t dim, int64_t in_channels) {
  TRINE_CHECK_AS(UsageError, dim > 0, "embedding size must be positive, got ", dim);
  if (name == "mnist-w1") {
    TRINE_CHECK_AS(UsageError, in_channels == 1, "model mnist-w1 takes 1 input channel, not ",
                   in_channels);
    return make_mnist_w1(dim);
  }
  if (name == "facenet-s") return make_facenet_s(dim, in_channels);
  throw UsageError("unknown model '" + name + "': expected mnist-w1 or facenet-s");
}

}  // namespace trine
