// Subcommands of the `kiln` tool; each registers its options on the app and sets the function
// main() runs when that subcommand is chosen.
#pragma once

#include <functional>

#include <CLI/CLI.hpp>

namespace kiln::cli {

/// What a chosen subcommand runs; returns the process exit code.
using Runner = std::function<int()>;

/// `kiln infer`: run a model on texts, JSON lines out.
void register_infer(CLI::App& app, Runner* runner);
/// `kiln inspect`: describe a model directory or a plan file.
void register_inspect(CLI::App& app, Runner* runner);
/// `kiln build`: compile a model directory into a plan file.
void register_build(CLI::App& app, Runner* runner);
/// `kiln eval`: accuracy of an optimized model against its FP32 reference on held-out data.
void register_eval(CLI::App& app, Runner* runner);
/// `kiln bench`: throughput and latency over a batch x sequence-length grid.
void register_bench(CLI::App& app, Runner* runner);
/// `kiln serve`: the Triton-compatible inference server.
void register_serve(CLI::App& app, Runner* runner);

}  // namespace kiln::cli
