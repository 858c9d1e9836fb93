// The real all-MiniLM-L6-v2 weights against transformers / sentence-transformers on 24 real
// texts (tests/golden/models/minilm_l6.*), plus the batch and thread-count invariants.
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include "core/mapped_file.h"
#include "golden_util.h"
#include "kiln/engine.h"

namespace kiln::testing {
namespace {

const std::string kModelDir = std::string(KILN_SOURCE_DIR) + "/var/models/all-MiniLM-L6-v2";
const std::string kGolden = std::string(KILN_SOURCE_DIR) + "/tests/golden/models/minilm_l6";

class MiniLmTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!core::file_exists(kModelDir + "/model.safetensors")) {
      GTEST_SKIP() << kModelDir << " is missing: run `make setup`";
    }
    auto text = core::read_file(kGolden + ".json");
    ASSERT_TRUE(text.ok());
    rapidjson::Document doc;
    doc.Parse(text->c_str());
    for (const auto& t : doc["texts"].GetArray()) texts_.emplace_back(t.GetString());
    ASSERT_EQ(texts_.size(), 24u);
  }

  std::unique_ptr<Engine> load(Precision p, int threads = 0) {
    EngineOptions o;
    o.precision = p;
    o.num_threads = threads;
    auto e = Engine::load(kModelDir, o);
    EXPECT_TRUE(e.ok()) << e.status().to_string();
    return e.ok() ? std::move(e).value() : nullptr;
  }

  std::vector<std::string> texts_;
  Golden golden_{kGolden + ".safetensors"};
};

TEST_F(MiniLmTest, TokenizerMatchesTransformers) {
  auto engine = load(Precision::kF32);
  ASSERT_NE(engine, nullptr);
  auto batch = engine->tokenize(texts_);
  ASSERT_TRUE(batch.ok()) << batch.status().to_string();
  for (size_t i = 0; i < texts_.size(); ++i) {
    const std::vector<int32_t> ids(batch->ids.begin() + batch->cu_seqlens[i],
                                   batch->ids.begin() + batch->cu_seqlens[i + 1]);
    EXPECT_EQ(ids, golden_.ints(key("input_ids", i))) << texts_[i];
  }
}

TEST_F(MiniLmTest, Fp32HiddenStatesAndEmbeddings) {
  auto engine = load(Precision::kF32);
  ASSERT_NE(engine, nullptr);
  TokenBatch batch;
  for (size_t i = 0; i < texts_.size(); ++i) {
    batch.add(golden_.ints(key("input_ids", i)), {});
  }
  RunOutputs out;
  ASSERT_TRUE(engine->run(batch, {.hidden_states = true, .embeddings = true}, &out).ok());
  double worst_rel = 0, worst_cos = 1;
  for (size_t i = 0; i < texts_.size(); ++i) {
    const double rel =
        rel_error(rows(out.hidden_states, batch.cu_seqlens[i], batch.cu_seqlens[i + 1], 384),
                  golden_.floats(key("last_hidden_state", i)));
    const auto ref = golden_.floats(key("embedding", i));
    const double cos = cosine(out.embeddings.data() + i * 384, ref.data(), 384);
    EXPECT_LE(rel, 1e-4) << texts_[i];
    EXPECT_GE(cos, 0.99999) << texts_[i];
    worst_rel = std::max(worst_rel, rel);
    worst_cos = std::min(worst_cos, cos);
  }
  std::printf("MiniLM FP32: worst hidden-state relative error %.2e, worst cosine %.8f\n", worst_rel,
              worst_cos);
}

TEST_F(MiniLmTest, Bf16Embeddings) {
  auto engine = load(Precision::kBF16);
  if (engine == nullptr) GTEST_SKIP() << "BF16 unsupported on this CPU";
  auto batch = engine->tokenize(texts_);
  ASSERT_TRUE(batch.ok());
  RunOutputs out;
  ASSERT_TRUE(engine->run(*batch, {.embeddings = true}, &out).ok());
  double worst = 1;
  for (size_t i = 0; i < texts_.size(); ++i) {
    const auto ref = golden_.floats(key("embedding", i));
    worst = std::min(worst, cosine(out.embeddings.data() + i * 384, ref.data(), 384));
  }
  EXPECT_GE(worst, 0.999);
  std::printf("MiniLM BF16: worst embedding cosine %.6f\n", worst);
}

TEST_F(MiniLmTest, BatchEqualsOneByOneAndThreadCountDoesNotMatter) {
  auto two = load(Precision::kF32, 2);
  auto one = load(Precision::kF32, 1);
  ASSERT_TRUE(two && one);
  auto batch = two->tokenize(texts_);
  ASSERT_TRUE(batch.ok());
  RunOutputs together, single_thread;
  ASSERT_TRUE(two->run(*batch, {.hidden_states = true}, &together).ok());
  ASSERT_TRUE(one->run(*batch, {.hidden_states = true}, &single_thread).ok());
  EXPECT_LT(rel_error(single_thread.hidden_states, together.hidden_states), 1e-5);
  for (size_t i = 0; i < texts_.size(); ++i) {
    auto alone = two->tokenize({texts_[i]});
    ASSERT_TRUE(alone.ok());
    RunOutputs out;
    ASSERT_TRUE(two->run(*alone, {.hidden_states = true}, &out).ok());
    EXPECT_LT(rel_error(out.hidden_states, rows(together.hidden_states, batch->cu_seqlens[i],
                                                batch->cu_seqlens[i + 1], 384)),
              1e-5)
        << texts_[i];
  }
}

}  // namespace
}  // namespace kiln::testing
