// The "kiln" backend: configuration auto-complete and request decoding (tokenization in the
// server, or token ids). Execution is in encoder_instance.cc.
#include "server/encoder_backend.h"

#include <malloc.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cstring>
#include <thread>

#include "core/mapped_file.h"
#include "plan/plan_format.h"
#include "server/backend_factories.h"
#include "server/model_config.h"
#include "server/tensor_checks.h"

namespace kiln::server {
namespace {

constexpr int64_t kDefaultMaxBatchSize = 64;
constexpr int64_t kDefaultMaxBatchTokens = 16384;

bool uses_gpu(const inference::ModelConfig& config) {
  for (const auto& g : config.instance_group()) {
    if (g.kind() == inference::ModelInstanceGroup::KIND_GPU) return true;
  }
  return false;
}

void add_input(inference::ModelConfig* c, const char* name, inference::DataType type,
               std::initializer_list<int64_t> dims) {
  auto* in = c->add_input();
  in->set_name(name);
  in->set_data_type(type);
  for (int64_t d : dims) in->add_dims(d);
  in->set_optional(true);  // TEXT or input_ids: the request gives one of them
}

void add_output(inference::ModelConfig* c, const char* name, std::initializer_list<int64_t> dims,
                inference::DataType type = inference::TYPE_FP32) {
  auto* out = c->add_output();
  out->set_name(name);
  out->set_data_type(type);
  for (int64_t d : dims) out->add_dims(d);
}

// The label names as a JSON array of strings.
std::string labels_json(const std::vector<std::string>& labels) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
  w.StartArray();
  for (const auto& l : labels) w.String(l.c_str(), static_cast<rapidjson::SizeType>(l.size()));
  w.EndArray();
  return std::string(buffer.GetString(), buffer.GetSize());
}

void auto_complete(const Engine& engine, int64_t top_k, inference::ModelConfig* c) {
  const ModelInfo& info = engine.info();
  const bool qa = info.task == Task::kQuestionAnswering && engine.tokenizer() != nullptr;
  if (c->input().empty()) {
    if (qa) {  // the application: answers from a question about a context
      add_input(c, "question", inference::TYPE_STRING, {1});
      add_input(c, "context", inference::TYPE_STRING, {1});
    }
    if (engine.tokenizer() != nullptr) {
      add_input(c, "TEXT", inference::TYPE_STRING, {1});
      add_input(c, "TEXT_PAIR", inference::TYPE_STRING, {1});
    }
    add_input(c, "input_ids", inference::TYPE_INT64, {-1});
    add_input(c, "attention_mask", inference::TYPE_INT64, {-1});
    add_input(c, "token_type_ids", inference::TYPE_INT64, {-1});
  }
  // The label names of a classifier, for clients that show them (the playground does).
  if ((info.task == Task::kSequenceClassification || info.task == Task::kTokenClassification) &&
      !info.labels.empty() && c->parameters().count("labels") == 0) {
    (*c->mutable_parameters())["labels"].set_string_value(labels_json(info.labels));
  }
  if (c->output().empty()) {
    const int64_t h = info.hidden_size;
    const int64_t labels = static_cast<int64_t>(info.labels.size());
    switch (info.task) {
      case Task::kEmbed:
        add_output(c, "embedding", {h});
        break;
      case Task::kSequenceClassification:
        add_output(c, "logits", {labels});
        add_output(c, "probabilities", {labels});
        add_output(c, "label", {1}, inference::TYPE_STRING);
        break;
      case Task::kTokenClassification:
        add_output(c, "logits", {-1, labels});
        if (engine.tokenizer() != nullptr) add_output(c, "entities", {1}, inference::TYPE_STRING);
        break;
      case Task::kQuestionAnswering:
        if (qa) {
          add_output(c, "answer", {top_k}, inference::TYPE_STRING);
          add_output(c, "score", {top_k});
          add_output(c, "start", {top_k}, inference::TYPE_INT64);
          add_output(c, "end", {top_k}, inference::TYPE_INT64);
        }
        add_output(c, "start_logits", {-1});
        add_output(c, "end_logits", {-1});
        break;
    }
    add_output(c, "last_hidden_state", {-1, h});
  }
}

Status check_declared(const Engine& engine, const inference::ModelConfig& c) {
  const Task task = engine.info().task;
  for (const auto& in : c.input()) {
    const std::string& n = in.name();
    if (n == "TEXT" || n == "TEXT_PAIR" || n == "question" || n == "context") {
      if (in.data_type() != inference::TYPE_STRING) {
        return invalid_argument("input '" + n + "' must be TYPE_STRING (BYTES)");
      }
      if (engine.tokenizer() == nullptr) {
        return invalid_argument("input '" + n + "' needs a tokenizer.json or vocab.txt");
      }
      if ((n == "question" || n == "context") && task != Task::kQuestionAnswering) {
        return invalid_argument("input '" + n + "' needs a question-answering model");
      }
    } else if (n == "input_ids" || n == "attention_mask" || n == "token_type_ids") {
      if (in.data_type() != inference::TYPE_INT64 && in.data_type() != inference::TYPE_INT32) {
        return invalid_argument("input '" + n + "' must be TYPE_INT64 or TYPE_INT32");
      }
    } else {
      return invalid_argument("input '" + n +
                              "' is not an encoder input (TEXT, TEXT_PAIR, question, context, "
                              "input_ids, attention_mask, token_type_ids)");
    }
  }
  for (const auto& out : c.output()) {
    const std::string& n = out.name();
    const inference::DataType want = encoder_output_type(n, task);
    if (want == inference::TYPE_INVALID) {
      return invalid_argument("output '" + n + "' is not produced by this " +
                              std::string(task_name(task)) + " model");
    }
    if (out.data_type() != want) {
      return invalid_argument("output '" + n + "' must be " + inference::DataType_Name(want) +
                              (want == inference::TYPE_STRING ? " (BYTES)" : ""));
    }
    if (n == "entities" && engine.tokenizer() == nullptr) {
      return invalid_argument("output 'entities' needs a tokenizer.json or vocab.txt");
    }
  }
  return ok_status();
}

}  // namespace

Result<std::unique_ptr<ModelBackend>> create_encoder_backend(const BackendContext& context,
                                                             inference::ModelConfig* config) {
  // The version folder is a Hugging Face directory, or holds a plan file (`kiln build`):
  // default_model_filename names it, else "model.plan" as for TensorRT.
  std::string dir = context.version_path;
  if (!config->default_model_filename().empty()) {
    dir += "/" + config->default_model_filename();
  } else if (core::file_exists(dir + "/" + plan::kDefaultFileName)) {
    dir += std::string("/") + plan::kDefaultFileName;
  }
  // KIND_GPU instances run on the CUDA device (validate_model_config refuses mixed kinds);
  // KIND_CPU and KIND_AUTO on the CPU. A plan's own precision applies; the parameter is for
  // Hugging Face directories (default fp32 on the CPU, fp16 on the GPU).
  EngineOptions options;
  options.num_threads = context.num_threads;
  const bool gpu = uses_gpu(*config);
  options.device = gpu ? "cuda" : "cpu";
  const std::string precision = config_parameter(*config, "precision", gpu ? "fp16" : "fp32");
  if (!parse_precision(precision, &options.precision) || options.precision == Precision::kInt8) {
    return invalid_argument("parameter precision '" + precision +
                            "': expected fp32 or bf16 (KIND_CPU), fp16, bf16 or fp8 (KIND_GPU); "
                            "INT8 comes from a plan built by `kiln build`");
  }
  // A LoRA adapter's base: parameter base_model, absolute or relative to the model's folder in
  // the repository; else the base its adapter_config.json names.
  options.base_model = config_parameter(*config, "base_model", "");
  if (!options.base_model.empty() && options.base_model.front() != '/') {
    const std::string& v = context.version_path;
    options.base_model = v.substr(0, v.find_last_of('/') + 1) + options.base_model;
  }
  // share_base: a LoRA adapter kept apart from its base, whose weights the repository's other
  // adapters of that base share (FP32, CPU).
  const std::string share = config_parameter(*config, "share_base", "false");
  if (share != "true" && share != "false") {
    return invalid_argument("parameter share_base '" + share + "': expected true or false");
  }
  options.share_base = share == "true";
  // FP8 GPU models: the smallest batch (tokens) whose linears run in FP8 (-1: the device's
  // default; 0: FP8 at every size, so results do not depend on batching). See EngineOptions.
  KILN_ASSIGN_OR_RETURN(options.fp8_min_tokens, int_parameter(*config, "fp8_min_tokens", -1, -1));
  auto loaded = Engine::load(dir, options);
#ifdef __GLIBC__
  // Loading converts and packs weights through large temporary buffers; hand the freed memory
  // back to the system instead of keeping it in malloc's arenas for the server's lifetime.
  malloc_trim(0);
#endif
  if (!loaded.ok()) return loaded.status().with_context("model '" + context.model_name + "'");
  std::shared_ptr<const Engine> engine(std::move(loaded).value());
  if (config->input().empty() && config->output().empty() && config->max_batch_size() == 0) {
    config->set_max_batch_size(kDefaultMaxBatchSize);
  }
  int64_t max_length = engine->info().max_sequence_length;
  KILN_ASSIGN_OR_RETURN(tasks::QaOptions qa, qa_options(*config, max_length));
  auto_complete(*engine, static_cast<int64_t>(qa.top_k), config);
  KILN_RETURN_IF_ERROR(check_declared(*engine, *config));
  KILN_ASSIGN_OR_RETURN(const int64_t max_tokens,
                        int_parameter(*config, "max_batch_tokens", kDefaultMaxBatchTokens, 0));
  const std::string padding = config_parameter(*config, "batch_padding", "ragged");
  if (padding != "ragged" && padding != "longest") {
    return invalid_argument("parameter batch_padding '" + padding +
                            "': expected ragged or longest (a benchmark baseline)");
  }
  return std::unique_ptr<ModelBackend>(
      new EncoderBackend(engine, *config, max_tokens, padding == "longest", qa));
}

EncoderBackend::EncoderBackend(std::shared_ptr<const Engine> engine, inference::ModelConfig config,
                               int64_t max_batch_tokens, bool pad_to_longest, tasks::QaOptions qa)
    : engine_(std::move(engine)),
      config_(std::move(config)),
      max_batch_tokens_(max_batch_tokens),
      pad_to_longest_(pad_to_longest),
      qa_(qa) {
  const ModelInfo& info = engine_->info();
  max_length_ = info.max_sequence_length;
  if (info.task == Task::kEmbed && info.pooling.max_seq_length > 0) {
    max_length_ = std::min(max_length_, info.pooling.max_seq_length);
  }
}

Result<std::unique_ptr<BackendInstance>> EncoderBackend::create_instance(int) {
  // GPU embedding instances only enqueue work from the host: they may run on the submitting
  // thread. Task heads run on the host with OpenMP (runtime/heads.cc), whose thread team would
  // then belong to each frontend thread: those keep their instance threads.
  return make_encoder_instance(engine_, config_.max_batch_size() > 0, pad_to_longest_, qa_,
                               uses_gpu(config_) && engine_->info().task == Task::kEmbed);
}

namespace {

// answer/score/start/end come from question/context requests only.
Status check_not_qa_outputs(const InferRequest& request) {
  for (const auto& o : request.outputs) {
    if (o == "answer" || o == "score" || o == "start" || o == "end") {
      return invalid_argument("output '" + o + "' needs the inputs question and context");
    }
  }
  return ok_status();
}

bool has_output(const inference::ModelConfig& c, std::string_view name) {
  for (const auto& o : c.output()) {
    if (o.name() == name) return true;
  }
  return false;
}

}  // namespace

Status EncoderBackend::prepare(PendingRequest* r) const {
  KILN_ASSIGN_OR_RETURN(r->rows, validate_request(config_, r->request));
  EncoderInputs inputs;
  const bool qa =
      find_input(r->request, "question") != nullptr || find_input(r->request, "context") != nullptr;
  const bool text = find_input(r->request, "TEXT") != nullptr;
  const bool ids = find_input(r->request, "input_ids") != nullptr;
  if (qa) {
    KILN_RETURN_IF_ERROR(prepare_qa(r, &inputs));
  } else if (text == ids) {
    return invalid_argument(text ? "give either TEXT or input_ids, not both"
                                 : "missing input: give TEXT (strings) or input_ids");
  } else {
    KILN_RETURN_IF_ERROR(text ? prepare_text(r, &inputs) : prepare_ids(r, &inputs));
  }
  r->tokens = inputs.batch.num_tokens();
  r->prepared = std::move(inputs);
  return ok_status();
}

Status EncoderBackend::prepare_text(PendingRequest* r, EncoderInputs* out) const {
  KILN_RETURN_IF_ERROR(check_not_qa_outputs(r->request));
  if (find_input(r->request, "attention_mask") || find_input(r->request, "token_type_ids")) {
    return invalid_argument("attention_mask and token_type_ids go with input_ids, not TEXT");
  }
  KILN_ASSIGN_OR_RETURN(auto texts, split_bytes(*find_input(r->request, "TEXT")));
  std::vector<std::string_view> pairs;
  if (const Tensor* pair = find_input(r->request, "TEXT_PAIR")) {
    KILN_ASSIGN_OR_RETURN(pairs, split_bytes(*pair));
    if (pairs.size() != texts.size()) {
      return invalid_argument("TEXT_PAIR has " + std::to_string(pairs.size()) +
                              " strings but TEXT has " + std::to_string(texts.size()));
    }
  }
  EncodeOptions options;
  options.max_length = static_cast<size_t>(max_length_);
  const Tokenizer& tok = *engine_->tokenizer();
  // Entities need each row's offsets; a pair's second text has no entities reported.
  const bool entities = engine_->info().task == Task::kTokenClassification && pairs.empty() &&
                        output_requested(r->request, "entities") && has_output(config_, "entities");
  for (size_t i = 0; i < texts.size(); ++i) {
    auto enc = pairs.empty() ? tok.encode(texts[i], options)
                             : tok.encode_pair(texts[i], pairs[i], options);
    if (!enc.ok()) return enc.status().with_context("TEXT[" + std::to_string(i) + "]");
    out->batch.add(enc->ids, enc->type_ids);
    if (entities) {
      out->texts.emplace_back(texts[i]);
      out->encodings.push_back(std::move(enc).value());
    }
  }
  return ok_status();
}

namespace {

// Reads element i of an INT32 or INT64 tensor.
int64_t int_at(const Tensor& t, int64_t i) {
  if (t.datatype == DataType::kInt32) {
    int32_t v;
    std::memcpy(&v, t.data + i * 4, 4);
    return v;
  }
  int64_t v;
  std::memcpy(&v, t.data + i * 8, 8);
  return v;
}

}  // namespace

Status EncoderBackend::prepare_ids(PendingRequest* r, EncoderInputs* out) const {
  KILN_RETURN_IF_ERROR(check_not_qa_outputs(r->request));
  const Tensor& ids = *find_input(r->request, "input_ids");
  const Tensor* mask = find_input(r->request, "attention_mask");
  const Tensor* types = find_input(r->request, "token_type_ids");
  const bool batching = config_.max_batch_size() > 0;
  const int64_t rows = batching ? ids.shape[0] : 1;
  const int64_t cols = ids.shape.back();
  for (const Tensor* t : {mask, types}) {
    if (t != nullptr && t->shape != ids.shape) {
      return invalid_argument("input '" + t->name + "' must have the shape of input_ids");
    }
  }
  const int64_t vocab = engine_->info().vocab_size;
  std::vector<int32_t> seq, seq_types;
  for (int64_t row = 0; row < rows; ++row) {
    seq.clear();
    seq_types.clear();
    for (int64_t col = 0; col < cols; ++col) {
      const int64_t i = row * cols + col;
      // Tokens with attention_mask 0 are padding: they are dropped, never computed.
      if (mask != nullptr && int_at(*mask, i) == 0) continue;
      const int64_t id = int_at(ids, i);
      if (id < 0 || id >= vocab) {
        return invalid_argument("input_ids[" + std::to_string(row) + "][" + std::to_string(col) +
                                "] = " + std::to_string(id) + " is outside the vocabulary [0, " +
                                std::to_string(vocab) + ")");
      }
      seq.push_back(static_cast<int32_t>(id));
      const int64_t type = types != nullptr ? int_at(*types, i) : 0;
      if (type < 0 || type > 1) {
        return invalid_argument("token_type_ids[" + std::to_string(row) + "][" +
                                std::to_string(col) + "] = " + std::to_string(type) +
                                " must be 0 or 1");
      }
      seq_types.push_back(static_cast<int32_t>(type));
    }
    if (seq.empty()) {
      return invalid_argument("row " + std::to_string(row) + " of input_ids has no tokens");
    }
    if (static_cast<int64_t>(seq.size()) > engine_->info().max_sequence_length) {
      return invalid_argument("row " + std::to_string(row) + " of input_ids has " +
                              std::to_string(seq.size()) + " tokens; the model takes at most " +
                              std::to_string(engine_->info().max_sequence_length));
    }
    out->batch.add(seq, seq_types);
  }
  return ok_status();
}

}  // namespace kiln::server
