// `trine eval` end to end: the program built next to the tests reads .npy files and prints the
// metrics; bad input gives exit status 1 (data) or 2 (usage) with a message naming the problem.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

#include "datasets/npy.h"

namespace trine {
namespace {

namespace fs = std::filesystem;

struct Result {
  int status = -1;
  std::string out, err;
};

class CmdEval : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* bin = std::getenv("TRINE_BINARY_DIR");
    exe_ = std::string(bin ? bin : ".") + "/trine";
    if (!fs::exists(exe_)) GTEST_SKIP() << "no trine program at " << exe_ << " (build trine_cli)";
    dir_ = fs::temp_directory_path() / ("trine_cmd_eval_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    // The hand-computed case of test_retrieval: P@1 0.4, R-precision 0.3, MAP@R 0.25.
    write_npy(f("e.npy"), Tensor::from_vector({0, 1, 3, 4, 10}, {5, 1}));
    write_npy_labels(f("l.npy"), {0, 0, 1, 0, 1});
  }
  void TearDown() override {
    std::error_code ec;
    if (!dir_.empty()) fs::remove_all(dir_, ec);
  }
  std::string f(const std::string& name) const { return (dir_ / name).string(); }

  Result run(const std::string& args) const {
    const std::string err_file = f("stderr.txt");
    const std::string cmd = exe_ + " eval --threads 1 " + args + " 2> " + err_file;
    Result r;
    FILE* p = ::popen(cmd.c_str(), "r");
    if (!p) return r;
    char buf[512];
    while (size_t n = std::fread(buf, 1, sizeof(buf), p)) r.out.append(buf, n);
    const int st = ::pclose(p);
    r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    FILE* e = std::fopen(err_file.c_str(), "r");
    if (e) {
      while (size_t n = std::fread(buf, 1, sizeof(buf), e)) r.err.append(buf, n);
      std::fclose(e);
    }
    return r;
  }

  std::string exe_;
  fs::path dir_;
};

bool has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST_F(CmdEval, LeaveOneOut) {
  const Result r =
      run("--embeddings " + f("e.npy") + " --labels " + f("l.npy") + " --recall-k 1,2,4");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out,
            "precision_at_1 0.400000\nr_precision 0.300000\nmap_at_r 0.250000\n"
            "recall_at_1 0.400000\nrecall_at_2 0.800000\nrecall_at_4 1.000000\n"
            "num_queries 5\nnum_gallery 5\nnum_r_zero 0\n");
  EXPECT_TRUE(has(r.err, "leave-one-out")) << r.err;
  // Defaults: Recall@1,2,4,8; cosine accepted.
  const Result d = run("--embeddings " + f("e.npy") + " --labels " + f("l.npy"));
  ASSERT_EQ(d.status, 0) << d.err;
  EXPECT_TRUE(has(d.out, "recall_at_8 1.000000")) << d.out;
  const Result c =
      run("--embeddings " + f("e.npy") + " --labels " + f("l.npy") + " --metric cosine --no-map");
  ASSERT_EQ(c.status, 0) << c.err;
  EXPECT_FALSE(has(c.out, "map_at_r"));
}

TEST_F(CmdEval, Gallery) {
  write_npy(f("q.npy"), Tensor::from_vector({0, 5, 3}, {3, 1}));
  write_npy_labels(f("ql.npy"), {0, 1, 7});
  write_npy(f("g.npy"), Tensor::from_vector({1, 4, 6, -2}, {4, 1}));
  const std::vector<int64_t> gl{1, 0, 1, 0};  // int64 labels, as NumPy saves them by default
  write_npy_raw(f("gl.npy"), "<i8", {4}, gl.data(), gl.size() * 8);
  const Result r = run("--embeddings " + f("q.npy") + " --labels " + f("ql.npy") + " --gallery " +
                       f("g.npy") + " --gallery-labels " + f("gl.npy") + " --recall-k 2");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out,
            "precision_at_1 0.000000\nr_precision 0.500000\nmap_at_r 0.250000\n"
            "recall_at_2 0.666667\nnum_queries 3\nnum_gallery 4\nnum_r_zero 1\n");
}

TEST_F(CmdEval, DataErrorsExitOne) {
  const std::string E = " --embeddings " + f("e.npy"), L = " --labels " + f("l.npy");
  Result r = run(" --embeddings " + f("missing.npy") + L);
  EXPECT_EQ(r.status, 1);
  EXPECT_TRUE(has(r.err, "missing.npy") && has(r.err, "no such file")) << r.err;

  write_npy_labels(f("l4.npy"), {0, 1, 0, 1});
  r = run(E + " --labels " + f("l4.npy"));
  EXPECT_EQ(r.status, 1);
  EXPECT_TRUE(has(r.err, "holds 5 embeddings") && has(r.err, "holds 4 labels")) << r.err;

  write_npy(f("g2.npy"), Tensor::zeros({3, 2}));
  write_npy_labels(f("gl3.npy"), {0, 1, 0});
  r = run(E + L + " --gallery " + f("g2.npy") + " --gallery-labels " + f("gl3.npy"));
  EXPECT_EQ(r.status, 1);
  EXPECT_TRUE(has(r.err, "dimension 1") && has(r.err, "has 2")) << r.err;

  std::vector<float> v{0, 1, 2, 3, 4, 5};
  v[5] = std::numeric_limits<float>::quiet_NaN();
  write_npy(f("nan.npy"), Tensor::from_vector(v, {3, 2}));
  write_npy_labels(f("l3.npy"), {0, 1, 0});
  r = run(" --embeddings " + f("nan.npy") + " --labels " + f("l3.npy"));
  EXPECT_EQ(r.status, 1);
  EXPECT_TRUE(has(r.err, "row 2, column 1") && has(r.err, "nan.npy")) << r.err;

  write_npy(f("flat.npy"), Tensor::from_vector({1, 2, 3}));
  r = run(" --embeddings " + f("flat.npy") + " --labels " + f("l3.npy"));
  EXPECT_EQ(r.status, 1);
  EXPECT_TRUE(has(r.err, "2-D array")) << r.err;

  write_npy(f("one.npy"), Tensor::zeros({1, 4}));
  write_npy_labels(f("l1.npy"), {3});
  r = run(" --embeddings " + f("one.npy") + " --labels " + f("l1.npy"));
  EXPECT_EQ(r.status, 1);
  EXPECT_TRUE(has(r.err, "at least 2")) << r.err;
}

TEST_F(CmdEval, UsageErrorsExitTwo) {
  const std::string E = " --embeddings " + f("e.npy"), L = " --labels " + f("l.npy");
  for (const std::string& args :
       {E, E + L + " --gallery " + f("e.npy"), E + L + " --recall-k 1,x", E + L + " --recall-k 0",
        E + L + " --metric manhattan", E + L + " --bogus 1"}) {
    const Result r = run(args);
    EXPECT_EQ(r.status, 2) << args << "\n" << r.err;
    EXPECT_TRUE(has(r.err, "usage error")) << r.err;
  }
  EXPECT_EQ(run("--help").status, 0);
  // A CPU-only command asked for the GPU says so rather than running on the CPU.
  const Result gpu = run(E + L + " --device cuda");
  EXPECT_EQ(gpu.status, 2) << gpu.err;
  EXPECT_TRUE(has(gpu.err, "trine eval runs on the CPU only")) << gpu.err;
  EXPECT_EQ(run(E + L + " --device cpu").status, 0);
}

}  // namespace
}  // namespace trine
