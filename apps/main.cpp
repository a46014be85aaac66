// The `trine` program: every subcommand lives in its own apps/cmd_*.cpp file and registers
// itself with cli::Register; this file only hands over to the dispatcher.
#include "apps/cli.h"

int main(int argc, char** argv) {
  return trine::cli::main(argc, argv);
}
