// `kiln build MODEL_DIR -o model.plan [options]`: compiles a Hugging Face model directory into a
// plan file (src/plan/): optionally pruned to 2:4 and quantized to INT8 with calibration,
// SmoothQuant and mixed precision (src/quant/), weights in their target precision and
// pre-packed for this machine's kernels, with the tokenizer and model config.
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>

#include "commands.h"
#include "options.h"
#include "plan/plan_builder.h"
#include "quant/build_pipeline.h"

namespace kiln::cli {

namespace {

struct BuildFlags {
  std::string dir;
  std::string output;
  std::string precision = "fp32";
  std::string device = "cpu";
  bool portable = false;
  bool no_autotune = false;
  int64_t tune_max_tokens = 65536;
  bool fast_gelu = false;
  std::string base;
  int threads = 0;
  std::string calibration, validation;
  int64_t calibration_samples = 512, validation_samples = 128;
  std::string calibrator;  // empty = not given (max)
  double percentile = 99.99;
  std::string activation_scales;  // empty = static when --calibrator is given, else dynamic
  double smoothquant = -1;
  double gelu_clip = 0;
  double max_accuracy_drop = -1;
  std::string fallback = "bf16";
  std::string sparsity;
  std::string prune_method = "sparsegpt";
  std::string report;
  bool quiet = false;
};

// Flags into OptimizeOptions; false after printing an error.
bool to_options(const BuildFlags& f, quant::OptimizeOptions* o) {
  auto bad = [](const std::string& what) {
    std::fprintf(stderr, "error: %s\n", what.c_str());
    return false;
  };
  o->device = f.device;
  o->num_threads = f.threads;
  if (!parse_precision(f.precision, &o->precision)) {
    return bad("unknown precision \"" + f.precision + "\" (fp32, bf16, int8, fp16, fp8)");
  }
  o->calibration = f.calibration;
  o->validation = f.validation;
  o->calibration_samples = f.calibration_samples;
  o->validation_samples = f.validation_samples;
  o->calibrator_given = !f.calibrator.empty();
  if (o->calibrator_given &&
      !quant::parse_calibrator(f.calibrator, &o->quantize.calibrator.method)) {
    return bad("unknown calibrator \"" + f.calibrator + "\" (max, percentile, entropy, mse)");
  }
  o->quantize.calibrator.percentile = f.percentile;
  if (f.activation_scales.empty()) {
    o->quantize.scaling = o->calibrator_given ? quant::ActivationScaling::kStaticPerTensor
                                              : quant::ActivationScaling::kDynamicPerToken;
  } else if (f.activation_scales == "static") {
    o->quantize.scaling = quant::ActivationScaling::kStaticPerTensor;
  } else if (f.activation_scales == "dynamic") {
    o->quantize.scaling = quant::ActivationScaling::kDynamicPerToken;
  } else {
    return bad("--activation-scales must be static or dynamic");
  }
  o->quantize.smoothquant_alpha = static_cast<float>(f.smoothquant);
  o->quantize.gelu_clip = static_cast<float>(f.gelu_clip);
  o->max_accuracy_drop = f.max_accuracy_drop;
  if (!parse_precision(f.fallback, &o->fallback)) {
    return bad("unknown fallback precision \"" + f.fallback + "\" (bf16, fp32)");
  }
  if (!f.sparsity.empty() && f.sparsity != "2:4") {
    return bad("--sparsity supports 2:4 only, got \"" + f.sparsity + "\"");
  }
  o->prune = !f.sparsity.empty();
  if (!quant::parse_prune_method(f.prune_method, &o->prune_method)) {
    return bad("unknown --prune-method \"" + f.prune_method + "\" (sparsegpt, magnitude)");
  }
  return true;
}

int run(const BuildFlags& f) {
  const auto start = std::chrono::steady_clock::now();
  quant::OptimizeOptions oo;
  if (!to_options(f, &oo)) return 1;
  Status checked = quant::check_options(oo);
  if (!checked.ok()) return fail(checked);
  if (!f.quiet) {
    oo.progress = [start](const std::string& line) {
      const double t =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      std::fprintf(stderr, "[%5.1f s] %s\n", t, line.c_str());
    };
  }
  auto source = plan::read_model_dir(f.dir, f.base);
  if (!source.ok()) return fail(source.status());
  plan::BuildOptions options;
  options.device = f.device;
  options.prepack = !f.portable;
  options.num_threads = f.threads;
  options.autotune = !f.no_autotune;
  options.autotune_max_tokens = f.tune_max_tokens;
  options.fast_gelu = f.fast_gelu;
  auto report = quant::optimize(&*source, oo, &options);
  if (!report.ok()) return fail(report.status());
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
  std::cout << quant::format_build_report(*report);
  std::printf("wrote %s: %s %s, %lld layers, %s, %s weights, in %.1f s\n", f.output.c_str(),
              std::string(architecture_name((*engine)->info().architecture)).c_str(),
              std::string(task_name((*engine)->info().task)).c_str(),
              static_cast<long long>((*engine)->info().num_layers),
              plan::precision_summary(options.precision,
                                      options.quant ? *options.quant : quant::ModelQuant())
                  .c_str(),
              f.portable ? "portable row-major" : "pre-packed", seconds);
  if (!f.report.empty()) {
    std::ofstream out(f.report);
    out << quant::build_report_json(*report) << "\n";
    if (!out) return fail(data_loss("cannot write the report to " + f.report));
  }
  return 0;
}

}  // namespace

void register_build(CLI::App& app, Runner* runner) {
  auto flags = std::make_shared<BuildFlags>();
  CLI::App* cmd = app.add_subcommand("build", "Compile a model directory into a plan file");
  cmd->footer(
      "INT8: by default every layer quantizes its input per token at run time (dynamic);\n"
      "--activation-scales static (implied by --calibrator) uses one calibrated scale per\n"
      "layer instead, chosen by the calibrator on the FP32 model's activations over\n"
      "--calibration texts. SmoothQuant, mixed precision and SparseGPT also need them.\n"
      "Accuracy during the build is measured on held-out lines (every fifth\n"
      "calibration line, or --validation): the cosine of the model's output (pooled embedding\n"
      "for embedding models, last hidden state otherwise) to the FP32 model.\n"
      "Example: kiln build var/models/all-MiniLM-L6-v2 -o minilm.plan --precision int8 \\\n"
      "           --calibration var/data/calib_squad_train.txt --smoothquant 0.5\n");
  cmd->add_option("model_dir", flags->dir, "Hugging Face model directory")->required();
  cmd->add_option("-o,--output", flags->output, "Plan file to write")->required();
  cmd->add_option("--precision", flags->precision,
                  "fp32, bf16 or int8 (--device cpu); fp16, bf16 or fp8 (--device cuda)")
      ->capture_default_str();
  cmd->add_option("--device", flags->device, "Device the plan is built for")->capture_default_str();
  cmd->add_option("--base", flags->base,
                  "Base model of a LoRA adapter directory (default: the one its "
                  "adapter_config.json names); the adapter is merged into the plan");
  cmd->add_flag("--portable", flags->portable,
                "Store weights row-major instead of pre-packed: loads on any machine with the "
                "precision's features, but packs at every load");
  cmd->add_flag("--no-autotune", flags->no_autotune,
                "--device cuda: keep cuBLASLt's heuristic GEMM algorithms instead of timing "
                "every candidate per layer shape and token bucket on this GPU");
  cmd->add_option("--tune-max-tokens", flags->tune_max_tokens,
                  "--device cuda: largest batch (in tokens) the GEMMs are tuned for; larger "
                  "batches use the heuristic")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 17))
      ->capture_default_str();
  cmd->add_flag("--fast-gelu", flags->fast_gelu,
                "--device cuda: run erf GELU as its tanh approximation fused into the FFN-in "
                "GEMM, as TensorRT's BERT plugins do (differences ~1e-3)");
  cmd->add_option("--threads", flags->threads, "CPU threads (0 = all cores)")
      ->capture_default_str();
  cmd->add_option("--calibration", flags->calibration,
                  "Calibration texts, one sample per line (TAB separates a text pair)");
  cmd->add_option("--validation", flags->validation,
                  "Held-out texts for accuracy during the build (default: every fifth "
                  "calibration line)");
  cmd->add_option("--calibration-samples", flags->calibration_samples, "Calibration lines used")
      ->capture_default_str();
  cmd->add_option("--validation-samples", flags->validation_samples, "Held-out lines used")
      ->capture_default_str();
  cmd->add_option("--calibrator", flags->calibrator,
                  "Static scale threshold: max, percentile, entropy (KL, 2048 bins) or mse "
                  "(default max)");
  cmd->add_option("--percentile", flags->percentile,
                  "Percentile of |x| for --calibrator percentile")
      ->check(CLI::Range(0.0, 100.0))
      ->capture_default_str();
  cmd->add_option("--activation-scales", flags->activation_scales,
                  "dynamic (per token at run time, the default) or static (one calibrated scale "
                  "per layer; the default when --calibrator is given)");
  cmd->add_option("--smoothquant", flags->smoothquant,
                  "SmoothQuant migration strength ALPHA in [0, 1]")
      ->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--gelu-clip", flags->gelu_clip,
                  "Clip the GELU output to [-X, X] before INT8 ffn_out (TensorRT's BERT demo: 10)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--max-accuracy-drop", flags->max_accuracy_drop,
                  "Keep the most sensitive layers at --fallback-precision until the held-out "
                  "accuracy drop (1 - cosine to the FP32 model; with --sparsity, to the pruned "
                  "FP32 model: the budget is quantization's) is at most X")
      ->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--fallback-precision", flags->fallback, "bf16 or fp32")->capture_default_str();
  cmd->add_option("--sparsity", flags->sparsity, "2:4: prune every linear layer");
  cmd->add_option("--prune-method", flags->prune_method,
                  "sparsegpt (second-order, needs --calibration) or magnitude")
      ->capture_default_str();
  cmd->add_option("--report", flags->report, "Write the build report as JSON");
  cmd->add_flag("-q,--quiet", flags->quiet, "No progress lines");
  cmd->callback([flags, runner] { *runner = [flags] { return run(*flags); }; });
}

}  // namespace kiln::cli
