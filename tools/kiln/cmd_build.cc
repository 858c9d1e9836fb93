// `kiln build MODEL_DIR -o model.plan --precision fp32|bf16|int8`: compiles a Hugging Face
// model directory into a plan file (src/plan/): weights in their target precision, pre-packed
// for this machine's kernels, with the tokenizer, model config and quantization decisions.
#include <chrono>
#include <cstdio>
#include <string>

#include "commands.h"
#include "options.h"
#include "plan/plan_builder.h"

namespace kiln::cli {

namespace {

struct BuildFlags {
  std::string dir;
  std::string output;
  std::string precision = "fp32";
  std::string device = "cpu";
  bool portable = false;
  int threads = 0;
};

int run(const BuildFlags& f) {
  const auto start = std::chrono::steady_clock::now();
  plan::BuildOptions options;
  options.device = f.device;
  options.prepack = !f.portable;
  options.num_threads = f.threads;
  if (!parse_precision(f.precision, &options.precision)) {
    std::fprintf(stderr, "error: unknown precision \"%s\" (fp32, bf16, int8)\n",
                 f.precision.c_str());
    return 1;
  }
  auto source = plan::read_model_dir(f.dir);
  if (!source.ok()) return fail(source.status());
  // Quantization passes (calibration, SmoothQuant, mixed precision, 2:4 pruning) go here: they
  // set options.quant and options.sparsity and may rewrite source->weights.
  Status s = plan::write_plan(*source, options, f.output);
  if (!s.ok()) return fail(s);
  // Report what was written, as the loader sees it.
  EngineOptions eo;
  eo.device = f.device;
  eo.num_threads = f.threads;
  auto engine = Engine::load(f.output, eo);
  if (!engine.ok()) return fail(engine.status().with_context("reloading " + f.output));
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("wrote %s: %s %s, %lld layers, %s weights, in %.1f s\n", f.output.c_str(),
              std::string(architecture_name((*engine)->info().architecture)).c_str(),
              std::string(task_name((*engine)->info().task)).c_str(),
              static_cast<long long>((*engine)->info().num_layers),
              f.portable ? "portable row-major" : "pre-packed", seconds);
  return 0;
}

}  // namespace

void register_build(CLI::App& app, Runner* runner) {
  auto flags = std::make_shared<BuildFlags>();
  CLI::App* cmd = app.add_subcommand("build", "Compile a model directory into a plan file");
  cmd->add_option("model_dir", flags->dir, "Hugging Face model directory")->required();
  cmd->add_option("-o,--output", flags->output, "Plan file to write")->required();
  cmd->add_option("--precision", flags->precision, "fp32, bf16 or int8 (every layer)")
      ->capture_default_str();
  cmd->add_option("--device", flags->device, "Device the plan is built for")->capture_default_str();
  cmd->add_flag("--portable", flags->portable,
                "Store weights row-major instead of pre-packed: loads on any machine with the "
                "precision's features, but packs at every load");
  cmd->add_option("--threads", flags->threads, "CPU threads for packing (0 = all cores)")
      ->capture_default_str();
  cmd->callback([flags, runner] { *runner = [flags] { return run(*flags); }; });
}

}  // namespace kiln::cli
