// Options shared by several subcommands.
#pragma once

#include <cstdio>
#include <string>

#include <CLI/CLI.hpp>

#include "kiln/engine.h"

namespace kiln::cli {

/// --device, --precision, --threads, --base.
struct EngineFlags {
  std::string device = "cpu";
  std::string precision = "fp32";
  int threads = 0;
  std::string base;
  bool share_base = false;

  void add_to(CLI::App* cmd) {
    cmd->add_option("--device", device, "Device to run on")->capture_default_str();
    cmd->add_option(
           "--precision", precision,
           "fp32, bf16 or int8 (CPU); fp16, bf16 or fp8 (CUDA) (weights converted at load)")
        ->capture_default_str();
    cmd->add_option("--threads", threads, "CPU threads per forward pass (0 = all cores)")
        ->capture_default_str();
    cmd->add_option("--base", base,
                    "Base model directory of a LoRA adapter (default: the one its "
                    "adapter_config.json names)");
    cmd->add_flag("--share-base", share_base,
                  "Keep a LoRA adapter apart from its base (updates next to the linears, FP32) "
                  "instead of merging it");
  }

  /// Parsed options, or false after printing an error.
  bool to_options(EngineOptions* out) const {
    out->device = device;
    out->num_threads = threads;
    out->base_model = base;
    out->share_base = share_base;
    if (!parse_precision(precision, &out->precision)) {
      std::fprintf(stderr, "error: unknown precision \"%s\" (fp32, bf16, int8, fp16, fp8)\n",
                   precision.c_str());
      return false;
    }
    return true;
  }
};

/// Prints "error: ..." for a failed status and returns exit code 1.
inline int fail(const Status& status) {
  std::fprintf(stderr, "error: %s\n", status.to_string().c_str());
  return 1;
}

}  // namespace kiln::cli
