// Child processes for tests that need more control than run_trine: an argument vector (no
// shell), a hard time limit, running as an unprivileged user, and signals sent mid-run.
//
//   test::Child c = test::Child::start({trine, "mnist", ...}, out_file, err_file);
//   ... poll for a file, then c.kill(SIGKILL); c.wait(60);
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace trine::test {

struct ChildOptions {
  // Run as user nobody (uid/gid 65534): permission tests mean something even when the test
  // runs as root. Only possible as root; see can_drop_privileges().
  bool as_nobody = false;
  std::vector<std::string> env;  // extra "NAME=value" entries
};

// True when this process may switch a child to user nobody (it runs as root).
bool can_drop_privileges();

class Child {
 public:
  // Starts argv[0] (a path) with argv, stdout and stderr going to the given files.
  // Throws std::runtime_error when fork or exec fails.
  static Child start(const std::vector<std::string>& argv, const std::string& out_file,
                     const std::string& err_file, const ChildOptions& options = {});
  Child(Child&& other) noexcept;
  Child& operator=(Child&&) = delete;
  Child(const Child&) = delete;
  ~Child();  // a child still running is killed (SIGKILL) and reaped

  // Waits up to `seconds`; true when the child has exited (or was killed) by then.
  bool wait(double seconds);
  bool running();
  void signal(int signo);
  pid_t pid() const { return pid_; }
  // After wait() returned true: the exit status, or 128 + signal when a signal ended it.
  int status() const { return status_; }
  bool killed_by_signal() const { return signaled_; }
  int term_signal() const { return term_signal_; }

 private:
  explicit Child(pid_t pid) : pid_(pid) {}
  void reap(int raw);
  pid_t pid_ = -1;
  bool done_ = false, signaled_ = false;
  int status_ = -1, term_signal_ = 0;
};

struct RunResult {
  int status = -1;  // exit status, or 128 + signal
  bool timed_out = false;
  bool killed_by_signal = false;  // also true after a time-out (the test killed it)
  int term_signal = 0;
  double seconds = 0;
  std::string out, err;
};

// Runs argv to the end, or kills it with SIGKILL after `timeout_s` seconds.
RunResult run_program(const std::vector<std::string>& argv, double timeout_s,
                      const ChildOptions& options = {});

// Whole contents of a file ("" when it cannot be read).
std::string read_text(const std::string& path);

}  // namespace trine::test
