#include "kiln/engine.h"

#include <algorithm>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <new>

#include "backend/device.h"
#include "core/mapped_file.h"
#include "model/config.h"
#include "model/model_dir.h"
#include "model/safetensors.h"
#include "model/weights.h"
#include "plan/plan_loader.h"
#include "runtime/heads.h"

namespace kiln {

void TokenBatch::add(const std::vector<int32_t>& seq_ids,
                     const std::vector<int32_t>& seq_type_ids) {
  if (cu_seqlens.empty()) cu_seqlens.push_back(0);
  // Keep type_ids either empty or as long as ids.
  if (!seq_type_ids.empty() && type_ids.size() < ids.size()) type_ids.resize(ids.size(), 0);
  ids.insert(ids.end(), seq_ids.begin(), seq_ids.end());
  if (!seq_type_ids.empty()) {
    type_ids.insert(type_ids.end(), seq_type_ids.begin(), seq_type_ids.end());
  } else if (!type_ids.empty()) {
    type_ids.resize(ids.size(), 0);
  }
  cu_seqlens.push_back(static_cast<int32_t>(ids.size()));
}

namespace {

// Base executors shared by the adapters kept apart from them, while any of those lives.
Result<std::shared_ptr<const backend::EncoderExecutor>> shared_base_executor(
    const std::string& key,
    const std::function<Result<std::unique_ptr<backend::EncoderExecutor>>()>& compile) {
  static std::mutex mu;
  static std::map<std::string, std::weak_ptr<const backend::EncoderExecutor>> cache;
  std::lock_guard lock(mu);
  if (auto alive = cache[key].lock()) return alive;
  KILN_ASSIGN_OR_RETURN(auto compiled, compile());
  std::shared_ptr<const backend::EncoderExecutor> shared(std::move(compiled));
  cache[key] = shared;
  return shared;
}

class EngineImpl final : public Engine {
 public:
  const ModelInfo& info() const override { return info_; }
  const Tokenizer* tokenizer() const override { return tokenizer_.get(); }
  const EngineOptions& options() const override { return options_; }

  Result<TokenBatch> tokenize(const std::vector<std::string>& texts,
                              int64_t max_length) const override {
    if (tokenizer_ == nullptr) {
      return failed_precondition("model has no tokenizer.json or vocab.txt; send token ids");
    }
    int64_t limit = info_.max_sequence_length;
    if (info_.task == Task::kEmbed && info_.pooling.max_seq_length > 0) {
      limit = std::min(limit, info_.pooling.max_seq_length);
    }
    if (max_length > 0) limit = std::min(limit, max_length);
    EncodeOptions opts;
    opts.max_length = static_cast<size_t>(limit);
    TokenBatch batch;
    for (size_t i = 0; i < texts.size(); ++i) {
      auto enc = tokenizer_->encode(texts[i], opts);
      if (!enc.ok()) return enc.status().with_context("text " + std::to_string(i));
      batch.add(enc->ids, config_.type_vocab_size > 0 ? enc->type_ids : std::vector<int32_t>());
    }
    return batch;
  }

  Status run(const TokenBatch& batch, const RunOptions& what, RunOutputs* out) const override {
    KILN_RETURN_IF_ERROR(validate(batch));
    // Activations grow with the batch; running out of memory is the caller's error to handle,
    // not a crash.
    try {
      return run_validated(batch, what, out);
    } catch (const std::bad_alloc&) {
      return resource_exhausted("batch of " + std::to_string(batch.num_tokens()) +
                                " tokens does not fit in memory");
    }
  }

  Status run_validated(const TokenBatch& batch, const RunOptions& what, RunOutputs* out) const {
    const int64_t t = batch.num_tokens();
    const int64_t n = batch.num_sequences();
    const int64_t h = config_.hidden_size;
    backend::EncoderInputs in;
    in.ids = batch.ids.data();
    // Models without a token-type table (DistilBERT) take no type ids, as in transformers;
    // pair templates still produce them, so they are ignored rather than refused.
    const bool use_types = config_.type_vocab_size > 0 && !batch.type_ids.empty();
    in.type_ids = use_types ? batch.type_ids.data() : nullptr;
    in.cu_seqlens = batch.cu_seqlens.data();
    in.num_sequences = n;
    in.num_tokens = t;
    if (t > 0 && executor_->pools() && wants_only_pooled_rows(what)) {
      return run_pooled(in, what, what.head, out);
    }
    // The device writes every element: unless the caller keeps the states, the buffer is not
    // zero-filled first (hundreds of MB for large batches).
    std::vector<float> kept;
    std::unique_ptr<float[]> scratch;
    float* hidden = nullptr;
    if (what.hidden_states) {
      kept.resize(static_cast<size_t>(t * h));
      hidden = kept.data();
    } else {
      scratch =
          std::make_unique_for_overwrite<float[]>(static_cast<size_t>(std::max<int64_t>(t * h, 1)));
      hidden = scratch.get();
    }
    if (t > 0) KILN_RETURN_IF_ERROR(executor_->run(in, hidden));
    if (what.embeddings) {
      out->embeddings.assign(static_cast<size_t>(n * h), 0.0f);
      runtime::pool(hidden, in.cu_seqlens, n, h, info_.pooling, out->embeddings.data());
    }
    if (what.head) {
      if (info_.task == Task::kEmbed) {
        return failed_precondition("model " + info_.hf_class + " has no task head");
      }
      out->logits = runtime::apply_head(head_, info_.task, hidden, in.cu_seqlens, n, t, h);
      out->logits_cols = head_.out.out;
    }
    if (what.hidden_states) out->hidden_states = std::move(kept);
    return ok_status();
  }

  // Whether `what` needs one row per sequence only: embeddings, and/or a sequence classifier's
  // [CLS] rows when the embedding pooling is CLS too. Token and span heads need every state;
  // an embedding model asked for a head errs on the host path.
  bool wants_only_pooled_rows(const RunOptions& what) const {
    if (what.hidden_states) return false;
    if (!what.head) return what.embeddings;
    if (info_.task != Task::kSequenceClassification) return false;
    return !what.embeddings || info_.pooling.mode == PoolingMode::kCls;
  }

  // Embeddings and/or a sequence classifier's logits from device-pooled rows.
  Status run_pooled(const backend::EncoderInputs& in, const RunOptions& what, bool cls_head,
                    RunOutputs* out) const {
    const int64_t n = in.num_sequences, h = config_.hidden_size;
    PoolingConfig pooling = info_.pooling;
    if (cls_head) pooling = PoolingConfig{.mode = PoolingMode::kCls, .normalize = false};
    std::vector<float> rows(static_cast<size_t>(n * h));
    KILN_RETURN_IF_ERROR(executor_->run_pooled(in, pooling, rows.data()));
    if (cls_head) {
      // The head reads each sequence's first row: the pooled rows as one-token sequences.
      std::vector<int32_t> cu(static_cast<size_t>(n + 1));
      for (int64_t s = 0; s <= n; ++s) cu[static_cast<size_t>(s)] = static_cast<int32_t>(s);
      out->logits = runtime::apply_head(head_, info_.task, rows.data(), cu.data(), n, n, h);
      out->logits_cols = head_.out.out;
      if (what.embeddings) {
        // CLS pooling was asked for too (checked by the caller): the same rows, normalized
        // as configured.
        out->embeddings.assign(static_cast<size_t>(n * h), 0.0f);
        runtime::pool(rows.data(), cu.data(), n, h, info_.pooling, out->embeddings.data());
      }
      return ok_status();
    }
    out->embeddings = std::move(rows);
    return ok_status();
  }

  std::vector<std::string> describe_layers() const override {
    std::vector<std::string> lines;
    for (const auto& r : executor_->describe()) {
      lines.push_back(r.name + "  " + r.kernel + "  " + r.precision + "  " +
                      std::to_string(r.bytes) + " B");
    }
    return lines;
  }

  std::vector<std::string> profile_report() const override { return executor_->profile_report(); }

  Status load(const std::string& path, const EngineOptions& options) {
    options_ = options;
    KILN_ASSIGN_OR_RETURN(const backend::Device* device, backend::find_device(options.device));
    if (plan::is_plan_file(path)) return load_plan(path, *device);
    if (core::file_exists(path)) {
      return invalid_argument(path + " is neither a model directory nor a kiln plan");
    }
    // A checkpoint, or a LoRA adapter merged into its base here (or kept apart).
    auto dir = model::read_model_dir(path, options.base_model, options.share_base);
    if (!dir.ok()) return dir.status();
    config_ = dir->config;
    if (core::file_exists(dir->tokenizer_dir + "/tokenizer.json") ||
        core::file_exists(dir->tokenizer_dir + "/vocab.txt")) {
      KILN_ASSIGN_OR_RETURN(tokenizer_, Tokenizer::from_model_dir(dir->tokenizer_dir));
    }
    info_.pooling = dir->pooling;
    backend::ExecutorOptions eo;
    eo.precision = options.precision;
    if (dir->adapted.has_value()) {  // kept apart: this engine compiles only its small parts
      model::EncoderWeights adapted = std::move(*dir->adapted);
      info_.num_parameters = adapted.num_parameters;
      head_ = std::move(adapted.head);
      KILN_RETURN_IF_ERROR(share_base(*device, &*dir, &eo));
      return compile(*device, std::move(adapted), std::move(eo));
    }
    model::EncoderWeights weights = std::move(dir->weights);
    info_.num_parameters = weights.num_parameters;
    head_ = std::move(weights.head);  // heads run on the host; the device takes the rest
    return compile(*device, std::move(weights), std::move(eo));
  }

  // An adapter kept apart: the base's executor comes from the process-wide cache (compiled by
  // the first adapter of that base), its packed weights and tables are used in place, and only
  // the biases, norms and LoRA factors are this engine's.
  Status share_base(const backend::Device& device, model::ModelDir* dir,
                    backend::ExecutorOptions* eo) {
    model::ModelConfig base_config = config_;
    base_config.task = Task::kEmbed;
    backend::ExecutorOptions base_eo = *eo;
    base_eo.num_threads = options_.num_threads;
    std::error_code ec;
    const std::string base_path = std::filesystem::weakly_canonical(dir->base_dir, ec).string();
    const std::string key = (ec ? dir->base_dir : base_path) + "|" + options_.device + "|" +
                            std::string(precision_name(options_.precision)) + "|" +
                            std::to_string(options_.num_threads);
    KILN_ASSIGN_OR_RETURN(
        base_,
        shared_base_executor(key, [&]() -> Result<std::unique_ptr<backend::EncoderExecutor>> {
          return device.compile(base_config, std::move(dir->weights), base_eo);
        }));
    std::shared_ptr<backend::PrebuiltWeights> pre = base_->share();
    if (pre == nullptr) {
      return unimplemented("device " + options_.device +
                           " cannot share a base's weights between adapters; merge the adapter");
    }
    pre->owner = base_;
    eo->prebuilt = std::move(pre);
    eo->lora = std::make_shared<const model::LoraModules>(std::move(dir->lora));
    return ok_status();
  }

  // A plan: its precision and quantization replace options_.precision; the device uses its
  // embedding tables and packed weights in place from the mapping.
  Status load_plan(const std::string& path, const backend::Device& device) {
    KILN_ASSIGN_OR_RETURN(auto plan, plan::load_plan(path, device));
    config_ = std::move(plan.config);
    tokenizer_ = std::move(plan.tokenizer);
    info_.pooling = plan.model.pooling;
    info_.num_parameters = plan.model.num_parameters;
    head_ = std::move(plan.weights.head);
    options_.precision = plan.quant.precision;
    backend::ExecutorOptions eo;
    eo.precision = plan.quant.precision;
    eo.quant = std::make_shared<const quant::ModelQuant>(std::move(plan.quant.quant));
    eo.prebuilt = std::move(plan.prebuilt);
    eo.device_record = std::move(plan.device_record);
    Status s = compile(device, std::move(plan.weights), std::move(eo));
    return s.ok() ? s : s.with_context(path);
  }

  Status compile(const backend::Device& device, model::EncoderWeights weights,
                 backend::ExecutorOptions eo) {
    eo.num_threads = options_.num_threads;
    eo.profile = options_.profile;
    eo.fp8_min_tokens = options_.fp8_min_tokens;
    KILN_ASSIGN_OR_RETURN(executor_, device.compile(config_, std::move(weights), eo));
    info_.architecture = config_.architecture;
    info_.task = config_.task;
    info_.hf_class = config_.hf_class;
    info_.hidden_size = config_.hidden_size;
    info_.num_layers = config_.num_layers;
    info_.num_heads = config_.num_heads;
    info_.intermediate_size = config_.intermediate_size;
    info_.vocab_size = config_.vocab_size;
    info_.max_sequence_length = config_.max_sequence_length();
    info_.activation = config_.activation;
    info_.labels = config_.labels;
    info_.multi_label = config_.multi_label;
    return ok_status();
  }

 private:
  Status validate(const TokenBatch& b) const {
    const auto& cu = b.cu_seqlens;
    if (cu.empty() && b.ids.empty()) return ok_status();  // nothing added: an empty batch
    if (cu.empty() || cu.front() != 0 || cu.back() != static_cast<int32_t>(b.ids.size())) {
      return invalid_argument("batch: cu_seqlens must start at 0 and end at the token count");
    }
    if (!b.type_ids.empty() && b.type_ids.size() != b.ids.size()) {
      return invalid_argument("batch: type_ids and ids differ in length");
    }
    for (size_t s = 0; s + 1 < cu.size(); ++s) {
      const int64_t len = static_cast<int64_t>(cu[s + 1]) - cu[s];
      if (len <= 0 || len > info_.max_sequence_length) {
        return invalid_argument("batch: sequence " + std::to_string(s) + " has " +
                                std::to_string(len) + " tokens; the model accepts 1 to " +
                                std::to_string(info_.max_sequence_length));
      }
    }
    for (size_t i = 0; i < b.ids.size(); ++i) {
      if (b.ids[i] < 0 || b.ids[i] >= config_.vocab_size) {
        return invalid_argument("batch: token id " + std::to_string(b.ids[i]) +
                                " is outside the vocabulary of " +
                                std::to_string(config_.vocab_size));
      }
    }
    const int64_t types = config_.type_vocab_size;
    for (int32_t ty : types > 0 ? b.type_ids : std::vector<int32_t>()) {
      if (ty < 0 || ty >= types) {
        return invalid_argument("batch: token type id " + std::to_string(ty) + " is outside [0, " +
                                std::to_string(types) + ")");
      }
    }
    return ok_status();
  }

  EngineOptions options_;
  model::ModelConfig config_;
  model::HeadWeights head_;
  ModelInfo info_;
  std::unique_ptr<Tokenizer> tokenizer_;
  std::unique_ptr<backend::EncoderExecutor> executor_;
  std::shared_ptr<const backend::EncoderExecutor> base_;  // a shared base (share_base)
};

}  // namespace

Result<std::unique_ptr<Engine>> Engine::load(const std::string& path,
                                             const EngineOptions& options) {
  auto engine = std::make_unique<EngineImpl>();
  KILN_RETURN_IF_ERROR(engine->load(path, options));
  return std::unique_ptr<Engine>(std::move(engine));
}

}  // namespace kiln
