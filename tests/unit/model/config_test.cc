#include "model/config.h"

#include <gtest/gtest.h>

namespace kiln::model {
namespace {

TEST(ConfigTest, BertFromMiniLM) {
  auto c = parse_config(R"({"architectures":["BertModel"],"hidden_act":"gelu",
      "hidden_size":384,"intermediate_size":1536,"layer_norm_eps":1e-12,
      "max_position_embeddings":512,"model_type":"bert","num_attention_heads":12,
      "num_hidden_layers":6,"pad_token_id":0,"position_embedding_type":"absolute",
      "type_vocab_size":2,"vocab_size":30522})");
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_EQ(c->architecture, Architecture::kBert);
  EXPECT_EQ(c->task, Task::kEmbed);
  EXPECT_EQ(c->head_dim(), 32);
  EXPECT_EQ(c->max_sequence_length(), 512);
  EXPECT_EQ(c->activation, Activation::kGeluErf);
}

TEST(ConfigTest, RobertaPositionsAreOffset) {
  auto c = parse_config(R"({"architectures":["RobertaForSequenceClassification"],
      "model_type":"roberta","hidden_size":64,"intermediate_size":128,"num_attention_heads":4,
      "num_hidden_layers":2,"max_position_embeddings":130,"pad_token_id":1,"type_vocab_size":1,
      "vocab_size":512,"hidden_act":"gelu_new","id2label":{"0":"NEG","1":"POS"}})");
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_EQ(c->position_offset, 2);
  EXPECT_EQ(c->max_sequence_length(), 128);
  EXPECT_EQ(c->task, Task::kSequenceClassification);
  EXPECT_EQ(c->activation, Activation::kGeluTanh);
  EXPECT_EQ(c->labels, (std::vector<std::string>{"NEG", "POS"}));
}

TEST(ConfigTest, DistilBertNames) {
  auto c = parse_config(R"({"architectures":["DistilBertForQuestionAnswering"],
      "model_type":"distilbert","dim":768,"hidden_dim":3072,"n_heads":12,"n_layers":6,
      "vocab_size":30522,"activation":"gelu","max_position_embeddings":512})");
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_EQ(c->hidden_size, 768);
  EXPECT_EQ(c->type_vocab_size, 0);
  EXPECT_EQ(c->task, Task::kQuestionAnswering);
}

TEST(ConfigTest, ClearErrors) {
  auto unknown = parse_config(R"({"model_type":"gpt2","vocab_size":10})");
  EXPECT_EQ(unknown.status().code(), StatusCode::kUnimplemented);
  EXPECT_NE(unknown.status().message().find("gpt2"), std::string::npos);
  auto missing = parse_config(R"({"model_type":"bert","vocab_size":10})");
  EXPECT_NE(missing.status().message().find("hidden_size"), std::string::npos);
  auto heads = parse_config(R"({"model_type":"bert","vocab_size":10,"hidden_size":10,
      "num_hidden_layers":1,"num_attention_heads":3,"intermediate_size":4})");
  EXPECT_NE(heads.status().message().find("multiple"), std::string::npos);
  auto rel = parse_config(R"({"model_type":"bert","vocab_size":10,"hidden_size":4,
      "num_hidden_layers":1,"num_attention_heads":1,"intermediate_size":4,
      "position_embedding_type":"relative_key"})");
  EXPECT_EQ(rel.status().code(), StatusCode::kUnimplemented);
  auto arch = parse_config(R"({"model_type":"bert","architectures":["BertForMultipleChoice"]})");
  EXPECT_NE(arch.status().message().find("BertForMultipleChoice"), std::string::npos);
  auto type = parse_config(R"({"model_type":"bert","vocab_size":"many"})");
  EXPECT_FALSE(type.ok());
  auto huge = parse_config(R"({"model_type":"bert","vocab_size":10,"hidden_size":1000000000,
      "num_hidden_layers":1,"num_attention_heads":1,"intermediate_size":4})");
  EXPECT_FALSE(huge.ok());
  EXPECT_FALSE(parse_config("{").ok());
}

}  // namespace
}  // namespace kiln::model
