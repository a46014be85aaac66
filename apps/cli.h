// The command-line framework of the `trine` program: subcommands register themselves (one file
// each under apps/), and Args parses "--name value" / "--name=value" flags with validation, so
// every subcommand gets --help, unknown-flag errors and typed values the same way.
//
//   int run_mnist(cli::Args& args) {
//     int64_t epochs = args.integer("epochs", 1, "training epochs", 1, 100000);
//     args.finish();   // handles --help, rejects unknown flags
//     ...
//   }
//   static cli::Register reg("mnist", "train an embedding on MNIST", run_mnist);
//
// Exit statuses: 0 success, 1 data or runtime error, 2 usage error.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "engine/backend.h"

namespace trine::cli {

class Args {
 public:
  Args(std::string command, std::vector<std::string> argv);

  // Each accessor declares a flag (for --help) and returns its value or the default.
  std::string str(const std::string& name, const std::string& def, const std::string& help);
  std::optional<std::string> opt_str(const std::string& name, const std::string& help);
  int64_t integer(const std::string& name, int64_t def, const std::string& help,
                  int64_t min = INT64_MIN, int64_t max = INT64_MAX);
  double number(const std::string& name, double def, const std::string& help, double min = -1e300,
                double max = 1e300);
  bool flag(const std::string& name, const std::string& help);  // present or absent
  // One of `choices`.
  std::string choice(const std::string& name, const std::string& def,
                     const std::vector<std::string>& choices, const std::string& help);

  // Call after all flags are declared: prints help and throws HelpShown on --help; throws
  // UsageError for unknown flags or stray arguments.
  void finish();
  const std::string& command() const { return command_; }
  // Every flag given on the command line, for run reports ("--epochs 5 --seed 1").
  std::string given() const;
  // The same as "--name=value" tokens (a switch as "--name"), e.g. to store in a checkpoint.
  std::vector<std::string> given_tokens() const;
  // Adds flags from `tokens` (as given_tokens() wrote them) that the command line did not give:
  // a resumed run takes its original configuration, and the command line may override it.
  void inherit(const std::vector<std::string>& tokens);
  // True when the command line (not inherit()) gave --name.
  bool given_here(const std::string& name) const { return here_.count(name) > 0; }

 private:
  std::optional<std::string> raw(const std::string& name, bool is_flag = false);
  void declare(const std::string& name, const std::string& meta, const std::string& def,
               const std::string& help);

  std::string command_;
  std::map<std::string, std::string> values_;  // from argv
  std::vector<std::string> order_;             // flags in argv order
  std::map<std::string, bool> here_;           // given on this command line
  std::vector<std::string> positional_;
  std::map<std::string, bool> used_;
  std::vector<std::string> help_lines_;
  bool help_ = false;
};

// Thrown by finish() after printing --help.
struct HelpShown {};

using CommandFn = std::function<int(Args&)>;

// Registers a subcommand at static-initialisation time. `name` may have two words ("bench w1").
struct Register {
  Register(const std::string& name, const std::string& summary, CommandFn fn);
};

// Runs the program: dispatch, banner, error handling and exit status.
int main(int argc, char** argv);

// Reads the flags every training or evaluation command shares (--threads, --blas-core) and
// applies them; call before finish().
void common_flags(Args& args);
// --device for a command that runs on the CPU only (`why` says what it does there): accepts
// cpu, and answers any other device with a UsageError rather than running on the CPU silently.
void cpu_only_device_flag(Args& args, const std::string& command, const std::string& why);
// The start-up line: version, BLAS kernel, threads, device.
std::string banner(const std::string& device = "cpu");

// Where a command runs its model: the device, and the arithmetic of its convolutions.
struct DeviceChoice {
  Device device = Device::cpu();
  ConvMath conv_math = ConvMath::FP32;
};
// Declares and reads --device (cpu, cuda or cuda:N) and --conv-math (fp32, or tf32 for a CUDA
// device: TF32 tensor cores for the convolutions, as PyTorch's cuDNN by default; a UsageError
// on the CPU). Opens nothing: call open_device after finish().
DeviceChoice device_flags(Args& args);
// "fp32", "tf32": the --conv-math value, and the `conv_math` figure of the benchmarks.
const char* conv_math_name(ConvMath math);
// The chosen device's backend, with a clear error when it is not available, its convolutions
// set to the chosen arithmetic (Backend::set_conv_math); prints the banner on stderr.
Backend& open_device(const DeviceChoice& choice);

}  // namespace trine::cli
