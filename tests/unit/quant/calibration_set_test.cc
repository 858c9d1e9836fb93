// Calibration texts: reading (missing, empty, tiny files; blank lines; CRLF), tokenizing
// (pairs, truncation counted, batching by tokens).
#include <gtest/gtest.h>

#include <algorithm>

#include "../plan/plan_test_util.h"
#include "quant/calibration_set.h"
#include "tokenizer/tokenizer_impl.h"

namespace kiln::quant {
namespace {

using plan::testing::TempDir;
using plan::testing::write_text;

std::unique_ptr<Tokenizer> micro_tokenizer() {
  auto parts = tokenizer::bert_parts_from_vocab(plan::testing::micro_vocab(), true);
  EXPECT_TRUE(parts.ok());
  auto tok = tokenizer::make_tokenizer(std::move(parts).value());
  EXPECT_TRUE(tok.ok());
  return std::move(tok).value();
}

int64_t micro_vocab_size() {
  const std::string v = plan::testing::micro_vocab();
  return static_cast<int64_t>(std::count(v.begin(), v.end(), '\n'));
}

TEST(CalibrationLines, MissingEmptyAndTinyFilesAreClearErrors) {
  TempDir dir;
  auto missing = read_calibration_lines(dir.file("nope.txt"));
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("nope.txt"), std::string::npos);

  write_text(dir.file("empty.txt"), "");
  auto empty = read_calibration_lines(dir.file("empty.txt"));
  EXPECT_EQ(empty.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(empty.status().message().find("has 0 non-blank lines"), std::string::npos)
      << empty.status().message();

  write_text(dir.file("tiny.txt"), "one\ntwo\n\n   \nthree\n");
  auto tiny = read_calibration_lines(dir.file("tiny.txt"));
  EXPECT_EQ(tiny.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(tiny.status().message().find("has 3 non-blank lines"), std::string::npos);
}

TEST(CalibrationLines, SkipsBlankLinesStripsCrAndStopsAtTheLimit) {
  TempDir dir;
  std::string text;
  for (int i = 0; i < 40; ++i) text += "line " + std::to_string(i) + "\r\n" + (i % 3 ? "" : "\n");
  write_text(dir.file("c.txt"), text);
  std::vector<int64_t> numbers;
  auto all = read_calibration_lines(dir.file("c.txt"), 0, kMinCalibrationLines, &numbers);
  ASSERT_TRUE(all.ok()) << all.status().to_string();
  ASSERT_EQ(numbers.size(), 40u);
  EXPECT_EQ((std::vector<int64_t>(numbers.begin(), numbers.begin() + 5)),
            (std::vector<int64_t>{1, 3, 4, 5, 7}));  // the file's own numbering
  ASSERT_EQ(all->size(), 40u);
  EXPECT_EQ((*all)[0], "line 0");
  EXPECT_EQ((*all)[39], "line 39");
  auto some = read_calibration_lines(dir.file("c.txt"), 20);
  ASSERT_TRUE(some.ok());
  EXPECT_EQ(some->size(), 20u);
}

TEST(CalibrationTokens, PairsTruncationAndBatches) {
  auto tok = micro_tokenizer();
  std::string long_line;
  for (int i = 0; i < 5; ++i) long_line += "the quick brown fox ";
  std::vector<std::string> lines = {"the quick brown fox", "hello\tworld", long_line};
  const TokenLimits limits{8, micro_vocab_size(), 2};
  auto set = tokenize_lines(*tok, lines, limits, 10);
  ASSERT_TRUE(set.ok()) << set.status().to_string();
  EXPECT_EQ(set->texts, 3);
  EXPECT_EQ(set->truncated, 1);  // the long line; "the quick brown fox" is 6 tokens
  int64_t tokens = 0, seqs = 0;
  for (const TokenBatch& b : set->batches) {
    EXPECT_LE(b.num_tokens(), 10);
    tokens += b.num_tokens();
    seqs += b.num_sequences();
  }
  EXPECT_EQ(seqs, 3);
  EXPECT_EQ(tokens, 6 + 5 + 8);
  EXPECT_EQ(tokens, set->tokens);
  // One batch: the pair [CLS] hello [SEP] world [SEP] has type ids 0 0 0 1 1.
  auto one = tokenize_lines(*tok, lines, limits, 1000);
  ASSERT_TRUE(one.ok());
  ASSERT_EQ(one->batches.size(), 1u);
  const TokenBatch& b = one->batches[0];
  ASSERT_EQ(b.cu_seqlens[2] - b.cu_seqlens[1], 5);
  const std::vector<int32_t> types(b.type_ids.begin() + b.cu_seqlens[1],
                                   b.type_ids.begin() + b.cu_seqlens[2]);
  EXPECT_EQ(types, (std::vector<int32_t>{0, 0, 0, 1, 1}));

  std::vector<std::string> bad = {"fine", std::string("\xff\xfe", 2)};
  auto invalid = tokenize_lines(*tok, bad, limits, 8192, "held-out text");
  EXPECT_FALSE(invalid.ok());
  EXPECT_NE(invalid.status().message().find("held-out text line 2"), std::string::npos)
      << invalid.status().to_string();
  // A tokenizer with more ids than the model: refused, not read out of bounds.
  const TokenLimits small{8, 10, 2};
  auto outside = tokenize_lines(*tok, {"kiln plan"}, small);  // ids 11 and 12
  EXPECT_EQ(outside.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(outside.status().message().find("outside the model's vocabulary of 10"),
            std::string::npos)
      << outside.status().to_string();
  // Pair type ids for a model with one token type.
  const TokenLimits one_type{8, micro_vocab_size(), 1};
  auto typed = tokenize_lines(*tok, {"hello\tworld"}, one_type);
  EXPECT_NE(typed.status().message().find("token type id 1"), std::string::npos)
      << typed.status().to_string();
}

}  // namespace
}  // namespace kiln::quant
