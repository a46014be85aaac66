// Checkpoints: round trips of tensors and metadata, rejection of damaged files with a DataError
// naming the file and the fault, atomic replacement, and Module::save/load/load_state_dict.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "engine/checkpoint.h"
#include "engine/error.h"
#include "engine/ops.h"
#include "engine/random.h"
#include "layers/layers.h"
#include "support/test_util.h"

namespace trine {
namespace {

namespace fs = std::filesystem;
using test::throws_with;

class CheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    dir_ =
        fs::temp_directory_path() / ("trine_test_ckpt_" + std::to_string(::getpid()) + "_" + name);
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  static std::string read_bytes(const std::string& p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  }
  static void write_bytes(const std::string& p, const std::string& bytes) {
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }
  std::vector<std::string> files_in_dir() const {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(dir_)) out.push_back(e.path().filename().string());
    std::sort(out.begin(), out.end());
    return out;
  }

  // A small valid checkpoint; returns its path.
  std::string sample(const std::string& name = "sample.ckpt") {
    Checkpoint ck;
    ck.meta["model"] = "resnet18";
    ck.meta["step"] = "1200";
    ck.tensors["w"] = test::random_tensor({3, 4}, 1);
    ck.tensors["labels"] = Tensor::from_ints({1, 2, 3});
    save_checkpoint(path(name), ck);
    return path(name);
  }

  fs::path dir_;
};

// CRC-32 (zlib's polynomial), to build damaged files that still pass the checksum.
uint32_t crc32_of(const std::string& bytes) {
  uint32_t crc = 0xFFFFFFFFu;
  for (unsigned char c : bytes) {
    crc ^= c;
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}

template <typename T>
void put(std::string& out, T v) {
  out.append(reinterpret_cast<const char*>(&v), sizeof(T));
}
void put_str(std::string& out, const std::string& s) {
  put<uint32_t>(out, static_cast<uint32_t>(s.size()));
  out += s;
}
// Header + body + a correct checksum.
std::string with_header_and_crc(const std::string& body) {
  std::string out("TRINECKP", 8);
  put<uint32_t>(out, kCheckpointVersion);
  put<uint32_t>(out, 0);
  out += body;
  put<uint32_t>(out, crc32_of(out));
  return out;
}

TEST_F(CheckpointTest, RoundTripTensorsOfEveryRankAndMetadata) {
  Checkpoint ck;
  ck.meta["config"] = "lr=0.1 batch=64";
  ck.meta["empty"] = "";
  ck.meta["binary"] = std::string("a\0b\n\xff", 5);
  ck.tensors["rank0"] = Tensor::scalar(-2.5f);
  ck.tensors["rank1"] = test::random_tensor({5}, 2);
  ck.tensors["rank2"] = test::random_tensor({3, 4}, 3);
  ck.tensors["rank4"] = test::random_tensor({2, 3, 1, 4}, 4);
  ck.tensors["empty"] = Tensor::zeros({0});
  ck.tensors["empty2"] = Tensor::zeros({2, 0, 3});
  ck.tensors["ints"] = Tensor::from_ints({-7, 0, 2147483647, -2147483647 - 1});
  Tensor ints2 = Tensor::empty({2, 3}, Device::cpu(), DType::I32);
  for (int i = 0; i < 6; ++i) ints2.int_data()[i] = i * 11 - 20;
  ck.tensors["ints2"] = ints2;
  ck.tensors["view"] = Tensor::arange(12).reshape({3, 4}).slice(0, 1, 3);  // offset storage
  ck.tensors["odd name/with.dots"] = Tensor::ones({1});
  save_checkpoint(path("a.ckpt"), ck);

  Checkpoint back = load_checkpoint(path("a.ckpt"));
  EXPECT_EQ(back.meta, ck.meta);
  ASSERT_EQ(back.tensors.size(), ck.tensors.size());
  for (const auto& [name, t] : ck.tensors) {
    SCOPED_TRACE(name);
    ASSERT_TRUE(back.tensors.count(name));
    const Tensor& b = back.tensors.at(name);
    EXPECT_EQ(b.shape(), t.shape());
    EXPECT_EQ(b.dtype(), t.dtype());
    EXPECT_TRUE(b.device().is_cpu());
    if (t.dtype() == DType::F32)
      EXPECT_EQ(b.to_vector(), t.to_vector());
    else
      EXPECT_EQ(b.to_int_vector(), t.to_int_vector());
  }
  // An empty checkpoint is valid too.
  save_checkpoint(path("empty.ckpt"), Checkpoint{});
  Checkpoint none = load_checkpoint(path("empty.ckpt"));
  EXPECT_TRUE(none.tensors.empty());
  EXPECT_TRUE(none.meta.empty());
}

TEST_F(CheckpointTest, RejectsWrongMagic) {
  std::string p = sample(), bytes = read_bytes(p);
  bytes[0] = 'X';
  write_bytes(p, bytes);
  EXPECT_TRUE(throws_with<DataError>([&] { load_checkpoint(p); }, {p, "magic"}));
  write_bytes(p, std::string(64, 'z'));
  EXPECT_TRUE(throws_with<DataError>([&] { load_checkpoint(p); }, {p, "not a trine checkpoint"}));
}

TEST_F(CheckpointTest, RejectsWrongVersion) {
  std::string p = sample(), bytes = read_bytes(p);
  const uint32_t v = kCheckpointVersion + 1;
  std::memcpy(bytes.data() + 8, &v, 4);
  write_bytes(p, bytes);
  EXPECT_TRUE(
      throws_with<DataError>([&] { load_checkpoint(p); }, {p, "version " + std::to_string(v)}));
}

TEST_F(CheckpointTest, RejectsTruncatedFiles) {
  const std::string good = read_bytes(sample());
  for (size_t keep : {size_t{1}, size_t{7}, size_t{12}, size_t{19}, size_t{20}, size_t{24},
                      good.size() / 2, good.size() - 5, good.size() - 4, good.size() - 1}) {
    SCOPED_TRACE("kept " + std::to_string(keep) + " of " + std::to_string(good.size()));
    const std::string p = path("trunc.ckpt");
    write_bytes(p, good.substr(0, keep));
    try {
      load_checkpoint(p);
      ADD_FAILURE() << "no error";
    } catch (const DataError& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find(p), std::string::npos) << what;
      EXPECT_TRUE(what.find("truncated") != std::string::npos ||
                  what.find("too short") != std::string::npos)
          << what;
    }
  }
}

TEST_F(CheckpointTest, RejectsAFlippedByte) {
  const std::string good = read_bytes(sample());
  // In the metadata, in the tensor data, and in the stored checksum itself.
  for (size_t at : {size_t{30}, good.size() / 2, good.size() - 8, good.size() - 2}) {
    SCOPED_TRACE("byte " + std::to_string(at));
    std::string bad = good;
    bad[at] = static_cast<char>(bad[at] ^ 0x10);
    const std::string p = path("flip.ckpt");
    write_bytes(p, bad);
    EXPECT_TRUE(throws_with<DataError>([&] { load_checkpoint(p); }, {p, "checksum"}));
  }
}

TEST_F(CheckpointTest, RejectsZeroLengthDirectoryAndMissingFile) {
  const std::string empty = path("zero.ckpt");
  write_bytes(empty, "");
  EXPECT_TRUE(throws_with<DataError>([&] { load_checkpoint(empty); }, {empty, "0 bytes"}));
  const std::string dir = path("a_dir");
  fs::create_directories(dir);
  EXPECT_TRUE(throws_with<DataError>([&] { load_checkpoint(dir); }, {dir, "directory"}));
  const std::string missing = path("missing.ckpt");
  EXPECT_TRUE(throws_with<DataError>([&] { load_checkpoint(missing); }, {missing, "no such file"}));
}

TEST_F(CheckpointTest, RejectsInconsistentContentsBehindAValidChecksum) {
  const std::string p = path("crafted.ckpt");
  struct Case {
    std::string what, body, fault;
  };
  std::vector<Case> cases;
  {  // a metadata count no file could hold
    std::string b;
    put<uint64_t>(b, uint64_t{1} << 40);
    cases.push_back({"meta count", b, "implausible metadata count"});
  }
  {  // a string longer than the file
    std::string b;
    put<uint64_t>(b, 1);
    put<uint32_t>(b, 1000);
    b += "key";
    cases.push_back({"long key", b, "truncated while reading metadata key"});
  }
  auto tensor_header = [](std::string& b, uint8_t dtype, uint8_t rank, const Shape& dims,
                          uint64_t nbytes) {
    put<uint64_t>(b, 0);  // no metadata
    put<uint64_t>(b, 1);
    put_str(b, "t");
    put<uint8_t>(b, dtype);
    put<uint8_t>(b, rank);
    put<uint16_t>(b, 0);
    for (int64_t d : dims) put<int64_t>(b, d);
    put<uint64_t>(b, nbytes);
  };
  {
    std::string b;
    tensor_header(b, 7, 1, {2}, 8);
    b += std::string(8, '\0');
    cases.push_back({"dtype", b, "unknown dtype 7"});
  }
  {
    std::string b;
    tensor_header(b, 0, 2, {2, 3}, 20);
    b += std::string(20, '\0');
    cases.push_back({"size", b, "declares 20 bytes, expected 24"});
  }
  {
    std::string b;
    tensor_header(b, 0, 1, {-4}, 0);
    cases.push_back({"negative dim", b, "invalid dims"});
  }
  {
    std::string b;
    tensor_header(b, 0, 1, {4}, 16);
    b += std::string(8, '\0');  // half the data
    cases.push_back({"short data", b, "truncated while reading tensor data"});
  }
  {
    std::string b;
    tensor_header(b, 0, 1, {1}, 4);
    b += std::string(4, '\0');
    b += "junk";
    cases.push_back({"trailing", b, "trailing bytes"});
  }
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    write_bytes(p, with_header_and_crc(c.body));
    EXPECT_TRUE(throws_with<DataError>([&] { load_checkpoint(p); }, {p, c.fault}));
  }
  // The crafting itself is right: a well-formed body loads.
  std::string ok;
  put<uint64_t>(ok, 1);
  put_str(ok, "k");
  put_str(ok, "v");
  put<uint64_t>(ok, 0);
  write_bytes(p, with_header_and_crc(ok));
  EXPECT_EQ(load_checkpoint(p).meta.at("k"), "v");
}

TEST_F(CheckpointTest, SaveRejectsUndefinedTensor) {
  Checkpoint ck;
  ck.tensors["nothing"] = Tensor();
  EXPECT_TRUE(throws_with<Error>([&] { save_checkpoint(path("u.ckpt"), ck); }, {"nothing"}));
  EXPECT_FALSE(fs::exists(path("u.ckpt")));
}

TEST_F(CheckpointTest, AtomicWriteReplacesAndLeavesNoTemporaryFiles) {
  const std::string p = path("file.bin");
  write_file_atomic(p, "first version");
  EXPECT_EQ(read_bytes(p), "first version");
  write_file_atomic(p, "second");
  EXPECT_EQ(read_bytes(p), "second");
  write_file_atomic(p, "");
  EXPECT_EQ(read_bytes(p), "");
  EXPECT_EQ(files_in_dir(), std::vector<std::string>{"file.bin"});
  // Saving a checkpoint over an existing one replaces it, again without leftovers.
  sample("file.bin");
  sample("file.bin");
  EXPECT_EQ(load_checkpoint(p).meta.at("step"), "1200");
  EXPECT_EQ(files_in_dir(), std::vector<std::string>{"file.bin"});
  // A folder that does not exist is an error naming the path.
  const std::string nowhere = path("no/such/dir/x.bin");
  EXPECT_TRUE(throws_with<Error>([&] { write_file_atomic(nowhere, "x"); }, {"no/such/dir"}));
}

// ------------------------------------------------------------------------------ modules

std::shared_ptr<Sequential> small_model() {
  auto m = std::make_shared<Sequential>();
  m->add(std::make_shared<Conv2d>(3, 4, 3, 1, 1))
      .add(std::make_shared<BatchNorm2d>(4))
      .add(std::make_shared<ReLU>())
      .add(std::make_shared<Flatten>())
      .add(std::make_shared<Linear>(4 * 5 * 5, 3));
  return m;
}

TEST_F(CheckpointTest, ModuleSaveLoadRoundTripIncludingBuffers) {
  manual_seed(1);
  auto a = small_model();
  // Training-mode passes move the batch-norm running statistics away from their defaults.
  for (int i = 0; i < 3; ++i) a->forward(test::random_tensor({2, 3, 5, 5}, 10 + i));
  const std::map<std::string, Tensor> sa = a->state_dict();
  ASSERT_TRUE(sa.count("1.running_mean"));
  EXPECT_NE(sa.at("1.running_mean").to_vector(), std::vector<float>(4, 0.f));
  a->save(path("model.ckpt"));

  manual_seed(2);
  auto b = small_model();
  const Tensor w_before = b->named_parameters()[0].second;
  EXPECT_NE(w_before.to_vector(), sa.at("0.weight").to_vector());
  b->load(path("model.ckpt"));
  // Values are copied into the existing tensors: handles held elsewhere stay valid.
  EXPECT_TRUE(b->named_parameters()[0].second.same(w_before));
  EXPECT_EQ(w_before.to_vector(), sa.at("0.weight").to_vector());
  for (const auto& [name, t] : b->state_dict()) {
    SCOPED_TRACE(name);
    EXPECT_EQ(t.to_vector(), sa.at(name).to_vector());
  }
  a->eval(), b->eval();
  Tensor x = test::random_tensor({2, 3, 5, 5}, 20);
  EXPECT_EQ(a->forward(x).to_vector(), b->forward(x).to_vector());
}

TEST_F(CheckpointTest, LoadStateDictStrictMismatches) {
  auto m = small_model();
  std::map<std::string, Tensor> state;
  for (const auto& [name, t] : m->state_dict()) state[name] = t.clone();

  auto missing = state;
  missing.erase("4.bias");
  EXPECT_TRUE(throws_with<DataError>([&] { m->load_state_dict(missing); }, {"missing", "4.bias"}));
  auto unexpected = state;
  unexpected["5.weight"] = Tensor::zeros({2});
  EXPECT_TRUE(
      throws_with<DataError>([&] { m->load_state_dict(unexpected); }, {"unexpected", "5.weight"}));
  auto wrong = state;
  wrong["0.weight"] = Tensor::zeros({4, 3, 5, 5});
  EXPECT_TRUE(throws_with<DataError>([&] { m->load_state_dict(wrong); },
                                     {"0.weight", "[4, 3, 5, 5]", "[4, 3, 3, 3]"}));
  auto wrong_type = state;
  wrong_type["4.bias"] = Tensor::from_ints({1, 2, 3});
  EXPECT_TRUE(throws_with<DataError>([&] { m->load_state_dict(wrong_type); },
                                     {"4.bias", "int32", "float32"}));
  // Non-strict: missing and unexpected entries are fine, shapes must still match.
  missing["0.bias"] = Tensor::full({4}, 0.5f);
  m->load_state_dict(missing, false);
  EXPECT_EQ(m->state_dict().at("0.bias").to_vector(), std::vector<float>(4, 0.5f));
  m->load_state_dict(unexpected, false);
  EXPECT_THROW(m->load_state_dict(wrong, false), DataError);
  // Loading a file written for another model fails the same way.
  Checkpoint ck;
  ck.tensors = unexpected;
  save_checkpoint(path("other.ckpt"), ck);
  EXPECT_TRUE(throws_with<DataError>([&] { m->load(path("other.ckpt")); }, {"5.weight"}));
}

}  // namespace
}  // namespace trine
