// Server core: a version folder holding a plan file (`kiln build`) is served by the "kiln"
// backend exactly as the Hugging Face directory it was built from.
#include <algorithm>
#include <cmath>

#include "core_test_util.h"
#include "kiln/engine.h"
#include "plan/plan_builder.h"

namespace kiln::server::testing {
namespace {

const std::vector<std::string> kTexts = {"the quick brown fox", "hello world"};

// Builds a plan of the tiny checkpoint `tiny` (with the test vocabulary) at `to`.
void build_plan(const std::string& tiny, const fs::path& to) {
  TempRepo scratch;
  const fs::path hf = scratch.add_encoder("hf", tiny, "") / "1";
  auto source = plan::read_model_dir(hf.string());
  ASSERT_TRUE(source.ok()) << source.status().to_string();
  fs::create_directories(to.parent_path());
  Status s = plan::write_plan(*source, {}, to.string());
  ASSERT_TRUE(s.ok()) << s.to_string();
}

// The embeddings the engine computes from the plan directly.
std::vector<float> engine_embeddings(const fs::path& plan) {
  EngineOptions options;
  options.num_threads = 1;
  auto engine = Engine::load(plan.string(), options);
  EXPECT_TRUE(engine.ok()) << engine.status().to_string();
  if (!engine.ok()) return {};
  auto batch = (*engine)->tokenize(kTexts);
  EXPECT_TRUE(batch.ok());
  RunOptions what;
  what.embeddings = true;
  RunOutputs out;
  EXPECT_TRUE((*engine)->run(*batch, what, &out).ok());
  return out.embeddings;
}

InferRequest text_request(const std::string& model) {
  InferRequest r;
  r.model_name = model;
  r.inputs.push_back(bytes_tensor("TEXT", {static_cast<int64_t>(kTexts.size()), 1}, kTexts));
  return r;
}

void expect_close(const std::vector<float>& a, const std::vector<float>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], 1e-5) << i;
}

TEST(PlanServing, ModelPlanIsServedLikeTheDirectory) {
  TempRepo repo;
  const fs::path plan = repo.add_model("emb", "") / "1" / "model.plan";
  build_plan("bert", plan);
  auto server = make_server(repo);
  ASSERT_NE(server, nullptr);
  // Auto-completed from the plan's model info and tokenizer.
  auto meta = server->model_metadata("emb", "");
  ASSERT_TRUE(meta.ok()) << meta.status().to_string();
  EXPECT_EQ(meta->inputs.front().name, "TEXT");
  auto r = infer_sync(*server, text_request("emb"));
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  const Tensor* emb = output(*r, "embedding");
  ASSERT_NE(emb, nullptr);
  EXPECT_EQ(emb->shape, (std::vector<int64_t>{2, 64}));
  expect_close(floats_of(*emb), engine_embeddings(plan));
}

TEST(PlanServing, DefaultModelFilenameNamesThePlan) {
  TempRepo repo;
  const fs::path plan =
      repo.add_model("cls", "default_model_filename: \"tiny_cls.plan\"") / "1" / "tiny_cls.plan";
  build_plan("bert_seq_cls", plan);
  auto server = make_server(repo);
  ASSERT_NE(server, nullptr);
  auto r = infer_sync(*server, text_request("cls"));
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  const Tensor* logits = output(*r, "logits");
  ASSERT_NE(logits, nullptr);
  EXPECT_EQ(logits->shape, (std::vector<int64_t>{2, 3}));
}

TEST(PlanServing, CorruptPlanFailsLoadNamingTheChecksum) {
  TempRepo repo;
  const fs::path plan = repo.add_model("bad", "") / "1" / "model.plan";
  build_plan("bert", plan);
  {
    std::fstream f(plan, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(fs::file_size(plan) - 10));
    f.put('\x7f');
  }
  ServerOptions options;
  options.model_repositories = {repo.path()};
  options.threads_per_instance = 1;
  auto server = Server::create(options);
  ASSERT_FALSE(server.ok());
  EXPECT_NE(server.status().message().find("checksum mismatch"), std::string::npos)
      << server.status().message();
}

}  // namespace
}  // namespace kiln::server::testing
