// `kiln eval --model CANDIDATE [--reference DIR] [--precision P]`: accuracy of an optimized
// model against the FP32 reference on held-out real data (quant/eval.h says what is measured).
#include <chrono>
#include <filesystem>
#include <iostream>
#include <string>

#include "commands.h"
#include "options.h"
#include "quant/eval.h"

namespace kiln::cli {

namespace {

struct EvalFlags {
  std::string model;
  std::string reference;
  bool json = false;
  bool quiet = false;
  quant::EvalOptions eval;
  EngineFlags engine;
};

int run(const EvalFlags& f) {
  EngineOptions cand_options;
  if (!f.engine.to_options(&cand_options)) return 1;
  std::string reference = f.reference;
  if (reference.empty()) {
    if (!std::filesystem::is_directory(f.model)) {
      std::cerr << "error: " << f.model << " is not a model directory; name the FP32 model "
                << "it was built from with --reference DIR\n";
      return 1;
    }
    reference = f.model;
  }
  EngineOptions ref_options = cand_options;
  ref_options.precision = Precision::kF32;
  ref_options.device =
      "cpu";  // the FP32 reference runs on the CPU, whatever the candidate's device
  auto ref = Engine::load(reference, ref_options);
  if (!ref.ok()) return fail(ref.status().with_context(reference));
  // An FP8 candidate runs FP8 GEMMs at every batch size: the evaluation's batches are smaller
  // than the bound under which an FP8 engine serves with FP16 GEMMs.
  cand_options.fp8_min_tokens = 0;
  auto cand = Engine::load(f.model, cand_options);
  if (!cand.ok()) return fail(cand.status().with_context(f.model));
  quant::EvalOptions options = f.eval;
  const auto start = std::chrono::steady_clock::now();
  if (!f.quiet) {
    options.progress = [start](const std::string& line) {
      const double t =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      std::cerr << "[" << static_cast<int>(t) << " s] " << line << "\n";
    };
  }
  if (!f.quiet) {
    std::cerr << "reference " << reference << " (fp32), candidate " << f.model << " ("
              << precision_name((*cand)->options().precision) << ")\n";
  }
  auto report = quant::evaluate(**ref, **cand, options);
  if (!report.ok()) return fail(report.status());
  std::cout << (f.json ? quant::report_json(*report) + "\n" : quant::format_report(*report));
  return 0;
}

}  // namespace

void register_eval(CLI::App& app, Runner* runner) {
  auto flags = std::make_shared<EvalFlags>();
  CLI::App* cmd = app.add_subcommand(
      "eval", "Compare a model (a plan, or --precision) with its FP32 reference on held-out data");
  cmd->footer(
      "Metrics by task: cosine of hidden states (and of embeddings) to FP32; for embedding\n"
      "models retrieval top-k overlap with the FP32 ranking (SQuAD v1.1 dev questions against\n"
      "their paragraphs) and an SST-2 logistic-regression probe; SST-2 dev accuracy and argmax\n"
      "agreement for classifiers; SQuAD v1.1 dev EM/F1 for QA models. Data: var/data, written\n"
      "by scripts/prepare_eval_data.sh from ../shared/data; evaluation uses dev sets only,\n"
      "calibration uses train sets only. No STS data set is available, so no Spearman.\n");
  cmd->add_option("--model", flags->model, "Candidate: a model directory or a plan file")
      ->required();
  cmd->add_option("--reference", flags->reference,
                  "FP32 reference model directory (default: --model when it is a directory)");
  cmd->add_option("--data", flags->eval.data_dir, "Prepared evaluation data")
      ->capture_default_str();
  cmd->add_option("--retrieval-paragraphs", flags->eval.retrieval_paragraphs,
                  "SQuAD dev paragraphs in the retrieval corpus (one query each)")
      ->capture_default_str();
  cmd->add_option("--top-k", flags->eval.top_k, "Retrieval depth")->capture_default_str();
  cmd->add_option("--probe-train", flags->eval.probe_train, "SST-2 train sentences for the probe")
      ->capture_default_str();
  cmd->add_option("--qa-examples", flags->eval.qa_examples, "SQuAD dev questions (0: all)")
      ->capture_default_str();
  cmd->add_option("--batch", flags->eval.batch_texts, "Sequences per forward pass")
      ->capture_default_str();
  cmd->add_flag("--json", flags->json, "Print the report as one JSON object");
  cmd->add_flag("--quiet", flags->quiet, "No progress lines on stderr");
  flags->engine.add_to(cmd);
  cmd->callback([flags, runner] { *runner = [flags] { return run(*flags); }; });
}

}  // namespace kiln::cli
