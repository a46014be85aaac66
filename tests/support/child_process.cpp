// Child processes for tests: fork/exec with redirected output, time limits, signals.
#include "support/child_process.h"

#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace trine::test {

namespace {

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace

bool can_drop_privileges() {
  return ::geteuid() == 0;
}

Child Child::start(const std::vector<std::string>& argv, const std::string& out_file,
                   const std::string& err_file, const ChildOptions& options) {
  if (argv.empty()) throw std::runtime_error("Child::start: empty argv");
  // Everything the child needs is built before fork: after it, only async-signal-safe calls.
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::vector<std::string> env_strings;
  for (char** e = environ; *e; ++e) env_strings.emplace_back(*e);
  for (const std::string& e : options.env) env_strings.push_back(e);
  std::vector<char*> env;
  for (const std::string& e : env_strings) env.push_back(const_cast<char*>(e.c_str()));
  env.push_back(nullptr);
  const int out_fd = ::open(out_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  const int err_fd = ::open(err_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (out_fd < 0 || err_fd < 0) {
    if (out_fd >= 0) ::close(out_fd);
    if (err_fd >= 0) ::close(err_fd);
    throw std::runtime_error("Child::start: cannot create " + out_file + " or " + err_file);
  }
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(out_fd);
    ::close(err_fd);
    throw std::runtime_error(std::string("Child::start: fork failed: ") + std::strerror(errno));
  }
  if (pid == 0) {
    ::dup2(out_fd, STDOUT_FILENO);
    ::dup2(err_fd, STDERR_FILENO);
    const int null_fd = ::open("/dev/null", O_RDONLY);
    if (null_fd >= 0) ::dup2(null_fd, STDIN_FILENO);
    // Default dispositions and an empty mask: gtest or a parent shell may have changed them.
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    for (int s : {SIGINT, SIGTERM, SIGPIPE}) ::sigaction(s, &dfl, nullptr);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    // The output files are already open, so the unprivileged child can write them.
    if (options.as_nobody &&
        (::setgroups(0, nullptr) != 0 || ::setgid(65534) != 0 || ::setuid(65534) != 0))
      _exit(126);
    ::execve(args[0], args.data(), env.data());
    _exit(127);
  }
  ::close(out_fd);
  ::close(err_fd);
  return Child(pid);
}

Child::Child(Child&& other) noexcept
    : pid_(other.pid_),
      done_(other.done_),
      signaled_(other.signaled_),
      status_(other.status_),
      term_signal_(other.term_signal_) {
  other.pid_ = -1;
}

Child::~Child() {
  if (pid_ > 0 && !done_) {
    ::kill(pid_, SIGKILL);
    int raw = 0;
    ::waitpid(pid_, &raw, 0);
  }
}

void Child::reap(int raw) {
  done_ = true;
  if (WIFEXITED(raw)) {
    status_ = WEXITSTATUS(raw);
  } else if (WIFSIGNALED(raw)) {
    signaled_ = true;
    term_signal_ = WTERMSIG(raw);
    status_ = 128 + term_signal_;
  }
}

bool Child::running() {
  if (done_ || pid_ <= 0) return false;
  int raw = 0;
  const pid_t r = ::waitpid(pid_, &raw, WNOHANG);
  if (r == pid_) reap(raw);
  return !done_;
}

bool Child::wait(double seconds) {
  const double end = now() + seconds;
  while (running()) {
    if (now() >= end) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

void Child::signal(int signo) {
  if (pid_ > 0 && !done_) ::kill(pid_, signo);
}

RunResult run_program(const std::vector<std::string>& argv, double timeout_s,
                      const ChildOptions& options) {
  namespace fs = std::filesystem;
  static std::atomic<int> counter{0};
  const std::string base =
      (fs::temp_directory_path() /
       ("trine_child_" + std::to_string(::getpid()) + "_" + std::to_string(counter++)))
          .string();
  RunResult r;
  const double t0 = now();
  {
    Child c = Child::start(argv, base + ".out", base + ".err", options);
    if (!c.wait(timeout_s)) {
      r.timed_out = true;
      c.signal(SIGKILL);
      c.wait(30);
    }
    r.status = c.status();
    r.killed_by_signal = c.killed_by_signal();
    r.term_signal = c.term_signal();
  }
  r.seconds = now() - t0;
  r.out = read_text(base + ".out");
  r.err = read_text(base + ".err");
  std::error_code ec;
  fs::remove(base + ".out", ec);
  fs::remove(base + ".err", ec);
  return r;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace trine::test
