// LoRA adapters beyond the golden outputs: labels, plans built from an adapter, the base
// override, and adapters kiln must refuse (each a clear error naming the problem).
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "golden_util.h"
#include "kiln/engine.h"
#include "plan/plan_builder.h"

namespace kiln::testing {
namespace {

namespace fs = std::filesystem;

std::string fixture(const std::string& name) {
  return std::string(KILN_SOURCE_DIR) + "/tests/golden/models/" + name;
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void put(const fs::path& p, const std::string& text) { std::ofstream(p) << text; }

// "\"" + s + "\"" built by appending: GCC 12 warns (-Wrestrict, a false positive, bug 105329)
// on the operator+ chain.
std::string quoted(const std::string& s) {
  std::string q(1, '"');
  q.append(s);
  q.push_back('"');
  return q;
}

// A copy of an adapter fixture in a temporary folder, its base named absolutely.
class AdapterCopy {
 public:
  AdapterCopy(const std::string& name, const std::string& base) {
    dir_ = fs::temp_directory_path() / ("kiln_adapter_" + std::to_string(::getpid()) + "_" + name);
    fs::remove_all(dir_);
    fs::copy(fixture("adapters/" + name), dir_);
    replace(quoted("../../tiny/" + base), quoted(fixture("tiny/" + base)));
  }
  ~AdapterCopy() { fs::remove_all(dir_); }
  std::string dir() const { return dir_.string(); }
  // Replaces text in adapter_config.json; false when absent.
  bool replace(const std::string& from, const std::string& to) {
    std::string cfg = slurp(dir_ / "adapter_config.json");
    const size_t at = cfg.find(from);
    if (at == std::string::npos) return false;
    cfg.replace(at, from.size(), to);
    put(dir_ / "adapter_config.json", cfg);
    return true;
  }

 private:
  fs::path dir_;
};

TEST(AdapterTest, LabelsComeFromTheAdaptersConfigOrAreNumbered) {
  auto named = Engine::load(fixture("adapters/lora_bert_seq_cls"), {});
  ASSERT_TRUE(named.ok()) << named.status().to_string();
  EXPECT_EQ((*named)->info().labels, (std::vector<std::string>{"negative", "neutral", "positive"}));
  EXPECT_EQ((*named)->info().hf_class, "BertForSequenceClassification");
  auto numbered = Engine::load(fixture("adapters/lora_distilbert_token_cls"), {});
  ASSERT_TRUE(numbered.ok()) << numbered.status().to_string();
  EXPECT_EQ((*numbered)->info().labels.size(), 5u);
  EXPECT_EQ((*numbered)->info().labels[4], "LABEL_4");
  EXPECT_EQ((*numbered)->info().hf_class, "DistilBertForTokenClassification");
}

TEST(AdapterTest, PlanOfAnAdapterRunsLikeTheMergedLoad) {
  const std::string dir = fixture("adapters/lora_bert_qa");
  auto source = plan::read_model_dir(dir);
  ASSERT_TRUE(source.ok()) << source.status().to_string();
  const fs::path path =
      fs::temp_directory_path() / ("kiln_adapter_" + std::to_string(::getpid()) + ".plan");
  ASSERT_TRUE(plan::write_plan(*source, {}, path.string()).ok());
  auto from_plan = Engine::load(path.string(), {});
  auto merged = Engine::load(dir, {});
  fs::remove(path);
  ASSERT_TRUE(from_plan.ok()) << from_plan.status().to_string();
  ASSERT_TRUE(merged.ok());
  EXPECT_EQ((*from_plan)->info().task, Task::kQuestionAnswering);
  TokenBatch b;
  b.add({2, 17, 99, 3, 41, 3}, {0, 0, 0, 0, 1, 1});
  RunOutputs a, c;
  ASSERT_TRUE((*from_plan)->run(b, {.head = true}, &a).ok());
  ASSERT_TRUE((*merged)->run(b, {.head = true}, &c).ok());
  EXPECT_LT(rel_error(a.logits, c.logits), 1e-6);
}

TEST(AdapterTest, BaseOverrideAndMissingBase) {
  AdapterCopy copy("lora_bert_qa", "bert");
  ASSERT_TRUE(copy.replace(quoted(fixture("tiny/bert")), quoted("no/such/base")));
  auto missing = Engine::load(copy.dir(), {});
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("no/such/base"), std::string::npos);
  EngineOptions options;
  options.base_model = fixture("tiny/bert");
  EXPECT_TRUE(Engine::load(copy.dir(), options).ok());
  options.base_model = fixture("tiny/distilbert");  // another encoder: tensors do not match
  EXPECT_FALSE(Engine::load(copy.dir(), options).ok());
}

TEST(AdapterTest, UnsupportedAdaptersAreRefusedByName) {
  struct Case {
    const char* from;
    const char* to;
    const char* named;
  };
  for (const Case& c :
       {Case{"\"use_dora\": false", "\"use_dora\": true", "use_dora"},
        Case{"\"peft_type\": \"LORA\"", "\"peft_type\": \"IA3\"", "IA3"},
        Case{"\"task_type\": \"QUESTION_ANS\"", "\"task_type\": \"CAUSAL_LM\"", "CAUSAL_LM"},
        Case{"\"alpha_pattern\": {}", "\"alpha_pattern\": {\"query\": 3}", "alpha_pattern"}}) {
    AdapterCopy copy("lora_bert_qa", "bert");
    ASSERT_TRUE(copy.replace(c.from, c.to)) << c.from;
    auto e = Engine::load(copy.dir(), {});
    ASSERT_FALSE(e.ok()) << c.to;
    EXPECT_NE(e.status().message().find(c.named), std::string::npos) << e.status().to_string();
  }
}

TEST(AdapterTest, AnAdapterForAnotherHeadIsRefused) {
  // The QA adapter's tensors under a token-classification task: qa_outputs is not used.
  AdapterCopy copy("lora_bert_qa", "bert");
  ASSERT_TRUE(
      copy.replace("\"task_type\": \"QUESTION_ANS\"", "\"task_type\": \"FEATURE_EXTRACTION\""));
  auto e = Engine::load(copy.dir(), {});
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.status().message().find("qa_outputs"), std::string::npos) << e.status().to_string();
}

// Adapters kept apart from their base (share_base) run like the merged load: every fixture, and
// two adapters of one base at once (they share its packed weights).
TEST(AdapterTest, KeptApartEqualsMerged) {
  std::vector<std::unique_ptr<Engine>> apart;  // alive together: the tiny/bert base is shared
  for (const char* name :
       {"lora_bert_qa", "lora_bert_seq_cls", "lora_distilbert_token_cls", "lora_roberta_embed"}) {
    SCOPED_TRACE(name);
    EngineOptions options;
    options.share_base = true;
    auto kept = Engine::load(fixture(std::string("adapters/") + name), options);
    auto merged = Engine::load(fixture(std::string("adapters/") + name), {});
    ASSERT_TRUE(kept.ok()) << kept.status().to_string();
    ASSERT_TRUE(merged.ok());
    TokenBatch b;
    b.add({2, 17, 99, 3, 41, 3, 77, 5}, {});
    b.add({2, 400, 3}, {});
    const RunOptions what{.hidden_states = true, .head = (*merged)->info().task != Task::kEmbed};
    RunOutputs a, c;
    ASSERT_TRUE((*kept)->run(b, what, &a).ok());
    ASSERT_TRUE((*merged)->run(b, what, &c).ok());
    EXPECT_LT(rel_error(a.hidden_states, c.hidden_states), 1e-5);
    EXPECT_LT(rel_error(a.logits, c.logits), 1e-5);
    apart.push_back(std::move(kept).value());
  }
}

TEST(AdapterTest, KeptApartNeedsFp32) {
  EngineOptions options;
  options.share_base = true;
  options.precision = Precision::kBF16;
  auto e = Engine::load(fixture("adapters/lora_bert_qa"), options);
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.status().code(), StatusCode::kUnimplemented);
  EXPECT_NE(e.status().message().find("FP32"), std::string::npos) << e.status().to_string();
}

}  // namespace
}  // namespace kiln::testing
