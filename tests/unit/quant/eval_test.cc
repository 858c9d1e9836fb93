// evaluate() end to end on tiny random checkpoints (QA windows, classification heads) with a
// made-up vocabulary and data, and on all-MiniLM-L6-v2 with the prepared data when present.
#include "quant/eval.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace kiln::quant {
namespace {

namespace fs = std::filesystem;

void write_text(const fs::path& p, const std::string& text) { std::ofstream(p) << text; }

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "kiln_eval_XXXXXX").string();
    EXPECT_NE(::mkdtemp(tmpl.data()), nullptr);
    root_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }
  const fs::path& root() const { return root_; }

 private:
  fs::path root_;
};

const std::string kWords[] = {"the",  "river",     "flows",   "north", "through", "old",  "city",
                              "of",   "stone",     "bridges", "who",   "built",   "what", "where",
                              "does", "engineers", "in",      "year",  "and",     "it"};

// A copy of a tiny checkpoint with a WordPiece vocabulary of whole words and letters.
std::string tiny_model(const TempDir& dir, const std::string& name) {
  const fs::path src = fs::path(KILN_SOURCE_DIR) / "tests/golden/models/tiny" / name;
  const fs::path dst = dir.root() / name;
  fs::create_directories(dst);
  fs::copy_file(src / "config.json", dst / "config.json");
  fs::copy_file(src / "model.safetensors", dst / "model.safetensors");
  std::string vocab = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n.\n,\n?\n";
  for (const auto& w : kWords) vocab += w + "\n";
  for (char c = 'a'; c <= 'z'; ++c) vocab += std::string(1, c) + "\n##" + std::string(1, c) + "\n";
  for (char c = '0'; c <= '9'; ++c) vocab += std::string(1, c) + "\n##" + std::string(1, c) + "\n";
  write_text(dst / "vocab.txt", vocab);
  write_text(dst / "tokenizer_config.json", "{\"do_lower_case\": true}");
  return dst.string();
}

// SST-2-style sentences and SQuAD-style questions whose contexts need several 128-token
// windows.
std::string tiny_data(const TempDir& dir) {
  const fs::path d = dir.root() / "data";
  fs::create_directories(d);
  write_text(d / "sst2_dev.tsv",
             "1\tthe old city of stone\n0\twho built it\n1\tthe river flows north .\n"
             "0\tengineers and bridges , bridges and engineers\n");
  std::string context;
  for (int i = 0; i < 60; ++i) {
    context += "the river flows north through the old city of stone bridges built in year " +
               std::to_string(1000 + i) + " . ";
  }
  std::string qa;
  qa += "q1\twhere does the river flow ?\t" + context + "\tnorth\tnorth through the city\n";
  qa += "q2\twho built the bridges ?\t" + context + "\tengineers\n";
  qa += "q3\twhat year ?\tthe city was built in year 1042 .\t1042\n";
  write_text(d / "squad_dev_qa.tsv", qa);
  return d.string();
}

Result<std::unique_ptr<Engine>> load(const std::string& dir, Precision p = Precision::kF32) {
  EngineOptions o;
  o.precision = p;
  o.num_threads = 1;
  return Engine::load(dir, o);
}

TEST(Eval, QuestionAnsweringAgainstItself) {
  TempDir dir;
  const std::string model = tiny_model(dir, "bert_qa");
  auto ref = load(model);
  auto cand = load(model);
  ASSERT_TRUE(ref.ok() && cand.ok()) << ref.status().to_string();
  EvalOptions o;
  o.data_dir = tiny_data(dir);
  auto r = evaluate(**ref, **cand, o);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  ASSERT_TRUE(r->qa.has_value());
  EXPECT_EQ(r->qa->examples, 3);
  EXPECT_EQ(r->qa->agreement, 1.0);
  EXPECT_EQ(r->qa->reference_f1, r->qa->candidate_f1);
  EXPECT_GE(r->qa->reference_f1, 0.0);
  EXPECT_LE(r->qa->reference_f1, 1.0);
  EXPECT_EQ(r->hidden_cosine.min, 1.0);
  EXPECT_FALSE(r->classification.has_value());
  const std::string json = report_json(*r);
  EXPECT_NE(json.find("\"qa\":{\"examples\":3"), std::string::npos) << json;
  EXPECT_NE(format_report(*r).find("SQuAD v1.1 dev F1"), std::string::npos);
}

TEST(Eval, ClassifierAgainstItsBf16Self) {
  TempDir dir;
  const std::string model = tiny_model(dir, "bert_seq_cls");
  auto ref = load(model);
  auto cand = load(model, Precision::kBF16);
  if (!cand.ok()) GTEST_SKIP() << "no BF16 on this CPU: " << cand.status().to_string();
  ASSERT_TRUE(ref.ok()) << ref.status().to_string();
  EvalOptions o;
  o.data_dir = tiny_data(dir);
  auto r = evaluate(**ref, **cand, o);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  ASSERT_TRUE(r->classification.has_value());
  EXPECT_EQ(r->classification->examples, 4);
  EXPECT_FALSE(r->classification->labelled);          // a 3-label head: no SST-2 accuracy
  EXPECT_GT(r->classification->max_logit_diff, 0.0);  // BF16 does change the logits...
  EXPECT_LT(r->classification->max_logit_diff, 0.1);  // ...a little
  EXPECT_GT(r->hidden_cosine.mean, 0.999);
  EXPECT_LT(r->hidden_cosine.min, 1.0);
}

TEST(Eval, MissingDataNamesTheScript) {
  TempDir dir;
  const std::string model = tiny_model(dir, "bert_seq_cls");
  auto ref = load(model);
  ASSERT_TRUE(ref.ok());
  EvalOptions o;
  o.data_dir = (dir.root() / "nowhere").string();
  auto r = evaluate(**ref, **ref, o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("prepare_eval_data.sh"), std::string::npos);
  write_text(dir.root() / "bad.tsv", "1\tfine\n2\tbad label\n");
  auto bad = read_labelled_tsv((dir.root() / "bad.tsv").string());
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("bad.tsv:2"), std::string::npos);
}

TEST(Eval, MiniLmAgainstItself) {
  const std::string model = std::string(KILN_SOURCE_DIR) + "/var/models/all-MiniLM-L6-v2";
  const std::string data = std::string(KILN_SOURCE_DIR) + "/var/data";
  if (!fs::exists(model + "/model.safetensors") || !fs::exists(data + "/sst2_dev.tsv")) {
    GTEST_SKIP() << "needs var/models/all-MiniLM-L6-v2 and scripts/prepare_eval_data.sh";
  }
  auto ref = load(model);
  ASSERT_TRUE(ref.ok()) << ref.status().to_string();
  EvalOptions o;
  o.data_dir = data;
  o.dev_sentences = 64;
  o.probe_train = 128;
  o.retrieval_paragraphs = 20;
  o.top_k = 5;
  auto r = evaluate(**ref, **ref, o);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  ASSERT_TRUE(r->embedding.has_value());
  const auto& e = *r->embedding;
  EXPECT_EQ(e.cosine.count, 64 + 128 + 20 + 20);
  EXPECT_EQ(e.cosine.min, 1.0);
  EXPECT_EQ(e.top_k_overlap, 1.0);
  EXPECT_EQ(e.reference_recall_k, e.candidate_recall_k);
  EXPECT_GT(e.reference_recall_k, 0.5);  // real retrieval: questions find their paragraphs
  EXPECT_EQ(e.probe_same, e.probe_reference);
  EXPECT_EQ(e.probe_retrained, e.probe_reference);
  EXPECT_GT(e.probe_reference, 0.6);  // sentiment is linearly visible in the embeddings
}

}  // namespace
}  // namespace kiln::quant
