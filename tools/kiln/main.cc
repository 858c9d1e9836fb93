// `kiln`: the command-line entry point. Wiring only; each subcommand lives in its own file.
#include <cstdio>

#include "commands.h"

int main(int argc, char** argv) {
  CLI::App app{"kiln: fast inference for BERT-family encoders"};
  app.require_subcommand(1);
  kiln::cli::Runner runner;
  kiln::cli::register_infer(app, &runner);
  kiln::cli::register_inspect(app, &runner);
  kiln::cli::register_build(app, &runner);
  kiln::cli::register_eval(app, &runner);
  kiln::cli::register_bench(app, &runner);
  kiln::cli::register_serve(app, &runner);
  CLI11_PARSE(app, argc, argv);
  return runner ? runner() : 1;
}
