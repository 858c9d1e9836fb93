// The applications against Hugging Face pipelines on our own adapters (tests/golden/apps,
// written by make_app_golden.py): question answering (answers, scores and character offsets,
// long contexts split into windows), named entities (aggregation "simple") and classification.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "core/json.h"
#include "core/mapped_file.h"
#include "kiln/engine.h"
#include "tasks/ner.h"
#include "tasks/qa.h"

namespace kiln::testing {
namespace {

namespace json = core::json;

std::string source(const std::string& rel) { return std::string(KILN_SOURCE_DIR) + "/" + rel; }

// The golden file and the engine of its model, or a skip reason.
struct Fixture {
  json::Document doc;
  std::unique_ptr<Engine> engine;
  std::string skip;
};

Fixture load(const std::string& name) {
  Fixture f;
  auto text = core::read_file(source("tests/golden/apps/" + name + ".json"));
  if (!text.ok()) {
    f.skip = text.status().to_string();
    return f;
  }
  EXPECT_TRUE(json::parse(*text, name, &f.doc).ok());
  const std::string model = source(f.doc["model"].GetString());
  const std::string base = source(f.doc["base"].GetString());
  if (!std::filesystem::exists(base + "/model.safetensors")) {
    f.skip = base + " is missing (scripts/setup.sh installs it)";
    return f;
  }
  EngineOptions options;
  options.base_model = base;
  auto engine = Engine::load(model, options);
  EXPECT_TRUE(engine.ok()) << engine.status().to_string();
  if (engine.ok()) f.engine = std::move(engine).value();
  return f;
}

TEST(AppsGoldenTest, QuestionAnsweringMatchesThePipeline) {
  Fixture f = load("qa");
  if (!f.skip.empty()) GTEST_SKIP() << f.skip;
  ASSERT_TRUE(f.engine);
  const tasks::QaOptions options;  // the pipeline's defaults
  int checked = 0, multi_window = 0;
  for (const auto& item : f.doc["items"].GetArray()) {
    SCOPED_TRACE(item["id"].GetString());
    auto ex = tasks::make_qa_example(*f.engine->tokenizer(), item["question"].GetString(),
                                     item["context"].GetString(), options);
    ASSERT_TRUE(ex.ok()) << ex.status().to_string();
    ASSERT_EQ(static_cast<int>(ex->features.size()), item["windows"].GetInt());
    multi_window += ex->features.size() > 1;
    TokenBatch batch;
    for (const auto& feat : ex->features) batch.add(feat.ids, feat.type_ids);
    RunOutputs out;
    ASSERT_TRUE(f.engine->run(batch, {.head = true}, &out).ok());
    std::vector<const float*> logits;
    for (int64_t s = 0; s < batch.num_sequences(); ++s) {
      logits.push_back(out.logits.data() + batch.cu_seqlens[s] * 2);
    }
    const auto answers = tasks::decode_answers(*ex, logits, options);
    ASSERT_EQ(answers.size(), 1u);
    EXPECT_EQ(answers[0].text, item["answer"].GetString());
    EXPECT_EQ(answers[0].start, item["start"].GetInt64());
    EXPECT_EQ(answers[0].end, item["end"].GetInt64());
    EXPECT_NEAR(answers[0].score, item["score"].GetDouble(),
                1e-3 * item["score"].GetDouble() + 1e-6);
    ++checked;
  }
  EXPECT_GE(checked, 200);
  EXPECT_GE(multi_window, 10);  // long contexts exercise the document stride
}

TEST(AppsGoldenTest, EntitiesMatchThePipeline) {
  Fixture f = load("ner");
  if (!f.skip.empty()) GTEST_SKIP() << f.skip;
  ASSERT_TRUE(f.engine);
  const Tokenizer& tok = *f.engine->tokenizer();
  int entities = 0;
  for (const auto& item : f.doc["items"].GetArray()) {
    const std::string text = item["text"].GetString();
    SCOPED_TRACE(text);
    EncodeOptions eo;
    eo.max_length = static_cast<size_t>(f.engine->info().max_sequence_length);
    auto enc = tok.encode(text, eo);
    ASSERT_TRUE(enc.ok());
    TokenBatch batch;
    batch.add(enc->ids, enc->type_ids);
    RunOutputs out;
    ASSERT_TRUE(f.engine->run(batch, {.head = true}, &out).ok());
    const auto got =
        tasks::group_entities(tok, text, *enc, out.logits.data(), f.engine->info().labels);
    const auto& want = item["entities"].GetArray();
    ASSERT_EQ(got.size(), want.Size());
    for (size_t i = 0; i < got.size(); ++i) {
      const auto& w = want[static_cast<rapidjson::SizeType>(i)];
      EXPECT_EQ(got[i].entity_group, w["entity_group"].GetString());
      EXPECT_EQ(got[i].word, w["word"].GetString());
      EXPECT_EQ(got[i].start, w["start"].GetInt64());
      EXPECT_EQ(got[i].end, w["end"].GetInt64());
      EXPECT_NEAR(got[i].score, w["score"].GetDouble(), 1e-4);
      ++entities;
    }
  }
  EXPECT_GE(entities, 50);
}

TEST(AppsGoldenTest, ClassificationMatchesThePipeline) {
  Fixture f = load("cls");
  if (!f.skip.empty()) GTEST_SKIP() << f.skip;
  ASSERT_TRUE(f.engine);
  const auto& labels = f.engine->info().labels;
  for (const auto& item : f.doc["items"].GetArray()) {
    const std::string text = item["text"].GetString();
    SCOPED_TRACE(text);
    auto batch = f.engine->tokenize({text});
    ASSERT_TRUE(batch.ok());
    RunOutputs out;
    ASSERT_TRUE(f.engine->run(*batch, {.head = true}, &out).ok());
    const float m = std::max(out.logits[0], out.logits[1]);
    const double e0 = std::exp(out.logits[0] - m), e1 = std::exp(out.logits[1] - m);
    EXPECT_NEAR(e0 / (e0 + e1), item["scores"][labels[0].c_str()].GetDouble(), 1e-5);
    EXPECT_NEAR(e1 / (e0 + e1), item["scores"][labels[1].c_str()].GetDouble(), 1e-5);
  }
}

}  // namespace
}  // namespace kiln::testing
