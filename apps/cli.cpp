// Command-line framework: flag parsing, subcommand registry, dispatch.
#include "apps/cli.h"

#include <cmath>
#include <cstdio>
#include <iostream>
#include <sstream>

#include "engine/backend.h"
#include "engine/cpu/blas.h"
#include "engine/cuda/cuda_api.h"
#include "engine/error.h"
#include "engine/parallel.h"

#ifndef TRINE_VERSION
#define TRINE_VERSION "0.1.0"
#endif

namespace trine::cli {

namespace {

struct Entry {
  std::string summary;
  CommandFn fn;
};

std::map<std::string, Entry>& registry() {
  static std::map<std::string, Entry> r;
  return r;
}

// The usage text listing every command whose name starts with `prefix` ("" for all of them, or
// a group's "bench "); empty when none does.
std::string usage_list(const std::string& prefix = "") {
  std::ostringstream os;
  for (const auto& [name, e] : registry()) {
    if (name.compare(0, prefix.size(), prefix) != 0) continue;
    os << "  " << name << std::string(name.size() < 14 ? 14 - name.size() : 1, ' ') << e.summary
       << "\n";
  }
  if (os.tellp() == 0) return "";
  const std::string what = prefix.empty() ? "<command>" : prefix + "<subcommand>";
  return "usage: trine " + what + " [--flags]   (trine " + what +
         " --help for its flags)\n\ncommands:\n" + os.str();
}

}  // namespace

Args::Args(std::string command, std::vector<std::string> argv) : command_(std::move(command)) {
  for (size_t i = 0; i < argv.size(); ++i) {
    const std::string& a = argv[i];
    if (a == "--help" || a == "-h") {
      help_ = true;
      continue;
    }
    if (a.rfind("--", 0) != 0 || a.size() == 2) {
      positional_.push_back(a);
      continue;
    }
    std::string name = a.substr(2), value;
    bool has_value = false;
    if (size_t eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      has_value = true;
    } else if (i + 1 < argv.size() && argv[i + 1].rfind("--", 0) != 0) {
      value = argv[++i];
      has_value = true;
    }
    if (values_.count(name))
      throw UsageError(command_ + ": flag --" + name + " given more than once");
    values_[name] = has_value ? value : std::string("\x01");  // \x01: present without a value
    order_.push_back(name);
    here_[name] = true;
  }
}

std::vector<std::string> Args::given_tokens() const {
  std::vector<std::string> out;
  for (const auto& name : order_) {
    const std::string& v = values_.at(name);
    out.push_back("--" + name + (v == "\x01" ? "" : "=" + v));
  }
  return out;
}

void Args::inherit(const std::vector<std::string>& tokens) {
  for (const std::string& t : tokens) {
    if (t.rfind("--", 0) != 0) continue;
    const size_t eq = t.find('=');
    const std::string name = t.substr(2, eq == std::string::npos ? std::string::npos : eq - 2);
    if (values_.count(name)) continue;  // the command line wins
    values_[name] = eq == std::string::npos ? std::string("\x01") : t.substr(eq + 1);
    order_.push_back(name);
  }
}

void Args::declare(const std::string& name, const std::string& meta, const std::string& def,
                   const std::string& help) {
  std::string left = "  --" + name + (meta.empty() ? "" : " " + meta);
  if (left.size() < 28)
    left += std::string(28 - left.size(), ' ');
  else
    left += "  ";
  help_lines_.push_back(left + help + (def.empty() ? "" : " (default " + def + ")"));
}

std::optional<std::string> Args::raw(const std::string& name, bool is_flag) {
  used_[name] = true;
  auto it = values_.find(name);
  if (it == values_.end()) return std::nullopt;
  if (!is_flag && it->second == "\x01")
    throw UsageError(command_ + ": flag --" + name + " needs a value");
  return it->second;
}

std::string Args::str(const std::string& name, const std::string& def, const std::string& help) {
  declare(name, "TEXT", def, help);
  return raw(name).value_or(def);
}

std::optional<std::string> Args::opt_str(const std::string& name, const std::string& help) {
  declare(name, "TEXT", "", help);
  return raw(name);
}

int64_t Args::integer(const std::string& name, int64_t def, const std::string& help, int64_t min,
                      int64_t max) {
  declare(name, "N", std::to_string(def), help);
  auto v = raw(name);
  if (!v) return def;
  size_t used = 0;
  int64_t x = 0;
  try {
    x = std::stoll(*v, &used);
  } catch (...) {
    used = 0;
  }
  if (used == 0 || used != v->size())
    throw UsageError(command_ + ": --" + name + " expects an integer, got '" + *v + "'");
  if (x < min || x > max)
    throw UsageError(command_ + ": --" + name + " must be in [" + std::to_string(min) + ", " +
                     std::to_string(max) + "], got " + *v);
  return x;
}

double Args::number(const std::string& name, double def, const std::string& help, double min,
                    double max) {
  std::ostringstream d;
  d << def;
  declare(name, "X", d.str(), help);
  auto v = raw(name);
  if (!v) return def;
  size_t used = 0;
  double x = 0;
  try {
    x = std::stod(*v, &used);
  } catch (...) {
    used = 0;
  }
  if (used == 0 || used != v->size() || !std::isfinite(x))
    throw UsageError(command_ + ": --" + name + " expects a finite number, got '" + *v + "'");
  if (x < min || x > max) {
    std::ostringstream os;
    os << command_ << ": --" << name << " must be in [" << min << ", " << max << "], got " << *v;
    throw UsageError(os.str());
  }
  return x;
}

bool Args::flag(const std::string& name, const std::string& help) {
  declare(name, "", "", help);
  auto v = raw(name, true);
  if (!v) return false;
  if (*v == "\x01" || *v == "true" || *v == "1") return true;
  if (*v == "false" || *v == "0") return false;
  throw UsageError(command_ + ": --" + name + " is a switch and takes no value, got '" + *v + "'");
}

std::string Args::choice(const std::string& name, const std::string& def,
                         const std::vector<std::string>& choices, const std::string& help) {
  std::string all;
  for (const auto& c : choices) all += (all.empty() ? "" : "|") + c;
  declare(name, all, def, help);
  std::string v = raw(name).value_or(def);
  for (const auto& c : choices)
    if (v == c) return v;
  throw UsageError(command_ + ": --" + name + " must be one of " + all + ", got '" + v + "'");
}

void Args::finish() {
  if (help_) {
    std::cout << "usage: trine " << command_ << " [flags]\n\nflags:\n";
    for (const auto& l : help_lines_) std::cout << l << "\n";
    throw HelpShown{};
  }
  for (const auto& name : order_)
    if (!used_.count(name))
      throw UsageError(command_ + ": unknown flag --" + name + " (see trine " + command_ +
                       " --help)");
  if (!positional_.empty())
    throw UsageError(command_ + ": unexpected argument '" + positional_[0] + "'");
}

std::string Args::given() const {
  std::string out;
  for (const auto& name : order_) {
    const std::string& v = values_.at(name);
    out += (out.empty() ? "--" : " --") + name + (v == "\x01" ? "" : " " + v);
  }
  return out;
}

Register::Register(const std::string& name, const std::string& summary, CommandFn fn) {
  registry()[name] = {summary, std::move(fn)};
}

void common_flags(Args& args) {
  int64_t threads = args.integer("threads", 0, "CPU threads (0: all hardware threads)", 0, 1024);
  auto core = args.opt_str("blas-core",
                           "OpenBLAS kernel, e.g. Haswell, SkylakeX, Cooperlake, or 'openblas' "
                           "for OpenBLAS's own detection (default: chosen from CPUID)");
  if (core) blas::set_core_override(*core);
  if (threads > 0) set_num_threads(static_cast<int>(threads));
}

void cpu_only_device_flag(Args& args, const std::string& command, const std::string& why) {
  const Device device = Device::parse(args.str("device", "cpu", "cpu only: " + why));
  TRINE_CHECK_AS(UsageError, device.is_cpu(), "trine ", command, " runs on the CPU only (", why,
                 "); --device ", device.str(), " is not available for it");
}

std::string banner(const std::string& device) {
  std::string line =
      std::string("trine ") + TRINE_VERSION + " | " + backend_for(Device::cpu()).description();
  if (device != "cpu") line += " | device " + device;
  return line;
}

DeviceChoice device_flags(Args& args) {
  DeviceChoice c;
  c.device = Device::parse(args.str("device", "cpu", "cpu, cuda or cuda:N"));
  const std::string math = args.choice(
      "conv-math", "fp32", {"fp32", "tf32"},
      "arithmetic of the convolutions: fp32, or tf32 (CUDA only: inputs rounded to a 10-bit "
      "mantissa on tensor cores, as PyTorch's cuDNN convolutions by default)");
  c.conv_math = math == "tf32" ? ConvMath::TF32 : ConvMath::FP32;
  TRINE_CHECK_AS(UsageError, c.device.is_cuda() || c.conv_math == ConvMath::FP32,
                 "--conv-math tf32 needs a CUDA device (--device cuda): the CPU computes "
                 "convolutions in FP32 only");
  return c;
}

const char* conv_math_name(ConvMath math) {
  return math == ConvMath::TF32 ? "tf32" : "fp32";
}

Backend& open_device(const DeviceChoice& choice) {
  Backend& be = backend_for(choice.device);  // a clear error when the device is unavailable
  be.set_conv_math(choice.conv_math);
  std::cerr << banner(choice.device.str())
            << (choice.conv_math == ConvMath::TF32 ? " | convolutions in TF32" : "") << "\n";
  return be;
}

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    std::cout << usage_list();
    return args.empty() ? 2 : 0;
  }
  if (args[0] == "--version") {
    std::cout << "trine " << TRINE_VERSION << (cuda_built() ? " (with CUDA)" : " (CPU only)")
              << "\n";
    return 0;
  }
  std::string name = args[0];
  size_t consumed = 1;
  if (args.size() > 1 && registry().count(args[0] + " " + args[1])) {
    name = args[0] + " " + args[1];
    consumed = 2;
  }
  auto it = registry().find(name);
  if (it == registry().end()) {
    // A group's name (`bench`) alone, with --help, or with a member it lacks: list its members.
    const std::string group = usage_list(args[0] + " ");
    if (group.empty()) {
      std::cerr << "trine: unknown command '" << name << "'\n\n" << usage_list();
      return 2;
    }
    if (args.size() > 1 && (args[1] == "--help" || args[1] == "-h")) {
      std::cout << group;
      return 0;
    }
    std::cerr << "trine " << args[0] << ": "
              << (args.size() > 1 ? "unknown subcommand '" + args[1] + "'"
                                  : std::string("needs a subcommand"))
              << "\n\n"
              << group;
    return 2;
  }
  try {
    Args parsed(name, std::vector<std::string>(args.begin() + consumed, args.end()));
    return it->second.fn(parsed);
  } catch (const HelpShown&) {
    return 0;
  } catch (const UsageError& e) {
    std::cerr << "trine " << name << ": usage error: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "trine " << name << ": error: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace trine::cli
