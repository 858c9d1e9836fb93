// "kiln_search": semantic search as a model of the repository. An embedding model (any "kiln"
// embedding model directory or plan) encodes documents and queries in the server; a vector
// index (HNSW from hnswlib, or exact) holds the collection. One model, two requests:
//   QUERY (BYTES [n])      -> ids INT64 [n, k], scores FP32 [n, k], documents BYTES [n, k]
//   DOCUMENTS (BYTES [m])  -> added_ids INT64 [m]   (the collection grows; ids are positions)
// k is the request parameter top_k (default: parameter top_k, 10). The collection starts with
// the version folder's documents file (parameter documents, default documents.txt: one per
// line; .jsonl: {"text": ...} per line), if present.
#include <fstream>
#include <mutex>
#include <shared_mutex>

#include "core/json.h"
#include "core/mapped_file.h"
#include "kiln/engine.h"
#include "server/backend_factories.h"
#include "server/model_config.h"
#include "server/tensor_checks.h"
#include "server/vector_index.h"

namespace kiln::server {
namespace {

constexpr int64_t kMaxTopK = 1000;
constexpr size_t kEmbedChunk = 64;  // documents per engine run while loading

struct Collection {
  std::shared_ptr<const Engine> engine;
  VectorIndex index;
  std::vector<std::string> documents;
  mutable std::shared_mutex mutex;  // searches share; additions are exclusive
  Collection(std::shared_ptr<const Engine> e, VectorIndex::Options o)
      : engine(std::move(e)), index(static_cast<size_t>(engine->info().hidden_size), o) {}

  Result<std::vector<float>> embed(const std::vector<std::string>& texts) const {
    KILN_ASSIGN_OR_RETURN(TokenBatch batch, engine->tokenize(texts));
    RunOutputs out;
    KILN_RETURN_IF_ERROR(engine->run(batch, {.embeddings = true}, &out));
    l2_normalize_rows(out.embeddings.data(), texts.size(), index.dim());
    return std::move(out.embeddings);
  }

  Status add(std::vector<std::string> texts) {
    KILN_ASSIGN_OR_RETURN(auto rows, embed(texts));
    std::unique_lock lock(mutex);
    KILN_RETURN_IF_ERROR(index.add(rows.data(), texts.size()));
    for (auto& t : texts) documents.push_back(std::move(t));
    return ok_status();
  }
};

struct SearchInputs {
  bool query = false;
  std::vector<std::string> texts;
  int64_t top_k = 10;
};

// documents.txt: one document per line; .jsonl: {"text": "..."} per line. Empty lines skip.
Result<std::vector<std::string>> read_documents(const std::string& path) {
  std::ifstream in(path);
  if (!in) return not_found("documents file " + path + " cannot be read");
  const bool jsonl = path.size() > 6 && path.compare(path.size() - 6, 6, ".jsonl") == 0;
  std::vector<std::string> docs;
  std::string line;
  for (int64_t n = 1; std::getline(in, line); ++n) {
    if (line.empty()) continue;
    if (!jsonl) {
      docs.push_back(line);
      continue;
    }
    core::json::Document doc;
    KILN_RETURN_IF_ERROR(core::json::parse(line, path + ":" + std::to_string(n), &doc));
    auto text = core::json::get_string(doc, "text");
    if (!text.ok() || !text->has_value()) {
      return invalid_argument(path + ":" + std::to_string(n) + ": no string field \"text\"");
    }
    docs.push_back(std::move(**text));
  }
  return docs;
}

void add_tensor(inference::ModelConfig* c, bool input, const char* name, inference::DataType type,
                std::initializer_list<int64_t> dims) {
  if (input) {
    auto* t = c->add_input();
    t->set_name(name);
    t->set_data_type(type);
    for (int64_t d : dims) t->add_dims(d);
    t->set_optional(true);  // QUERY or DOCUMENTS: a request gives one of them
  } else {
    auto* t = c->add_output();
    t->set_name(name);
    t->set_data_type(type);
    for (int64_t d : dims) t->add_dims(d);
  }
}

class SearchInstance final : public BackendInstance {
 public:
  explicit SearchInstance(std::shared_ptr<Collection> c) : c_(std::move(c)) {}

  void execute(std::span<PendingRequest* const> batch, ExecutionTimes* times) override {
    const auto t0 = Clock::now();
    for (PendingRequest* r : batch) {
      const auto& in = std::any_cast<const SearchInputs&>(r->prepared);
      r->response = in.query ? search(*r, in) : add(*r, in);
    }
    times->infer_ns = static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - t0).count());
  }

 private:
  Result<InferResponse> search(const PendingRequest& r, const SearchInputs& in) const {
    KILN_ASSIGN_OR_RETURN(auto queries, c_->embed(in.texts));
    const auto n = static_cast<int64_t>(in.texts.size());
    std::shared_lock lock(c_->mutex);
    const int64_t k = std::min<int64_t>(in.top_k, static_cast<int64_t>(c_->index.size()));
    std::vector<int64_t> all_ids, ids;
    std::vector<float> all_scores, scores;
    std::vector<std::string> docs;
    for (int64_t q = 0; q < n; ++q) {
      c_->index.search(queries.data() + q * c_->index.dim(), static_cast<size_t>(k), &ids, &scores);
      for (size_t i = 0; i < ids.size(); ++i) {
        all_ids.push_back(ids[i]);
        all_scores.push_back(scores[i]);
        docs.push_back(c_->documents[static_cast<size_t>(ids[i])]);
      }
    }
    InferResponse resp;
    resp.model_name = r.request.model_name;
    resp.id = r.request.id;
    if (output_requested(r.request, "ids")) {
      resp.outputs.push_back(Tensor::owned("ids", DataType::kInt64, {n, k}, vector_bytes(all_ids)));
    }
    if (output_requested(r.request, "scores")) {
      resp.outputs.push_back(
          Tensor::owned("scores", DataType::kFp32, {n, k}, vector_bytes(all_scores)));
    }
    if (output_requested(r.request, "documents")) {
      resp.outputs.push_back(
          Tensor::owned("documents", DataType::kBytes, {n, k}, join_bytes(docs)));
    }
    return resp;
  }

  Result<InferResponse> add(const PendingRequest& r, const SearchInputs& in) const {
    KILN_ASSIGN_OR_RETURN(auto rows, c_->embed(in.texts));
    std::vector<int64_t> ids;
    {
      std::unique_lock lock(c_->mutex);
      const auto first = static_cast<int64_t>(c_->index.size());
      KILN_RETURN_IF_ERROR(c_->index.add(rows.data(), in.texts.size()));
      for (size_t i = 0; i < in.texts.size(); ++i) {
        c_->documents.push_back(in.texts[i]);
        ids.push_back(first + static_cast<int64_t>(i));
      }
    }
    InferResponse resp;
    resp.model_name = r.request.model_name;
    resp.id = r.request.id;
    resp.outputs.push_back(Tensor::owned("added_ids", DataType::kInt64,
                                         {static_cast<int64_t>(ids.size())}, vector_bytes(ids)));
    return resp;
  }

  std::shared_ptr<Collection> c_;
};

class SearchBackend final : public ModelBackend {
 public:
  SearchBackend(std::shared_ptr<Collection> c, inference::ModelConfig config, int64_t top_k)
      : c_(std::move(c)), config_(std::move(config)), top_k_(top_k) {}

  Status prepare(PendingRequest* r) const override {
    KILN_ASSIGN_OR_RETURN(r->rows, validate_request(config_, r->request));
    const Tensor* query = find_input(r->request, "QUERY");
    const Tensor* docs = find_input(r->request, "DOCUMENTS");
    if ((query == nullptr) == (docs == nullptr)) {
      return invalid_argument(query ? "give QUERY or DOCUMENTS, not both"
                                    : "missing input: QUERY (search) or DOCUMENTS (add)");
    }
    SearchInputs in;
    in.query = query != nullptr;
    KILN_ASSIGN_OR_RETURN(auto texts, split_bytes(query ? *query : *docs));
    if (texts.empty()) return invalid_argument("no texts in " + (query ? query : docs)->name);
    for (auto t : texts) in.texts.emplace_back(t);
    in.top_k = top_k_;
    if (auto it = r->request.parameters.find("top_k"); it != r->request.parameters.end()) {
      const int64_t* k = std::get_if<int64_t>(&it->second);
      if (k == nullptr || *k < 1 || *k > kMaxTopK) {
        return invalid_argument("parameter top_k must be an integer in [1, " +
                                std::to_string(kMaxTopK) + "]");
      }
      in.top_k = *k;
    }
    for (const auto& o : r->request.outputs) {
      if (in.query == (o == "added_ids")) {
        return invalid_argument("output '" + o + "' does not go with " +
                                (in.query ? "QUERY" : "DOCUMENTS"));
      }
    }
    r->prepared = std::move(in);
    return ok_status();
  }

  Result<std::unique_ptr<BackendInstance>> create_instance(int) override {
    return std::unique_ptr<BackendInstance>(new SearchInstance(c_));
  }

 private:
  std::shared_ptr<Collection> c_;
  const inference::ModelConfig config_;
  const int64_t top_k_;
};

}  // namespace

Result<std::unique_ptr<ModelBackend>> create_search_backend(const BackendContext& context,
                                                            inference::ModelConfig* config) {
  const std::string& v = context.version_path;
  const std::string model_dir = v.substr(0, v.find_last_of('/') + 1);
  std::string embedding = config_parameter(*config, "embedding_model", "");
  if (embedding.empty()) {
    return invalid_argument("parameter embedding_model (a model directory or plan) is required");
  }
  if (embedding.front() != '/') embedding = model_dir + embedding;
  if (config->max_batch_size() != 0) {
    return invalid_argument(
        "kiln_search models take max_batch_size 0: a request carries any "
        "number of queries or documents");
  }
  EngineOptions eo;
  eo.num_threads = context.num_threads;
  auto engine = Engine::load(embedding, eo);
  if (!engine.ok()) return engine.status().with_context("embedding_model");
  if ((*engine)->info().task != Task::kEmbed || (*engine)->tokenizer() == nullptr) {
    return invalid_argument("embedding_model " + embedding +
                            " must be an embedding model with a tokenizer");
  }
  VectorIndex::Options o;
  const std::string kind = config_parameter(*config, "index", "hnsw");
  if (kind != "hnsw" && kind != "exact") {
    return invalid_argument("parameter index '" + kind + "': expected hnsw or exact");
  }
  o.exact = kind == "exact";
  KILN_ASSIGN_OR_RETURN(auto m, int_parameter(*config, "hnsw_m", 16, 2, 128));
  KILN_ASSIGN_OR_RETURN(auto efc, int_parameter(*config, "hnsw_ef_construction", 200, 8, 4096));
  KILN_ASSIGN_OR_RETURN(auto efs, int_parameter(*config, "hnsw_ef_search", 256, 1, 4096));
  KILN_ASSIGN_OR_RETURN(auto top_k, int_parameter(*config, "top_k", 10, 1, kMaxTopK));
  o.m = static_cast<size_t>(m);
  o.ef_construction = static_cast<size_t>(efc);
  o.ef_search = static_cast<size_t>(efs);
  auto c =
      std::make_shared<Collection>(std::shared_ptr<const Engine>(std::move(engine).value()), o);
  const std::string docs_name = config_parameter(*config, "documents", "documents.txt");
  const std::string docs_path = v + "/" + docs_name;
  if (core::file_exists(docs_path)) {
    KILN_ASSIGN_OR_RETURN(auto docs, read_documents(docs_path));
    for (size_t lo = 0; lo < docs.size(); lo += kEmbedChunk) {
      const size_t hi = std::min(docs.size(), lo + kEmbedChunk);
      Status s = c->add({docs.begin() + static_cast<std::ptrdiff_t>(lo),
                         docs.begin() + static_cast<std::ptrdiff_t>(hi)});
      if (!s.ok()) return s.with_context(docs_path);
    }
  } else if (config_parameter(*config, "documents", "").size() > 0) {
    return not_found("parameter documents: " + docs_path + " does not exist");
  }
  if (config->input().empty()) {
    add_tensor(config, true, "QUERY", inference::TYPE_STRING, {-1});
    add_tensor(config, true, "DOCUMENTS", inference::TYPE_STRING, {-1});
  }
  if (config->output().empty()) {
    add_tensor(config, false, "ids", inference::TYPE_INT64, {-1, -1});
    add_tensor(config, false, "scores", inference::TYPE_FP32, {-1, -1});
    add_tensor(config, false, "documents", inference::TYPE_STRING, {-1, -1});
    add_tensor(config, false, "added_ids", inference::TYPE_INT64, {-1});
  }
  for (const auto& in : config->input()) {
    if ((in.name() != "QUERY" && in.name() != "DOCUMENTS") ||
        in.data_type() != inference::TYPE_STRING) {
      return invalid_argument("input '" + in.name() +
                              "': kiln_search takes QUERY and DOCUMENTS, TYPE_STRING");
    }
  }
  return std::unique_ptr<ModelBackend>(new SearchBackend(c, *config, top_k));
}

}  // namespace kiln::server
