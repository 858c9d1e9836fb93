#include "quant/build_pipeline.h"

#include <chrono>
#include <cmath>

#include "tokenizer/tokenizer_impl.h"

namespace kiln::quant {

namespace {

Result<std::unique_ptr<Tokenizer>> source_tokenizer(const plan::ModelSource& source) {
  if (!source.tokenizer) {
    return failed_precondition(source.dir +
                               " has no tokenizer.json or vocab.txt: calibration texts cannot "
                               "be tokenized");
  }
  const auto& t = *source.tokenizer;
  Result<tokenizer::TokenizerParts> parts =
      t.kind == plan::TokenizerRecord::Kind::kJson
          ? tokenizer::parse_tokenizer_json(t.text)
          : tokenizer::bert_parts_from_vocab(t.text, t.lowercase);
  if (!parts.ok()) return parts.status().with_context(source.dir + " tokenizer");
  return tokenizer::make_tokenizer(std::move(parts).value());
}

int64_t max_length(const plan::ModelSource& source) {
  int64_t limit = source.config.max_sequence_length();
  if (source.config.task == Task::kEmbed && source.pooling.max_seq_length > 0) {
    limit = std::min(limit, source.pooling.max_seq_length);
  }
  return limit;
}

// Calibration and held-out lines: a separate file, or every fifth calibration line.
struct Texts {
  std::vector<std::string> calibration, validation;
  std::vector<int64_t> calibration_lines, validation_lines;  // line numbers in their files
  std::string validation_file;
};

Result<Texts> read_texts(const OptimizeOptions& o) {
  Texts t;
  if (!o.validation.empty()) {
    t.validation_file = o.validation;
    KILN_ASSIGN_OR_RETURN(t.calibration,
                          read_calibration_lines(o.calibration, o.calibration_samples,
                                                 kMinCalibrationLines, &t.calibration_lines));
    KILN_ASSIGN_OR_RETURN(t.validation, read_calibration_lines(o.validation, o.validation_samples,
                                                               4, &t.validation_lines));
    return t;
  }
  // Every fifth line is held out: enough lines for both minimums.
  constexpr int64_t kMinHeldOut = 4;
  const int64_t min_lines = kMinCalibrationLines + kMinHeldOut;
  t.validation_file = o.calibration;
  std::vector<int64_t> numbers;
  auto read = read_calibration_lines(o.calibration, o.calibration_samples + o.validation_samples,
                                     min_lines, &numbers);
  if (!read.ok()) {
    return read.status().code() == StatusCode::kInvalidArgument
               ? invalid_argument(read.status().message() +
                                  " (every fifth line is held out for accuracy checks; or give "
                                  "--validation FILE)")
               : read.status();
  }
  std::vector<std::string> lines = std::move(read).value();
  for (size_t i = 0; i < lines.size(); ++i) {
    const bool held_out =
        i % 5 == 4 && static_cast<int64_t>(t.validation.size()) < o.validation_samples;
    if (held_out) {
      t.validation.push_back(std::move(lines[i]));
      t.validation_lines.push_back(numbers[i]);
    } else if (static_cast<int64_t>(t.calibration.size()) < o.calibration_samples) {
      t.calibration.push_back(std::move(lines[i]));
      t.calibration_lines.push_back(numbers[i]);
    }
  }
  return t;
}

bool needs_calibration(const OptimizeOptions& o) {
  return o.quantize.smoothquant_alpha >= 0 || o.max_accuracy_drop >= 0 ||
         (o.prune && o.prune_method == PruneMethod::kSparseGpt) ||
         (o.precision == Precision::kInt8 &&
          o.quantize.scaling == quant::ActivationScaling::kStaticPerTensor);
}

}  // namespace

Status check_options(const OptimizeOptions& o) {
  const bool int8 = o.precision == Precision::kInt8;
  if (int8 && o.device != "cpu") {
    return invalid_argument("--precision int8 is for --device cpu; " + o.device +
                            " plans are fp16, bf16 or fp8");
  }
  // FP8 scales its activations per token at run time: no calibration (refused below with the
  // other calibration options for every precision but int8).
  if (o.precision == Precision::kFp8 && o.device != "cuda") {
    return invalid_argument("--precision fp8 is for --device cuda");
  }
  if (!int8) {
    if (o.quantize.smoothquant_alpha >= 0)
      return invalid_argument("--smoothquant needs --precision int8");
    if (o.max_accuracy_drop >= 0)
      return invalid_argument("--max-accuracy-drop needs --precision int8");
    if (o.quantize.gelu_clip > 0) return invalid_argument("--gelu-clip needs --precision int8");
    if (o.calibrator_given) return invalid_argument("--calibrator needs --precision int8");
  }
  if (o.quantize.smoothquant_alpha > 1 || std::isnan(o.quantize.smoothquant_alpha)) {
    return invalid_argument("--smoothquant ALPHA must be in [0, 1]");
  }
  if (o.max_accuracy_drop >= 1 || std::isnan(o.max_accuracy_drop)) {
    return invalid_argument("--max-accuracy-drop must be in [0, 1)");
  }
  if (!(o.quantize.gelu_clip >= 0) || std::isinf(o.quantize.gelu_clip)) {
    return invalid_argument("--gelu-clip must be a finite value >= 0");
  }
  if (o.calibrator_given && o.quantize.scaling == quant::ActivationScaling::kDynamicPerToken) {
    return invalid_argument(
        "--calibrator picks static activation scales; it does nothing with dynamic per-token "
        "scales (--activation-scales dynamic)");
  }
  if (o.fallback != Precision::kBF16 && o.fallback != Precision::kF32) {
    return invalid_argument("--fallback-precision must be bf16 or fp32");
  }
  if (o.calibration_samples < kMinCalibrationLines) {
    return invalid_argument("--calibration-samples must be at least " +
                            std::to_string(kMinCalibrationLines));
  }
  if (o.validation_samples < 4) return invalid_argument("--validation-samples must be at least 4");
  if (!o.validation.empty() && o.calibration.empty()) {
    return invalid_argument("--validation needs --calibration");
  }
  if (o.calibration.empty() && needs_calibration(o)) {
    std::string why = o.quantize.smoothquant_alpha >= 0 ? "--smoothquant"
                      : o.max_accuracy_drop >= 0        ? "--max-accuracy-drop"
                      : o.prune                         ? "--sparsity 2:4 with sparsegpt pruning"
                                                        : "static activation scales";
    return invalid_argument(why +
                            " needs calibration texts: --calibration FILE (one sample per "
                            "line)");
  }
  return ok_status();
}

Result<BuildReport> optimize(plan::ModelSource* source, const OptimizeOptions& o,
                             plan::BuildOptions* build) {
  KILN_RETURN_IF_ERROR(check_options(o));
  const auto start = std::chrono::steady_clock::now();
  auto say = [&](const std::string& line) {
    if (o.progress) o.progress(line);
  };
  BuildReport report;
  build->precision = o.precision;
  // Calibration, pruning and sensitivity observe FP32 runs: they run on the CPU whatever the
  // target; the plan's own accuracy is measured on the target device.
  TrialModel model;
  KILN_ASSIGN_OR_RETURN(model.device, backend::find_device("cpu"));
  TrialModel target = model;
  KILN_ASSIGN_OR_RETURN(target.device, backend::find_device(o.device));
  model.config = source->config;
  model.pooling = source->pooling;
  model.num_threads = o.num_threads;
  report.output_kind =
      source->config.task == Task::kEmbed ? "pooled embedding" : "last hidden state";

  // Texts.
  CalibrationSet calib, valid;
  ModelOutputs original;  // the FP32 model's held-out outputs
  if (!o.calibration.empty()) {
    KILN_ASSIGN_OR_RETURN(auto tok, source_tokenizer(*source));
    KILN_ASSIGN_OR_RETURN(Texts texts, read_texts(o));
    const TokenLimits limits{max_length(*source), source->config.vocab_size,
                             source->config.type_vocab_size};
    KILN_ASSIGN_OR_RETURN(calib, tokenize_lines(*tok, texts.calibration, limits, 8192,
                                                o.calibration, &texts.calibration_lines));
    KILN_ASSIGN_OR_RETURN(valid, tokenize_lines(*tok, texts.validation, limits, 8192,
                                                texts.validation_file, &texts.validation_lines));
    report.calibration = o.calibration;
    report.calibration_texts = calib.texts;
    report.calibration_tokens = calib.tokens;
    report.truncated = calib.truncated + valid.truncated;
    report.validation = o.validation.empty() ? o.calibration + " (every fifth line)" : o.validation;
    report.validation_texts = valid.texts;
    say("calibration: " + std::to_string(calib.texts) + " texts, " + std::to_string(calib.tokens) +
        " tokens; held out: " + std::to_string(valid.texts) + " texts");
    KILN_ASSIGN_OR_RETURN(auto exec, compile_trial(model, source->weights, nullptr));
    KILN_ASSIGN_OR_RETURN(original, run_outputs(*exec, model, valid));
  }
  const bool have_texts = !o.calibration.empty();

  // 1. Pruning.
  ModelOutputs reference = original;  // what quantization is measured against
  if (o.prune) {
    say(std::string("pruning to 2:4 (") + std::string(prune_method_name(o.prune_method)) + ")");
    KILN_ASSIGN_OR_RETURN(report.pruned,
                          prune_model(model, &source->weights, o.prune_method,
                                      have_texts ? &calib : nullptr, {}, &build->sparsity));
    report.pruning = o.prune_method;
    if (have_texts) {
      KILN_ASSIGN_OR_RETURN(auto exec, compile_trial(model, source->weights, nullptr));
      KILN_ASSIGN_OR_RETURN(reference, run_outputs(*exec, model, valid));
      report.pruned_fp32 = compare_outputs(original, reference);
    }
  }

  // 2. INT8 calibration.
  if (o.precision == Precision::kInt8) {
    quant::ModelQuant q;
    if (have_texts) {
      say("int8 calibration");
      KILN_ASSIGN_OR_RETURN(Int8Calibration cal,
                            calibrate_int8(model, source->weights, calib, o.quantize));
      q = cal.quant;
      report.int8 = std::move(cal);
    } else {
      q = dynamic_int8(static_cast<int>(source->weights.layers.size()), o.quantize.gelu_clip);
    }
    // 3. Mixed precision.
    if (o.max_accuracy_drop >= 0) {
      MixedOptions mo;
      mo.max_drop = o.max_accuracy_drop;
      mo.fallback = o.fallback;
      mo.progress = o.progress;
      KILN_ASSIGN_OR_RETURN(MixedPrecision mixed, choose_mixed_precision(model, source->weights, q,
                                                                         valid, reference, mo));
      q = mixed.quant;
      report.mixed = std::move(mixed);
    }
    source->weights = apply_smoothing(source->weights, q);
    build->quant = std::make_shared<const quant::ModelQuant>(std::move(q));
  }

  // The plan's model against the original, on the held-out texts.
  if (have_texts) {
    target.config = model.config;
    target.pooling = model.pooling;
    target.num_threads = model.num_threads;
    KILN_ASSIGN_OR_RETURN(auto exec,
                          compile_trial(target, source->weights, build->quant, o.precision));
    KILN_ASSIGN_OR_RETURN(ModelOutputs out, run_outputs(*exec, target, valid));
    report.final_accuracy = compare_outputs(original, out);
  }
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return report;
}

}  // namespace kiln::quant
