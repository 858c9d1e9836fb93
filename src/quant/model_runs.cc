#include "quant/model_runs.h"

#include <algorithm>

#include "runtime/heads.h"

namespace kiln::quant {

namespace {

backend::EncoderInputs inputs_of(const TokenBatch& b, const model::ModelConfig& config) {
  backend::EncoderInputs in;
  in.ids = b.ids.data();
  in.type_ids = config.type_vocab_size > 0 && !b.type_ids.empty() ? b.type_ids.data() : nullptr;
  in.cu_seqlens = b.cu_seqlens.data();
  in.num_sequences = b.num_sequences();
  in.num_tokens = b.num_tokens();
  return in;
}

}  // namespace

Result<std::unique_ptr<backend::EncoderExecutor>> compile_trial(
    const TrialModel& model, const model::EncoderWeights& weights,
    std::shared_ptr<const quant::ModelQuant> quant, Precision precision) {
  backend::ExecutorOptions eo;
  eo.precision = precision;
  eo.quant = std::move(quant);
  eo.num_threads = model.num_threads;
  eo.fp8_min_tokens = 0;  // an FP8 trial measures FP8 at every batch size
  return model.device->compile(model.config, weights, eo);
}

Status observe(const backend::EncoderExecutor& executor, const TrialModel& model,
               const CalibrationSet& set, const backend::LinearObserver& observer) {
  std::vector<float> hidden;
  for (const TokenBatch& b : set.batches) {
    hidden.resize(static_cast<size_t>(b.num_tokens() * model.config.hidden_size));
    KILN_RETURN_IF_ERROR(
        executor.run_observed(inputs_of(b, model.config), hidden.data(), observer));
  }
  return ok_status();
}

Result<ModelOutputs> run_outputs(const backend::EncoderExecutor& executor, const TrialModel& model,
                                 const CalibrationSet& set) {
  const int64_t h = model.config.hidden_size;
  const bool pooled = model.config.task == Task::kEmbed;
  ModelOutputs out;
  out.width = h;
  std::vector<float> hidden;
  for (const TokenBatch& b : set.batches) {
    hidden.resize(static_cast<size_t>(b.num_tokens() * h));
    KILN_RETURN_IF_ERROR(executor.run(inputs_of(b, model.config), hidden.data()));
    if (pooled) {
      const size_t at = out.rows.size();
      out.rows.resize(at + static_cast<size_t>(b.num_sequences() * h));
      runtime::pool(hidden.data(), b.cu_seqlens.data(), b.num_sequences(), h, model.pooling,
                    out.rows.data() + at);
    } else {
      out.rows.insert(out.rows.end(), hidden.begin(), hidden.end());
    }
  }
  return out;
}

CosineStats compare_outputs(const ModelOutputs& reference, const ModelOutputs& candidate) {
  const int64_t n = std::min(reference.count(), candidate.count());
  return cosine_stats(
      row_cosines(reference.rows.data(), candidate.rows.data(), n, reference.width));
}

}  // namespace kiln::quant
