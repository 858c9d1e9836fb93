// The small sections round-trip, and their decoders refuse inconsistent contents.
#include <gtest/gtest.h>

#include <cmath>

#include "plan/plan_builder.h"
#include "plan/sections.h"

namespace kiln::plan {
namespace {

QuantRecord sample_quant() {
  QuantRecord rec;
  rec.precision = Precision::kInt8;
  rec.quant.gelu_clip = 10.0f;
  rec.quant.layers.resize(2);
  auto& q = rec.quant.layers[1].sites[static_cast<int>(quant::LinearSite::kFfnOut)];
  q.precision = Precision::kInt8;
  q.scaling = quant::ActivationScaling::kStaticPerTensor;
  q.input_scale = 0.05f;
  q.smooth = {1.5f, 2.0f, 0.5f, 1.0f, 3.0f, 1.0f};  // the intermediate width
  rec.quant.layers[0].sites[0].precision = Precision::kBF16;
  return rec;
}

TEST(QuantSection, RoundTrips) {
  const QuantRecord rec = sample_quant();
  auto back = decode_quant(encode_quant(rec), 2, 4, 6);
  ASSERT_TRUE(back.ok()) << back.status().to_string();
  EXPECT_EQ(back->precision, Precision::kInt8);
  EXPECT_EQ(back->quant.gelu_clip, 10.0f);
  ASSERT_EQ(back->quant.layers.size(), 2u);
  EXPECT_EQ(back->quant.layers[0].sites[0].precision, Precision::kBF16);
  const auto& q = back->quant.layers[1].sites[3];
  EXPECT_EQ(q.precision, Precision::kInt8);
  EXPECT_EQ(q.scaling, quant::ActivationScaling::kStaticPerTensor);
  EXPECT_EQ(q.input_scale, 0.05f);
  EXPECT_EQ(q.smooth, rec.quant.layers[1].sites[3].smooth);
  EXPECT_TRUE(back->quant.layers[1].sites[0].smooth.empty());
}

TEST(QuantSection, CudaPlansRoundTrip) {
  for (Precision p : {Precision::kF16, Precision::kFp8}) {  // fp16 and fp8 CUDA plans
    SCOPED_TRACE(precision_name(p));
    QuantRecord rec;
    rec.precision = p;
    rec.quant.layers.resize(2);
    for (auto& l : rec.quant.layers) {
      for (auto& site : l.sites) site.precision = p;
    }
    auto back = decode_quant(encode_quant(rec), 2, 4, 6);
    ASSERT_TRUE(back.ok()) << back.status().to_string();
    EXPECT_EQ(back->precision, p);
    EXPECT_EQ(back->quant.layers[1].sites[3].precision, p);
    EXPECT_EQ(precision_summary(p, back->quant), precision_name(p));
  }
}

TEST(Precision, NamesRoundTrip) {
  for (Precision p :
       {Precision::kF32, Precision::kBF16, Precision::kInt8, Precision::kF16, Precision::kFp8}) {
    Precision back = Precision::kF32;
    ASSERT_TRUE(parse_precision(precision_name(p), &back)) << precision_name(p);
    EXPECT_EQ(back, p);
  }
  Precision e4m3 = Precision::kF32;
  EXPECT_TRUE(parse_precision("e4m3", &e4m3));
  EXPECT_EQ(e4m3, Precision::kFp8);
  EXPECT_FALSE(parse_precision("fp4", &e4m3));
}

TEST(QuantSection, RefusesInconsistentContents) {
  const std::string good = encode_quant(sample_quant());
  auto expect_loss = [](const Result<QuantRecord>& r, const std::string& words) {
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), StatusCode::kDataLoss);
    EXPECT_NE(r.status().message().find(words), std::string::npos) << r.status().to_string();
  };
  expect_loss(decode_quant(good, 3, 4, 6), "2 layers; the model has 3");
  expect_loss(decode_quant(good, 2, 4, 8), "SmoothQuant vector of 6 for an input of 8");
  expect_loss(decode_quant(good + "x", 2, 4, 6), "trailing");
  expect_loss(decode_quant(good.substr(0, good.size() - 1), 2, 4, 6), "ends early");
  std::string bad = good;
  bad[0] = 7;  // the default precision
  expect_loss(decode_quant(bad, 2, 4, 6), "unknown precision 7");
  QuantRecord negative = sample_quant();
  negative.quant.layers[0].sites[1].input_scale = -1.0f;
  expect_loss(decode_quant(encode_quant(negative), 2, 4, 6), "input scale");
  QuantRecord nan = sample_quant();
  nan.quant.gelu_clip = std::nanf("");
  expect_loss(decode_quant(encode_quant(nan), 2, 4, 6), "GELU clip");
}

TEST(SparsitySection, RoundTripsAndChecks) {
  SparsityRecord rec(3);
  rec[2][1] = Sparsity::kTwoFour;
  auto back = decode_sparsity(encode_sparsity(rec), 3);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ((*back)[2][1], Sparsity::kTwoFour);
  EXPECT_EQ((*back)[0][0], Sparsity::kDense);
  EXPECT_FALSE(decode_sparsity(encode_sparsity(rec), 4).ok());
  std::string bad = encode_sparsity(rec);
  bad.back() = 9;
  EXPECT_EQ(decode_sparsity(bad, 3).status().code(), StatusCode::kDataLoss);
}

TEST(ModelSection, RoundTrips) {
  ModelRecord rec;
  rec.config_json = R"({"model_type": "bert", "text": "quotes \" and \\ survive"})";
  rec.task = Task::kSequenceClassification;
  rec.labels = {"negative", "positive"};
  rec.pooling.mode = PoolingMode::kCls;
  rec.pooling.normalize = true;
  rec.pooling.max_seq_length = 256;
  rec.pooling.from_sentence_transformers = true;
  rec.head_activation = model::HeadActivation::kTanh;
  rec.num_parameters = 123456789;
  rec.source = "/models/x";
  auto back = decode_model(encode_model(rec));
  ASSERT_TRUE(back.ok()) << back.status().to_string();
  EXPECT_EQ(back->config_json, rec.config_json);
  EXPECT_EQ(back->task, rec.task);
  EXPECT_EQ(back->labels, rec.labels);
  EXPECT_EQ(back->pooling.mode, PoolingMode::kCls);
  EXPECT_TRUE(back->pooling.normalize);
  EXPECT_EQ(back->pooling.max_seq_length, 256);
  EXPECT_TRUE(back->pooling.from_sentence_transformers);
  EXPECT_EQ(back->head_activation, model::HeadActivation::kTanh);
  EXPECT_EQ(back->num_parameters, 123456789);
  EXPECT_EQ(back->source, "/models/x");
  for (const char* bad :
       {"", "[]", "{\"config\": 1}", "{\"config\": \"{}\", \"task\": \"dance\"}"}) {
    auto r = decode_model(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), StatusCode::kDataLoss) << bad;
  }
}

TEST(TokenizerSection, RoundTripsAndChecks) {
  const std::string bytes = encode_tokenizer(TokenizerRecord::Kind::kVocab, false, "[PAD]\nhi\n");
  auto back = decode_tokenizer(bytes);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->kind, TokenizerRecord::Kind::kVocab);
  EXPECT_FALSE(back->lowercase);
  EXPECT_EQ(back->text, "[PAD]\nhi\n");
  EXPECT_FALSE(decode_tokenizer(bytes.substr(0, 5)).ok());
  std::string bad = bytes;
  bad[0] = 3;
  EXPECT_EQ(decode_tokenizer(bad).status().code(), StatusCode::kDataLoss);
}

}  // namespace
}  // namespace kiln::plan
