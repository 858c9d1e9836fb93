// Parity with Hugging Face `tokenizers` 0.23.3 on real English text and adversarial Unicode:
// ids, type ids, special-token masks, sequence ids and character offsets, overflowing windows
// included. The expected file is written by tests/golden/tokenizer/make_expected.py (a ctest
// fixture runs it first).
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "core/mapped_file.h"
#include "kiln/tokenizer.h"

namespace kiln {
namespace {

using rapidjson::Value;

constexpr const char* kModelDir = "var/models/all-MiniLM-L6-v2";

std::string shorten(std::string_view s, size_t n = 160) {
  return s.size() <= n ? std::string(s) : std::string(s.substr(0, n)) + "...";
}

template <typename T>
std::string describe(const std::vector<T>& v) {
  std::ostringstream os;
  os << "[";
  for (size_t i = 0; i < v.size() && i < 40; ++i) os << (i ? "," : "") << +v[i];
  if (v.size() > 40) os << ",...";
  return os.str() + "]";
}

// Compares one encoding recursively; returns "" or the first difference.
std::string compare(const Encoding& got, const Value& want, const std::string& path) {
  auto ints = [](const Value& a) {
    std::vector<int64_t> v;
    for (const Value& x : a.GetArray()) v.push_back(x.GetInt64());
    return v;
  };
  auto as64 = [](const auto& v) { return std::vector<int64_t>(v.begin(), v.end()); };
  const std::pair<const char*, std::vector<int64_t>> fields[] = {
      {"ids", as64(got.ids)},
      {"type_ids", as64(got.type_ids)},
      {"special", as64(got.special_tokens_mask)},
      {"seq", as64(got.sequence_ids)},
      {"words", as64(got.word_ids)},
  };
  for (const auto& [name, mine] : fields) {
    const std::vector<int64_t> theirs = ints(want[name]);
    if (mine != theirs) {
      return path + name + ": kiln " + describe(mine) + " vs tokenizers " + describe(theirs);
    }
  }
  const Value& offsets = want["offsets"];
  for (size_t i = 0; i < got.offsets.size(); ++i) {
    const auto s = static_cast<size_t>(offsets[static_cast<rapidjson::SizeType>(i)][0].GetInt64());
    const auto e = static_cast<size_t>(offsets[static_cast<rapidjson::SizeType>(i)][1].GetInt64());
    if (got.offsets[i].first != s || got.offsets[i].second != e) {
      return path + "offsets[" + std::to_string(i) + "] (id " + std::to_string(got.ids[i]) +
             "): kiln (" + std::to_string(got.offsets[i].first) + "," +
             std::to_string(got.offsets[i].second) + ") vs tokenizers (" + std::to_string(s) + "," +
             std::to_string(e) + ")";
    }
  }
  const Value& overflow = want["overflowing"];
  if (got.overflowing.size() != overflow.Size()) {
    return path + "overflowing: kiln " + std::to_string(got.overflowing.size()) +
           " windows vs tokenizers " + std::to_string(overflow.Size());
  }
  for (size_t i = 0; i < got.overflowing.size(); ++i) {
    std::string d = compare(got.overflowing[i], overflow[static_cast<rapidjson::SizeType>(i)],
                            path + "overflowing[" + std::to_string(i) + "].");
    if (!d.empty()) return d;
  }
  return "";
}

struct Tally {
  size_t cases = 0;
  size_t singles = 0;
  size_t pairs = 0;
  size_t windows = 0;
  size_t errors = 0;
  std::vector<std::string> failures;
};

size_t count_windows(const Encoding& e) {
  size_t n = e.overflowing.size();
  for (const Encoding& o : e.overflowing) n += count_windows(o);
  return n;
}

class TokenizerParity : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    tallies_ = new std::map<std::string, Tally>();
    const std::string path = KILN_TOKENIZER_GOLDEN;
    std::ifstream in(path);
    if (!in) {
      missing_ = true;
      return;
    }
    auto minilm = Tokenizer::from_model_dir(kModelDir);
    auto vocab = Tokenizer::from_vocab_file(std::string(kModelDir) + "/vocab.txt", true);
    auto roberta_json = core::read_file("tests/golden/tokenizer/roberta_bpe/tokenizer.json");
    ASSERT_TRUE(minilm.ok()) << minilm.status().to_string();
    ASSERT_TRUE(vocab.ok()) << vocab.status().to_string();
    ASSERT_TRUE(roberta_json.ok()) << roberta_json.status().to_string();
    auto roberta = Tokenizer::from_json(*roberta_json);
    ASSERT_TRUE(roberta.ok()) << roberta.status().to_string();
    const std::map<std::string, const Tokenizer*> toks = {{"minilm_json", minilm->get()},
                                                          {"minilm_vocab", vocab->get()},
                                                          {"roberta", roberta->get()}};

    std::string line;
    while (std::getline(in, line)) {
      rapidjson::Document doc;
      doc.Parse(line.data(), line.size());
      ASSERT_FALSE(doc.HasParseError()) << "bad line in " << path;
      const std::string name = doc["tok"].GetString();
      Tally& t = (*tallies_)[name];
      const Tokenizer* tok = toks.at(name);
      const std::string a(doc["a"].GetString(), doc["a"].GetStringLength());
      const bool pair = doc.HasMember("b");
      const std::string b =
          pair ? std::string(doc["b"].GetString(), doc["b"].GetStringLength()) : "";
      EncodeOptions opt;
      opt.add_special_tokens = doc["add_special"].GetBool();
      opt.max_length = doc["max_length"].GetUint64();
      opt.stride = doc["stride"].GetUint64();
      const std::string strategy = doc["strategy"].GetString();
      opt.strategy = strategy == "only_first"    ? TruncationStrategy::kOnlyFirst
                     : strategy == "only_second" ? TruncationStrategy::kOnlySecond
                                                 : TruncationStrategy::kLongestFirst;
      opt.return_overflowing = true;
      ++t.cases;
      (pair ? t.pairs : t.singles) += 1;
      Result<Encoding> got = pair ? tok->encode_pair(a, b, opt) : tok->encode(a, opt);
      std::string diff;
      if (doc.HasMember("error")) {
        ++t.errors;
        if (got.ok())
          diff = std::string("kiln succeeded where tokenizers failed: ") + doc["error"].GetString();
      } else if (!got.ok()) {
        diff = "kiln failed: " + got.status().to_string();
      } else {
        convert_to_char_offsets(&got.value(), a, b);
        t.windows += count_windows(*got);
        diff = compare(*got, doc["enc"], "");
      }
      if (!diff.empty()) {
        std::ostringstream os;
        os << "text " << ::testing::PrintToString(shorten(a));
        if (pair) os << " / " << ::testing::PrintToString(shorten(b));
        os << " (max_length " << opt.max_length << ", stride " << opt.stride << ", " << strategy
           << ", specials " << opt.add_special_tokens << "): " << diff;
        t.failures.push_back(os.str());
      }
    }
  }

  static void TearDownTestSuite() {
    delete tallies_;
    tallies_ = nullptr;
  }

  void check(const std::string& name) {
    if (missing_) {
      if (!core::file_exists(".venv/bin/python")) {
        GTEST_SKIP() << "no expected outputs and no .venv: run `make setup` (or scripts/setup.sh) "
                        "so make_expected.py can write " KILN_TOKENIZER_GOLDEN;
      }
      FAIL() << "missing " KILN_TOKENIZER_GOLDEN
                " although .venv exists: the "
                "tokenizer_golden ctest fixture should have written it";
    }
    const Tally& t = (*tallies_)[name];
    ASSERT_GT(t.cases, 0u) << "no cases for " << name;
    std::cout << "[parity] " << name << ": " << t.cases << " cases (" << t.singles << " single, "
              << t.pairs << " pair, " << t.windows << " overflow windows, " << t.errors
              << " expected errors), " << t.failures.size() << " mismatches\n";
    for (size_t i = 0; i < t.failures.size() && i < 15; ++i) {
      ADD_FAILURE() << name << " mismatch " << i + 1 << "/" << t.failures.size() << ": "
                    << t.failures[i];
    }
    EXPECT_EQ(t.failures.size(), 0u);
  }

  static inline std::map<std::string, Tally>* tallies_ = nullptr;
  static inline bool missing_ = false;
};

TEST_F(TokenizerParity, MiniLmTokenizerJson) { check("minilm_json"); }
TEST_F(TokenizerParity, MiniLmVocabTxt) { check("minilm_vocab"); }
TEST_F(TokenizerParity, RobertaByteLevelBpe) { check("roberta"); }

}  // namespace
}  // namespace kiln
