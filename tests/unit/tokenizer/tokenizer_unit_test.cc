// Hand-checked values for the tokenizer (ids from the real all-MiniLM-L6-v2 vocabulary and the
// committed RoBERTa-style fixture), plus error handling.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/mapped_file.h"
#include "kiln/tokenizer.h"

namespace kiln {
namespace {

using Ids = std::vector<int32_t>;
using Offsets = std::vector<std::pair<size_t, size_t>>;

const Tokenizer& minilm() {
  static const std::unique_ptr<Tokenizer> tok = [] {
    auto t = Tokenizer::from_model_dir("var/models/all-MiniLM-L6-v2");
    EXPECT_TRUE(t.ok()) << t.status().to_string();
    return std::move(t).value();
  }();
  return *tok;
}

const Tokenizer& roberta() {
  static const std::unique_ptr<Tokenizer> tok = [] {
    auto json = core::read_file("tests/golden/tokenizer/roberta_bpe/tokenizer.json");
    EXPECT_TRUE(json.ok());
    auto t = Tokenizer::from_json(*json);
    EXPECT_TRUE(t.ok()) << t.status().to_string();
    return std::move(t).value();
  }();
  return *tok;
}

Encoding encode(const Tokenizer& tok, std::string_view text, EncodeOptions opt = {}) {
  auto e = tok.encode(text, opt);
  EXPECT_TRUE(e.ok()) << e.status().to_string();
  return e.ok() ? std::move(e).value() : Encoding{};
}

TEST(Tokenizer, HelloWorld) {
  const Encoding e = encode(minilm(), "hello world");
  EXPECT_EQ(e.ids, (Ids{101, 7592, 2088, 102}));
  EXPECT_EQ(e.type_ids, (Ids{0, 0, 0, 0}));
  EXPECT_EQ(e.special_tokens_mask, (std::vector<uint8_t>{1, 0, 0, 1}));
  EXPECT_EQ(e.sequence_ids, (Ids{-1, 0, 0, -1}));
  EXPECT_EQ(e.offsets, (Offsets{{0, 0}, {0, 5}, {6, 11}, {0, 0}}));
}

TEST(Tokenizer, LowercaseAndStripAccentsKeepOriginalByteOffsets) {
  // "é" and "ö" are two bytes each: byte offsets end at 6 and 13, characters at 5 and 11.
  const std::string text = "H\xC3\xA9llo W\xC3\xB6rld!";
  const Encoding e = encode(minilm(), text);
  EXPECT_EQ(e.ids, (Ids{101, 7592, 2088, 999, 102}));
  EXPECT_EQ(e.offsets, (Offsets{{0, 0}, {0, 6}, {7, 13}, {13, 14}, {0, 0}}));
  EXPECT_EQ(byte_to_char_offsets(text, e.offsets),
            (Offsets{{0, 0}, {0, 5}, {6, 11}, {11, 12}, {0, 0}}));
}

TEST(Tokenizer, CjkCharactersAreSeparateWords) {
  const Encoding e = encode(minilm(), "\xE4\xBD\xA0\xE5\xA5\xBD");  // 你好: both [UNK] here
  EXPECT_EQ(e.ids, (Ids{101, 100, 100, 102}));
  EXPECT_EQ(e.offsets, (Offsets{{0, 0}, {0, 3}, {3, 6}, {0, 0}}));
}

TEST(Tokenizer, WordPieceContinuationPieces) {
  const Encoding e = encode(minilm(), "unaffable");
  EXPECT_EQ(e.ids, (Ids{101, 14477, 20961, 3468, 102}));  // una ##ffa ##ble (greedy longest)
  EXPECT_EQ(e.offsets, (Offsets{{0, 0}, {0, 3}, {3, 6}, {6, 9}, {0, 0}}));
  EXPECT_EQ(minilm().id_to_token(20961), "##ffa");
  EXPECT_EQ(minilm().token_to_id("##ble"), 3468);
  EXPECT_EQ(minilm().token_to_id("##able"), 3085);  // exists, but "una" is matched first
}

TEST(Tokenizer, MaxInputCharsPerWordGivesOneUnk) {
  const Encoding at_limit = encode(minilm(), std::string(100, 'a'));
  EXPECT_GT(at_limit.ids.size(), 3u);  // split into pieces
  const Encoding over = encode(minilm(), std::string(101, 'a'));
  EXPECT_EQ(over.ids, (Ids{101, 100, 102}));
  EXPECT_EQ(over.offsets[1], (std::pair<size_t, size_t>{0, 101}));
}

TEST(Tokenizer, SpecialTokensInTextAreMatchedBeforeNormalization) {
  const Encoding e = encode(minilm(), "a [MASK] b [mask]");
  // "[MASK]" is one token; lower-case "[mask]" is ordinary text: [ mask ].
  EXPECT_EQ(e.ids, (Ids{101, 1037, 103, 1038, 1031, 7308, 1033, 102}));
}

TEST(Tokenizer, PairTemplateAndOnlySecondStride) {
  EncodeOptions opt;
  opt.max_length = 12;
  opt.stride = 2;
  opt.strategy = TruncationStrategy::kOnlySecond;
  opt.return_overflowing = true;
  auto e =
      minilm().encode_pair("what is it?", "it is a test of the emergency broadcast system", opt);
  ASSERT_TRUE(e.ok()) << e.status().to_string();
  EXPECT_EQ(e->ids, (Ids{101, 2054, 2003, 2009, 1029, 102, 2009, 2003, 1037, 3231, 1997, 102}));
  EXPECT_EQ(e->type_ids, (Ids{0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1}));
  ASSERT_EQ(e->overflowing.size(), 2u);
  // Windows of 5 context tokens advancing by 3 (= 5 - stride).
  EXPECT_EQ(e->overflowing[0].ids,
            (Ids{101, 2054, 2003, 2009, 1029, 102, 3231, 1997, 1996, 5057, 3743, 102}));
  EXPECT_EQ(e->overflowing[1].ids, (Ids{101, 2054, 2003, 2009, 1029, 102, 5057, 3743, 2291, 102}));
  EXPECT_EQ(e->overflowing[1].sequence_ids, (Ids{-1, 0, 0, 0, 0, -1, 1, 1, 1, -1}));
  EXPECT_EQ(minilm().num_special_tokens(false), 2u);
  EXPECT_EQ(minilm().num_special_tokens(true), 3u);
}

TEST(Tokenizer, LongestFirstSplitsTheBudget) {
  EncodeOptions opt;
  opt.max_length = 9;  // 6 tokens for the texts: 3 + 3 when both are longer
  auto e = minilm().encode_pair("a b c d e f", "g h i j k", opt);
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->ids, (Ids{101, 1037, 1038, 1039, 102, 1043, 1044, 1045, 102}));
}

TEST(Tokenizer, StrideMustFitTheBudget) {
  EncodeOptions opt;
  opt.max_length = 6;
  opt.stride = 5;  // 6 - 2 specials = 4 < 5
  auto e = minilm().encode("a b c d e f g h", opt);
  EXPECT_FALSE(e.ok());
  EXPECT_EQ(e.status().code(), StatusCode::kInvalidArgument);
}

TEST(Tokenizer, InvalidUtf8IsRejected) {
  auto e = minilm().encode("abc\xC3(", {});
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.status().code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(minilm().encode("\xED\xA0\x80", {}).ok());  // a UTF-16 surrogate
  EXPECT_FALSE(minilm().encode("\xC0\xAF", {}).ok());      // overlong '/'
}

TEST(Tokenizer, EmptyAndWhitespaceOnly) {
  EXPECT_EQ(encode(minilm(), "").ids, (Ids{101, 102}));
  EXPECT_EQ(encode(minilm(), " \t\n\xE2\x80\x8B").ids, (Ids{101, 102}));
}

TEST(Tokenizer, VocabTxtMatchesTokenizerJson) {
  auto vocab = Tokenizer::from_vocab_file("var/models/all-MiniLM-L6-v2/vocab.txt", true);
  ASSERT_TRUE(vocab.ok()) << vocab.status().to_string();
  const Encoding a = encode(**vocab, "Héllo, wörld! [MASK] unaffable");
  const Encoding b = encode(minilm(), "Héllo, wörld! [MASK] unaffable");
  EXPECT_EQ(a.ids, b.ids);
  EXPECT_EQ(a.offsets, b.offsets);
  EXPECT_EQ((*vocab)->vocab_size(), 30522u);
  EXPECT_EQ((*vocab)->pad_id(), 0);
}

TEST(Tokenizer, ByteLevelBpeWithTrimmedOffsets) {
  const Encoding e = encode(roberta(), "Hello world");
  EXPECT_EQ(e.ids, (Ids{0, 489, 438, 83, 1899, 2}));  // <s> ĠH ell o Ġworld </s>
  EXPECT_EQ(e.offsets, (Offsets{{0, 0}, {0, 1}, {1, 4}, {4, 5}, {6, 11}, {0, 0}}));
  // <mask> swallows the space on its left; the trimmed offset still excludes it.
  const Encoding m = encode(roberta(), "a <mask> b");
  EXPECT_EQ(m.ids, (Ids{0, 261, 4, 281, 2}));
  EXPECT_EQ(m.offsets, (Offsets{{0, 0}, {0, 1}, {2, 8}, {9, 10}, {0, 0}}));
}

TEST(Tokenizer, UnsupportedComponentsAreNamed) {
  auto t =
      Tokenizer::from_json(R"({"model": {"type": "Unigram", "vocab": []}, "normalizer": null})");
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(t.status().message().find("Unigram"), std::string::npos);
  auto n = Tokenizer::from_json(
      R"({"normalizer": {"type": "Precompiled"}, "model": {"type": "WordPiece", "vocab": {"[UNK]": 0}}})");
  ASSERT_FALSE(n.ok());
  EXPECT_NE(n.status().message().find("Precompiled"), std::string::npos);
  EXPECT_FALSE(Tokenizer::from_json("{").ok());
  EXPECT_FALSE(Tokenizer::from_json(std::string(100000, '[')).ok());
}

TEST(Tokenizer, BatchEqualsOneByOne) {
  // encode() keeps per-thread scratch state; results must not depend on earlier calls.
  const std::vector<std::string> texts = {"first sentence here", "", "Ünïcödé ✓",
                                          "first sentence here"};
  std::vector<Ids> once;
  for (const auto& t : texts) once.push_back(encode(minilm(), t).ids);
  EXPECT_EQ(once[0], once[3]);
  for (size_t i = 0; i < texts.size(); ++i) EXPECT_EQ(encode(minilm(), texts[i]).ids, once[i]);
}

}  // namespace
}  // namespace kiln
