#include "model/safetensors.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "core/half.h"
#include "model/config.h"
#include "model/weights.h"

namespace kiln::model {
namespace {

// A safetensors file from a JSON header and a data section.
std::vector<uint8_t> make_file(const std::string& header, const std::vector<uint8_t>& data) {
  const uint64_t n = header.size();
  std::vector<uint8_t> out(8 + n + data.size());
  for (int i = 0; i < 8; ++i) out[i] = static_cast<uint8_t>(n >> (8 * i));
  std::memcpy(out.data() + 8, header.data(), n);
  if (!data.empty()) std::memcpy(out.data() + 8 + n, data.data(), data.size());
  return out;
}

std::vector<uint8_t> float_bytes(const std::vector<float>& v) {
  std::vector<uint8_t> b(v.size() * 4);
  std::memcpy(b.data(), v.data(), b.size());
  return b;
}

Status parse_status(const std::string& header, size_t data_bytes) {
  const auto file = make_file(header, std::vector<uint8_t>(data_bytes));
  return SafeTensors::parse(file.data(), file.size()).status();
}

TEST(SafeTensorsTest, ParsesAndConverts) {
  std::vector<uint8_t> data = float_bytes({1.5f, -2.0f, 3.25f, 0.0f, 7.0f, 8.0f});
  const uint16_t bf[2] = {core::float_to_bf16(0.5f), core::float_to_bf16(-4.0f)};
  data.insert(data.end(), reinterpret_cast<const uint8_t*>(bf),
              reinterpret_cast<const uint8_t*>(bf) + 4);
  const auto file = make_file(R"({"__metadata__":{"format":"pt"},)"
                              R"("a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},)"
                              R"("b":{"dtype":"BF16","shape":[2],"data_offsets":[24,28]}})",
                              data);
  auto st = SafeTensors::parse(file.data(), file.size());
  ASSERT_TRUE(st.ok()) << st.status().to_string();
  EXPECT_EQ(st->metadata().at("format"), "pt");
  const TensorView* a = st->find("a");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(a->describe(), "[2, 3] F32");
  auto af = to_float32(*a);
  ASSERT_TRUE(af.ok());
  EXPECT_EQ((*af)[2], 3.25f);
  auto bfv = to_float32(*st->find("b"));
  ASSERT_TRUE(bfv.ok());
  EXPECT_EQ(*bfv, (std::vector<float>{0.5f, -4.0f}));
  EXPECT_EQ(st->find("c"), nullptr);
}

TEST(SafeTensorsTest, RejectsCorruptFiles) {
  const uint8_t tiny[4] = {1, 2, 3, 4};
  EXPECT_EQ(SafeTensors::parse(tiny, 4).status().code(), StatusCode::kDataLoss);
  // Header length larger than the file.
  std::vector<uint8_t> huge = make_file("{}", {});
  huge[0] = 0xff;
  EXPECT_FALSE(SafeTensors::parse(huge.data(), huge.size()).ok());
  EXPECT_FALSE(parse_status("not json", 0).ok());
  EXPECT_FALSE(parse_status("[1,2]", 0).ok());
  const auto out_of_range =
      parse_status(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", 8);
  EXPECT_NE(out_of_range.message().find("outside"), std::string::npos) << out_of_range.message();
  const auto wrong_size =
      parse_status(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,16]}})", 16);
  EXPECT_NE(wrong_size.message().find("need"), std::string::npos) << wrong_size.message();
  EXPECT_FALSE(parse_status(R"({"a":{"dtype":"Q4","shape":[1],"data_offsets":[0,1]}})", 1).ok());
  EXPECT_FALSE(parse_status(R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", 4).ok());
  EXPECT_FALSE(parse_status(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}})", 4).ok());
  const auto overlap = parse_status(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                                    R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                                    12);
  EXPECT_NE(overlap.message().find("overlap"), std::string::npos) << overlap.message();
  EXPECT_FALSE(parse_status(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                            R"("a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                            8)
                   .ok());
  // An empty tensor may start where another one does.
  EXPECT_TRUE(parse_status(R"({"b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                           R"("a":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}})",
                           8)
                  .ok());
  // Shapes whose element count overflows are refused, not wrapped.
  EXPECT_FALSE(
      parse_status(R"({"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,0]}})",
                   0)
          .ok());
}

TEST(WeightsTest, MissingTensorIsNamed) {
  auto config = parse_config(R"({"model_type":"bert","architectures":["BertModel"],
      "vocab_size":4,"hidden_size":2,"num_hidden_layers":1,"num_attention_heads":1,
      "intermediate_size":4,"max_position_embeddings":3,"type_vocab_size":1})");
  ASSERT_TRUE(config.ok()) << config.status().to_string();
  const auto file = make_file(
      R"({"embeddings.word_embeddings.weight":{"dtype":"F32","shape":[4,2],"data_offsets":[0,32]}})",
      std::vector<uint8_t>(32));
  auto st = SafeTensors::parse(file.data(), file.size());
  ASSERT_TRUE(st.ok());
  auto w = load_weights(*st, *config);
  ASSERT_FALSE(w.ok());
  EXPECT_NE(w.status().message().find("embeddings.position_embeddings.weight"), std::string::npos)
      << w.status().message();
}

TEST(WeightsTest, WrongShapeIsNamed) {
  auto config = parse_config(R"({"model_type":"bert","vocab_size":4,"hidden_size":2,
      "num_hidden_layers":1,"num_attention_heads":1,"intermediate_size":4,
      "max_position_embeddings":3})");
  ASSERT_TRUE(config.ok());
  const auto file = make_file(
      R"({"embeddings.word_embeddings.weight":{"dtype":"F32","shape":[2,4],"data_offsets":[0,32]}})",
      std::vector<uint8_t>(32));
  auto st = SafeTensors::parse(file.data(), file.size());
  auto w = load_weights(*st, *config);
  ASSERT_FALSE(w.ok());
  EXPECT_NE(w.status().message().find("[2, 4] but the config needs [4, 2]"), std::string::npos)
      << w.status().message();
}

}  // namespace
}  // namespace kiln::model
