// Server core: config.pbtxt parsing, unsupported fields, auto-complete, config serialization
// and version policies, through the public Server API.
#include <rapidjson/document.h>

#include <algorithm>
#include <cmath>

#include "core_test_util.h"
#include "model_config.pb.h"

namespace kiln::server::testing {
namespace {

const RepositoryEntry* find_entry(const std::vector<RepositoryEntry>& index,
                                  const std::string& name) {
  for (const auto& e : index) {
    if (e.name == name) return &e;
  }
  return nullptr;
}

std::vector<std::string> ready_versions(const Server& server, const std::string& name) {
  std::vector<std::string> out;
  for (const auto& e : server.repository_index(true)) {
    if (e.name == name) out.push_back(e.version);
  }
  std::sort(out.begin(), out.end());
  return out;
}

TEST(ServerConfig, UnsupportedFieldFailsCreateWithExitOnError) {
  TempRepo repo;
  repo.add_model("seq", identity_config("seq", "sequence_batching {}\n"));
  ServerOptions options;
  options.model_repositories = {repo.path()};
  auto server = Server::create(options);
  ASSERT_FALSE(server.ok());
  EXPECT_EQ(server.status().code(), StatusCode::kUnimplemented);
  EXPECT_NE(server.status().message().find("'sequence_batching'"), std::string::npos)
      << server.status().message();
}

TEST(ServerConfig, UnsupportedFieldMarksModelUnavailableWithoutExitOnError) {
  TempRepo repo;
  repo.add_model("opt", identity_config("opt", "optimization { priority: PRIORITY_MAX }\n"));
  repo.add_model("good", identity_config("good"));
  auto server = make_server(repo, ModelControlMode::kNone, /*exit_on_error=*/false);
  ASSERT_NE(server, nullptr);
  const auto index = server->repository_index(false);
  const RepositoryEntry* bad = find_entry(index, "opt");
  ASSERT_NE(bad, nullptr);
  EXPECT_EQ(bad->state, "UNAVAILABLE");
  EXPECT_NE(bad->reason.find("'optimization'"), std::string::npos) << bad->reason;
  const RepositoryEntry* good = find_entry(index, "good");
  ASSERT_NE(good, nullptr);
  EXPECT_EQ(good->state, "READY");
  EXPECT_EQ(good->version, "1");
  auto ready = server->model_ready("opt", "");
  ASSERT_TRUE(ready.ok()) << ready.status().to_string();
  EXPECT_FALSE(*ready);
  auto r = infer_sync(*server, identity_request("opt"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(r.status().message().find("optimization"), std::string::npos);
  // With strict readiness a model that failed to load keeps the server not ready.
  EXPECT_TRUE(server->live());
  EXPECT_FALSE(server->ready());
}

TEST(ServerConfig, NestedUnsupportedFieldIsNamedByPath) {
  TempRepo repo;
  repo.add_model("m",
                 identity_config("m", "dynamic_batching { priority_queue_policy_unknown_x: 1 }"));
  // An unknown name is a parse error; a known but unsupported nested field is named by path.
  repo.add_model("n", identity_config("n",
                                      "instance_group [ { count: 1 kind: KIND_CPU "
                                      "host_policy: \"x\" } ]\n"));
  auto server = make_server(repo, ModelControlMode::kNone, false);
  ASSERT_NE(server, nullptr);
  const auto index = server->repository_index(false);
  const RepositoryEntry* n = find_entry(index, "n");
  ASSERT_NE(n, nullptr);
  EXPECT_EQ(n->state, "UNAVAILABLE");
  EXPECT_NE(n->reason.find("'instance_group.host_policy'"), std::string::npos) << n->reason;
  const RepositoryEntry* m = find_entry(index, "m");
  ASSERT_NE(m, nullptr);
  EXPECT_NE(m->reason.find("priority_queue_policy_unknown_x"), std::string::npos) << m->reason;
}

TEST(ServerConfig, SyntaxErrorNamesTheLine) {
  TempRepo repo;
  repo.add_model("syn", "name: \"syn\"\nbackend: \"identity\"\nmax_batch_size: 8 8 {\n");
  ServerOptions options;
  options.model_repositories = {repo.path()};
  auto server = Server::create(options);
  ASSERT_FALSE(server.ok());
  EXPECT_EQ(server.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(server.status().message().find("line 3"), std::string::npos)
      << server.status().message();
}

TEST(ServerConfig, NameMismatchIsAnError) {
  TempRepo repo;
  repo.add_model("folder", identity_config("other"));
  auto server = make_server(repo, ModelControlMode::kNone, false);
  ASSERT_NE(server, nullptr);
  const RepositoryEntry* e = find_entry(server->repository_index(false), "folder");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->state, "UNAVAILABLE");
  EXPECT_NE(e->reason.find("'other'"), std::string::npos) << e->reason;
  EXPECT_NE(e->reason.find("'folder'"), std::string::npos) << e->reason;
}

TEST(ServerConfig, EncoderWithoutConfigIsAutoCompleted) {
  TempRepo repo;
  repo.add_encoder("emb", "bert", "");
  auto server = make_server(repo);
  ASSERT_NE(server, nullptr);

  auto json = server->model_config("emb", "", ConfigFormat::kJson);
  ASSERT_TRUE(json.ok()) << json.status().to_string();
  rapidjson::Document doc;
  doc.Parse(json->c_str());
  ASSERT_FALSE(doc.HasParseError()) << *json;
  EXPECT_STREQ(doc["name"].GetString(), "emb");
  EXPECT_STREQ(doc["backend"].GetString(), "kiln");
  ASSERT_TRUE(doc["max_batch_size"].IsInt()) << *json;  // a number, not "64"
  EXPECT_EQ(doc["max_batch_size"].GetInt(), 64);

  const auto& inputs = doc["input"];
  ASSERT_TRUE(inputs.IsArray());
  std::vector<std::string> names;
  for (const auto& in : inputs.GetArray()) names.push_back(in["name"].GetString());
  EXPECT_EQ(names, (std::vector<std::string>{"TEXT", "TEXT_PAIR", "input_ids", "attention_mask",
                                             "token_type_ids"}));
  EXPECT_STREQ(inputs[0]["data_type"].GetString(), "TYPE_STRING");
  ASSERT_TRUE(inputs[0]["dims"].IsArray());
  ASSERT_TRUE(inputs[0]["dims"][0].IsInt64()) << *json;
  EXPECT_EQ(inputs[0]["dims"][0].GetInt64(), 1);
  EXPECT_STREQ(inputs[2]["data_type"].GetString(), "TYPE_INT64");
  EXPECT_EQ(inputs[2]["dims"][0].GetInt64(), -1);

  const auto& outputs = doc["output"];
  ASSERT_TRUE(outputs.IsArray());
  ASSERT_GE(outputs.Size(), 1u);
  EXPECT_STREQ(outputs[0]["name"].GetString(), "embedding");
  EXPECT_STREQ(outputs[0]["data_type"].GetString(), "TYPE_FP32");
  ASSERT_TRUE(outputs[0]["dims"][0].IsInt64());
  EXPECT_EQ(outputs[0]["dims"][0].GetInt64(), 64);  // hidden_size of the tiny BERT

  auto binary = server->model_config("emb", "1", ConfigFormat::kProtoBinary);
  ASSERT_TRUE(binary.ok()) << binary.status().to_string();
  inference::ModelConfig parsed;
  ASSERT_TRUE(parsed.ParseFromString(*binary));
  EXPECT_EQ(parsed.name(), "emb");
  EXPECT_EQ(parsed.max_batch_size(), 64);
  ASSERT_EQ(parsed.input_size(), 5);
  EXPECT_EQ(parsed.input(0).name(), "TEXT");
  EXPECT_EQ(parsed.input(0).data_type(), inference::TYPE_STRING);
  ASSERT_GE(parsed.output_size(), 1);
  EXPECT_EQ(parsed.output(0).name(), "embedding");

  // Metadata agrees: batch dimension first.
  auto meta = server->model_metadata("emb", "");
  ASSERT_TRUE(meta.ok());
  ASSERT_EQ(meta->inputs.size(), 5u);
  EXPECT_EQ(meta->inputs[0].datatype, DataType::kBytes);
  EXPECT_EQ(meta->inputs[0].shape, (std::vector<int64_t>{-1, 1}));
  EXPECT_EQ(meta->outputs[0].shape, (std::vector<int64_t>{-1, 64}));
}

TEST(ServerConfig, SequenceClassifierAutoCompletesLogits) {
  TempRepo repo;
  repo.add_encoder("cls", "bert_seq_cls", "");
  auto server = make_server(repo);
  ASSERT_NE(server, nullptr);
  auto meta = server->model_metadata("cls", "1");
  ASSERT_TRUE(meta.ok()) << meta.status().to_string();
  ASSERT_GE(meta->outputs.size(), 1u);
  EXPECT_EQ(meta->outputs[0].name, "logits");
  EXPECT_EQ(meta->outputs[0].shape, (std::vector<int64_t>{-1, 3}));  // three labels
  ASSERT_GE(meta->outputs.size(), 3u);
  EXPECT_EQ(meta->outputs[1].name, "probabilities");
  EXPECT_EQ(meta->outputs[1].shape, (std::vector<int64_t>{-1, 3}));
  EXPECT_EQ(meta->outputs[2].name, "label");
  EXPECT_EQ(meta->outputs[2].datatype, DataType::kBytes);
  EXPECT_EQ(meta->outputs[2].shape, (std::vector<int64_t>{-1, 1}));
}

TEST(ServerConfig, RepositoryProblemsAreReported) {
  ServerOptions options;
  options.model_repositories = {"/nonexistent/kiln/repository"};
  auto missing = Server::create(options);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("/nonexistent/kiln/repository"), std::string::npos);

  TempRepo repo;
  repo.add_model("noversions", identity_config("noversions"), {});
  repo.add_model("nobackend", "max_batch_size: 1\n");
  auto server = make_server(repo, ModelControlMode::kNone, false);
  ASSERT_NE(server, nullptr);
  const auto index = server->repository_index(false);
  const RepositoryEntry* e = find_entry(index, "noversions");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->state, "UNAVAILABLE");
  EXPECT_NE(e->reason.find("no version folder"), std::string::npos) << e->reason;
  e = find_entry(index, "nobackend");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->state, "UNAVAILABLE");
  EXPECT_NE(e->reason.find("names no backend"), std::string::npos) << e->reason;
  EXPECT_TRUE(server->repository_index(true).empty());
}

TEST(ServerVersions, PoliciesSelectVersions) {
  TempRepo repo;
  repo.add_model("v_default", identity_config("v_default"), {1, 2, 3});
  repo.add_model("v_latest2",
                 identity_config("v_latest2", "version_policy: { latest: { num_versions: 2 } }"),
                 {1, 2, 3});
  repo.add_model("v_specific",
                 identity_config("v_specific", "version_policy: { specific: { versions: [1] } }"),
                 {1, 2, 3});
  repo.add_model("v_all", identity_config("v_all", "version_policy: { all: {} }"), {1, 2, 3});
  auto server = make_server(repo);
  ASSERT_NE(server, nullptr);
  using V = std::vector<std::string>;
  EXPECT_EQ(ready_versions(*server, "v_default"), V({"3"}));
  EXPECT_EQ(ready_versions(*server, "v_latest2"), V({"2", "3"}));
  EXPECT_EQ(ready_versions(*server, "v_specific"), V({"1"}));
  EXPECT_EQ(ready_versions(*server, "v_all"), V({"1", "2", "3"}));

  auto ready = server->model_ready("v_latest2", "2");
  ASSERT_TRUE(ready.ok());
  EXPECT_TRUE(*ready);
  ready = server->model_ready("v_latest2", "1");
  ASSERT_TRUE(ready.ok());
  EXPECT_FALSE(*ready);

  auto meta = server->model_metadata("v_all", "2");
  ASSERT_TRUE(meta.ok()) << meta.status().to_string();
  EXPECT_EQ(meta->versions, V({"2"}));
  meta = server->model_metadata("v_all", "");
  ASSERT_TRUE(meta.ok());
  EXPECT_EQ(meta->versions, V({"1", "2", "3"}));

  meta = server->model_metadata("v_default", "1");
  ASSERT_FALSE(meta.ok());
  EXPECT_EQ(meta.status().code(), StatusCode::kNotFound);
  meta = server->model_metadata("nosuch", "");
  ASSERT_FALSE(meta.ok());
  EXPECT_EQ(meta.status().code(), StatusCode::kNotFound);
  auto unknown = server->model_ready("nosuch", "");
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.status().code(), StatusCode::kNotFound);

  // A request for an explicit version runs on that version; "" runs on the highest.
  InferRequest req = identity_request("v_all");
  req.model_version = "2";
  auto r = infer_sync(*server, req);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->model_version, "2");
  r = infer_sync(*server, identity_request("v_all"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->model_version, "3");
  req.model_name = "v_default";
  req.model_version = "1";
  r = infer_sync(*server, req);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  r = infer_sync(*server, identity_request("nosuch"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);

  // Statistics exist per loaded version only.
  auto stats = server->statistics("v_all", "");
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->size(), 3u);
  auto v2 = server->statistics("v_all", "2");
  ASSERT_TRUE(v2.ok());
  ASSERT_EQ(v2->size(), 1u);
  EXPECT_EQ((*v2)[0].inference_count, 1u);
  EXPECT_EQ((*v2)[0].success.count, 1u);
}

}  // namespace
}  // namespace kiln::server::testing

namespace kiln::server::testing {
namespace {

// KIND_GPU instances run on the CUDA device: where there is no usable GPU (CI) the model fails
// to load with the device's reason; mixed kinds and GPUs other than 0 are refused by name.
TEST(ServerConfig, InstanceGroupKinds) {
  TempRepo repo;
  repo.add_encoder("gpu", "bert", "instance_group [ { count: 2 kind: KIND_GPU } ]\n");
  repo.add_encoder("mixed", "bert", "instance_group [ { kind: KIND_GPU }, { kind: KIND_CPU } ]\n");
  repo.add_encoder("gpu1", "bert", "instance_group [ { kind: KIND_GPU gpus: [ 1 ] } ]\n");
  repo.add_encoder("cpugpus", "bert", "instance_group [ { kind: KIND_CPU gpus: [ 0 ] } ]\n");
  repo.add_encoder("int8", "bert",
                   "parameters { key: \"precision\" value: { string_value: \"int8\" } }\n");
  auto server = make_server(repo, ModelControlMode::kNone, false);
  ASSERT_NE(server, nullptr);
  const auto index = server->repository_index(false);
  auto reason = [&](const std::string& name) {
    const RepositoryEntry* e = find_entry(index, name);
    EXPECT_NE(e, nullptr) << name;
    return e == nullptr ? std::string() : e->reason;
  };
  EXPECT_NE(reason("mixed").find("mixes KIND_GPU"), std::string::npos) << reason("mixed");
  EXPECT_NE(reason("gpu1").find("GPU 0 only"), std::string::npos) << reason("gpu1");
  EXPECT_NE(reason("cpugpus").find("only valid with kind KIND_GPU"), std::string::npos);
  EXPECT_NE(reason("int8").find("INT8 comes from a plan"), std::string::npos) << reason("int8");

  const RepositoryEntry* gpu = find_entry(index, "gpu");
  ASSERT_NE(gpu, nullptr);
  if (gpu->state != "READY") {
    // No usable GPU here: the CUDA device says why.
    EXPECT_NE(gpu->reason.find("cuda"), std::string::npos) << gpu->reason;
    GTEST_SKIP() << "no usable GPU: " << gpu->reason;
  }
  // On a GPU: the FP16 model answers like the CPU model (the tiny BERT's pooled output).
  repo.add_encoder("cpu", "bert", "");
  auto cpu_server = make_server(repo, ModelControlMode::kNone, false);
  ASSERT_NE(cpu_server, nullptr);
  for (const char* text : {"hello world", "the quick brown fox jumps"}) {
    auto request = [&](const std::string& model) {
      InferRequest r;
      r.model_name = model;
      r.inputs.push_back(bytes_tensor("TEXT", {1, 1}, {text}));
      return r;
    };
    auto g = infer_sync(*server, request("gpu"));
    auto c = infer_sync(*cpu_server, request("cpu"));
    ASSERT_TRUE(g.ok()) << g.status().to_string();
    ASSERT_TRUE(c.ok()) << c.status().to_string();
    ASSERT_NE(output(*g, "embedding"), nullptr);
    ASSERT_NE(output(*c, "embedding"), nullptr);
    const auto a = floats_of(*output(*g, "embedding"));
    const auto b = floats_of(*output(*c, "embedding"));
    ASSERT_EQ(a.size(), b.size());
    double ab = 0, aa = 0, bb = 0;
    for (size_t i = 0; i < a.size(); ++i) {
      ab += double(a[i]) * b[i];
      aa += double(a[i]) * a[i];
      bb += double(b[i]) * b[i];
    }
    EXPECT_GT(ab / std::sqrt(aa * bb), 0.999) << text;
  }
}

}  // namespace
}  // namespace kiln::server::testing
