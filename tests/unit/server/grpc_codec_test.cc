#include "server/grpc/grpc_codec.h"

#include <gtest/gtest.h>

#include <cstring>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "server/grpc/grpc_statistics.h"

namespace kiln::server {
namespace {

using inference::ModelInferRequest;

// RepeatedField has no initializer-list Add in protobuf 3.21.
template <typename Field, typename T>
void add_all(Field* field, std::initializer_list<T> values) {
  for (const T& v : values) field->Add(v);
}

std::string le_bytes(const void* data, size_t size) {
  return std::string(static_cast<const char*>(data), size);
}

template <typename T>
std::vector<T> values_of(const Tensor& t) {
  std::vector<T> out(t.byte_size / sizeof(T));
  std::memcpy(out.data(), t.data, out.size() * sizeof(T));
  return out;
}

// A request message shared with the decoder as its own owner, as the frontend does.
struct Message {
  std::shared_ptr<ModelInferRequest> msg = std::make_shared<ModelInferRequest>();

  ModelInferRequest::InferInputTensor* add_input(const std::string& name,
                                                 const std::string& datatype,
                                                 const std::vector<int64_t>& shape) {
    auto* in = msg->add_inputs();
    in->set_name(name);
    in->set_datatype(datatype);
    for (int64_t d : shape) in->add_shape(d);
    return in;
  }
  Result<InferRequest> decode() const { return decode_infer_request(*msg, msg); }
};

void expect_error(const Result<InferRequest>& r, StatusCode code,
                  const std::vector<std::string>& fragments) {
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), code) << r.status().to_string();
  for (const std::string& f : fragments) {
    EXPECT_NE(r.status().message().find(f), std::string::npos)
        << "'" << f << "' missing from: " << r.status().message();
  }
}

TEST(GrpcCodecTest, RawInputsAreViewsKeptAliveByTheOwner) {
  Message m;
  m.msg->set_model_name("bert");
  m.msg->set_model_version("2");
  m.msg->set_id("req-7");
  m.add_input("input_ids", "INT64", {2, 3});
  m.add_input("mask", "INT32", {2, 3});
  const std::vector<int64_t> ids = {101, 7592, 102, 101, 2088, 102};
  const std::vector<int32_t> mask = {1, 1, 1, 1, 1, 0};
  m.msg->add_raw_input_contents(le_bytes(ids.data(), ids.size() * 8));
  m.msg->add_raw_input_contents(le_bytes(mask.data(), mask.size() * 4));
  const long uses_before = m.msg.use_count();

  auto r = m.decode();
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->model_name, "bert");
  EXPECT_EQ(r->model_version, "2");
  EXPECT_EQ(r->id, "req-7");
  ASSERT_EQ(r->inputs.size(), 2u);
  const Tensor& t = r->inputs[0];
  EXPECT_EQ(t.name, "input_ids");
  EXPECT_EQ(t.datatype, DataType::kInt64);
  EXPECT_EQ(t.shape, (std::vector<int64_t>{2, 3}));
  // Zero copy: the tensor points into the message, and owns a reference to it.
  EXPECT_EQ(static_cast<const void*>(t.data), m.msg->raw_input_contents(0).data());
  EXPECT_EQ(m.msg.use_count(), uses_before + 2);
  EXPECT_EQ(values_of<int64_t>(t), ids);
  EXPECT_EQ(values_of<int32_t>(r->inputs[1]), mask);
  EXPECT_TRUE(r->outputs.empty());
}

TEST(GrpcCodecTest, TypedInputsOfEveryDatatype) {
  Message m;
  add_all(m.add_input("b", "BOOL", {3})->mutable_contents()->mutable_bool_contents(),
          {true, false, true});
  add_all(m.add_input("i8", "INT8", {2})->mutable_contents()->mutable_int_contents(), {-128, 127});
  add_all(m.add_input("i16", "INT16", {2})->mutable_contents()->mutable_int_contents(),
          {-300, 300});
  m.add_input("i32", "INT32", {1})->mutable_contents()->mutable_int_contents()->Add(-70000);
  add_all(m.add_input("i64", "INT64", {1, 2})->mutable_contents()->mutable_int64_contents(),
          {-5000000000LL, 9LL});
  m.add_input("u8", "UINT8", {1})->mutable_contents()->mutable_uint_contents()->Add(255);
  m.add_input("u16", "UINT16", {1})->mutable_contents()->mutable_uint_contents()->Add(65535);
  m.add_input("u32", "UINT32", {1})->mutable_contents()->mutable_uint_contents()->Add(4000000000u);
  m.add_input("u64", "UINT64", {1})
      ->mutable_contents()
      ->mutable_uint64_contents()
      ->Add(18000000000000000000ull);
  add_all(m.add_input("f32", "FP32", {2})->mutable_contents()->mutable_fp32_contents(),
          {1.5f, -2.f});
  m.add_input("f64", "FP64", {1})->mutable_contents()->mutable_fp64_contents()->Add(0.125);

  auto r = m.decode();
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  const auto& in = r->inputs;
  ASSERT_EQ(in.size(), 11u);
  EXPECT_EQ(values_of<uint8_t>(in[0]), (std::vector<uint8_t>{1, 0, 1}));
  EXPECT_EQ(values_of<int8_t>(in[1]), (std::vector<int8_t>{-128, 127}));
  EXPECT_EQ(values_of<int16_t>(in[2]), (std::vector<int16_t>{-300, 300}));
  EXPECT_EQ(values_of<int32_t>(in[3]), (std::vector<int32_t>{-70000}));
  EXPECT_EQ(values_of<int64_t>(in[4]), (std::vector<int64_t>{-5000000000LL, 9}));
  EXPECT_EQ(values_of<uint8_t>(in[5]), (std::vector<uint8_t>{255}));
  EXPECT_EQ(values_of<uint16_t>(in[6]), (std::vector<uint16_t>{65535}));
  EXPECT_EQ(values_of<uint32_t>(in[7]), (std::vector<uint32_t>{4000000000u}));
  EXPECT_EQ(values_of<uint64_t>(in[8]), (std::vector<uint64_t>{18000000000000000000ull}));
  EXPECT_EQ(values_of<float>(in[9]), (std::vector<float>{1.5f, -2.f}));
  EXPECT_EQ(values_of<double>(in[10]), (std::vector<double>{0.125}));
  EXPECT_EQ(in[4].shape, (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(in[10].datatype, DataType::kFp64);
  // Typed data is copied into buffers the tensors own, not views of the message.
  EXPECT_NE(in[0].owner, nullptr);
  EXPECT_NE(in[0].owner, std::static_pointer_cast<const void>(m.msg));
}

TEST(GrpcCodecTest, TypedBytesBecomeLengthPrefixedLayout) {
  Message m;
  auto* c = m.add_input("text", "BYTES", {2})->mutable_contents();
  c->add_bytes_contents("hi");
  c->add_bytes_contents(std::string("a\0b", 3));
  auto r = m.decode();
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  const Tensor& t = r->inputs[0];
  const std::string expected = std::string("\x02\0\0\0hi", 6) + std::string("\x03\0\0\0a\0b", 7);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(t.data), t.byte_size), expected);
}

TEST(GrpcCodecTest, RawBytesLayoutIsValidated) {
  const std::string two = std::string("\x02\0\0\0hi", 6) + std::string("\x00\0\0\0", 4);
  {
    Message m;
    m.add_input("text", "BYTES", {2});
    m.msg->add_raw_input_contents(two);
    auto r = m.decode();
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    EXPECT_EQ(r->inputs[0].byte_size, 10u);
  }
  {
    Message m;
    m.add_input("text", "BYTES", {3});
    m.msg->add_raw_input_contents(two);
    expect_error(m.decode(), StatusCode::kInvalidArgument, {"'text'", "holds 2", "needs 3"});
  }
  {
    Message m;
    m.add_input("text", "BYTES", {1});
    m.msg->add_raw_input_contents(std::string("\x09\0\0\0hi", 6));
    expect_error(m.decode(), StatusCode::kInvalidArgument,
                 {"'text'", "element 0", "declares 9 bytes", "only 2 remain"});
  }
  {
    Message m;
    m.add_input("text", "BYTES", {2});
    m.msg->add_raw_input_contents(std::string("\x02\0\0\0hi\x01\0", 8));
    expect_error(m.decode(), StatusCode::kInvalidArgument,
                 {"'text'", "element 1", "truncated 4-byte length prefix"});
  }
}

TEST(GrpcCodecTest, RawErrorsNameTheProblem) {
  {
    Message m;
    m.add_input("x", "FP32", {2, 3});
    m.msg->add_raw_input_contents(std::string(20, '\0'));
    expect_error(m.decode(), StatusCode::kInvalidArgument,
                 {"'x'", "20 bytes", "[2, 3]", "FP32", "needs 24"});
  }
  {
    Message m;
    m.add_input("x", "FP32", {1});
    m.add_input("y", "FP32", {1});
    m.msg->add_raw_input_contents(std::string(4, '\0'));
    expect_error(m.decode(), StatusCode::kInvalidArgument,
                 {"raw_input_contents has 1 entries", "2 inputs"});
  }
  {
    Message m;
    m.add_input("x", "INT32", {1})->mutable_contents()->add_int_contents(1);
    m.msg->add_raw_input_contents(std::string(4, '\0'));
    expect_error(m.decode(), StatusCode::kInvalidArgument,
                 {"'x'", "contents must not be set", "raw_input_contents"});
  }
  {
    Message m;
    m.add_input("h", "FP16", {2});
    m.msg->add_raw_input_contents(std::string(4, '\0'));
    EXPECT_TRUE(m.decode().ok());  // FP16 and BF16 travel raw
  }
}

TEST(GrpcCodecTest, TypedErrorsNameTheProblem) {
  {
    Message m;
    add_all(m.add_input("ids", "INT64", {2, 3})->mutable_contents()->mutable_int64_contents(),
            {1, 2, 3, 4, 5});
    expect_error(m.decode(), StatusCode::kInvalidArgument,
                 {"'ids'", "[2, 3]", "needs 6 elements", "int64_contents has 5"});
  }
  {
    Message m;
    m.add_input("ids", "INT64", {1})->mutable_contents()->add_int_contents(1);
    expect_error(m.decode(), StatusCode::kInvalidArgument,
                 {"'ids'", "INT64", "expects data in int64_contents", "got int_contents"});
  }
  {
    Message m;
    m.add_input("h", "BF16", {1})->mutable_contents()->add_fp32_contents(1.f);
    expect_error(m.decode(), StatusCode::kInvalidArgument,
                 {"'h'", "BF16", "must be sent in raw_input_contents"});
  }
  {
    Message m;
    m.add_input("small", "INT8", {1})->mutable_contents()->add_int_contents(300);
    expect_error(m.decode(), StatusCode::kInvalidArgument,
                 {"'small'", "value 300", "out of range for INT8"});
  }
  {
    Message m;
    m.add_input("ids", "INT64", {4});  // neither raw nor typed data
    expect_error(m.decode(), StatusCode::kInvalidArgument, {"'ids'", "needs 4 elements"});
  }
  {
    Message m;
    m.add_input("empty", "INT64", {0, 3});  // an empty tensor needs no data
    auto r = m.decode();
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    EXPECT_EQ(r->inputs[0].byte_size, 0u);
  }
}

TEST(GrpcCodecTest, TensorErrorsNameTheProblem) {
  {
    Message m;
    m.add_input("x", "FLOAT32", {1});
    expect_error(m.decode(), StatusCode::kInvalidArgument, {"'x'", "unknown datatype 'FLOAT32'"});
  }
  {
    Message m;
    m.add_input("x", "FP32", {2, -1});
    expect_error(m.decode(), StatusCode::kInvalidArgument,
                 {"'x'", "negative dimension", "[2, -1]"});
  }
  {
    Message m;
    m.add_input("x", "FP32", {1})->mutable_contents()->add_fp32_contents(1.f);
    m.add_input("x", "FP32", {1})->mutable_contents()->add_fp32_contents(2.f);
    expect_error(m.decode(), StatusCode::kInvalidArgument, {"'x'", "given twice"});
  }
  {
    Message m;
    m.add_input("x", "FP32", {1 << 30, 1 << 30, 1 << 30});
    expect_error(m.decode(), StatusCode::kInvalidArgument, {"'x'", "too many elements"});
  }
  {
    Message m;
    auto* in = m.add_input("x", "FP32", {1});
    (*in->mutable_parameters())["shared_memory_region"].set_string_param("region0");
    expect_error(m.decode(), StatusCode::kUnimplemented, {"input 'x'", "shared memory"});
  }
  {
    Message m;
    auto* out = m.msg->add_outputs();
    out->set_name("logits");
    (*out->mutable_parameters())["classification"].set_int64_param(3);
    expect_error(m.decode(), StatusCode::kUnimplemented, {"output 'logits'", "classification"});
  }
}

TEST(GrpcCodecTest, ReservedParametersAndPassThrough) {
  Message m;
  auto& p = *m.msg->mutable_parameters();
  p["priority"].set_uint64_param(2);
  p["timeout"].set_int64_param(1500);
  p["sequence_id"].set_string_param("seq-1");
  p["sequence_start"].set_bool_param(true);
  p["count"].set_int64_param(-4);
  p["big"].set_uint64_param(7);
  p["ratio"].set_double_param(0.5);
  p[std::string(kEnableEmptyFinalResponse)].set_bool_param(true);
  m.msg->add_outputs()->set_name("logits");
  m.msg->add_outputs()->set_name("pooled");

  auto r = m.decode();
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->priority, 2u);
  EXPECT_EQ(r->timeout_us, 1500u);
  EXPECT_EQ(r->parameters.size(), 5u);  // not priority, timeout, or the stream flag
  EXPECT_EQ(std::get<std::string>(r->parameters.at("sequence_id")), "seq-1");
  EXPECT_EQ(std::get<bool>(r->parameters.at("sequence_start")), true);
  EXPECT_EQ(std::get<int64_t>(r->parameters.at("count")), -4);
  EXPECT_EQ(std::get<int64_t>(r->parameters.at("big")), 7);
  EXPECT_EQ(std::get<double>(r->parameters.at("ratio")), 0.5);
  EXPECT_EQ(r->outputs, (std::vector<std::string>{"logits", "pooled"}));

  Message m2;
  (*m2.msg->mutable_parameters())["priority"].set_int64_param(3);
  auto r2 = m2.decode();
  ASSERT_TRUE(r2.ok());
  EXPECT_EQ(r2->priority, 3u);
}

TEST(GrpcCodecTest, ParameterErrorsNameTheProblem) {
  {
    Message m;
    (*m.msg->mutable_parameters())["priority"].set_int64_param(-1);
    expect_error(m.decode(), StatusCode::kInvalidArgument, {"'priority'", "non-negative"});
  }
  {
    Message m;
    (*m.msg->mutable_parameters())["timeout"].set_string_param("5s");
    expect_error(m.decode(), StatusCode::kInvalidArgument, {"'timeout'", "non-negative integer"});
  }
  {
    Message m;
    (*m.msg->mutable_parameters())["priority"].set_uint64_param(1ull << 40);
    expect_error(m.decode(), StatusCode::kInvalidArgument, {"'priority'", "out of range"});
  }
  {
    Message m;
    (*m.msg->mutable_parameters())["huge"].set_uint64_param(~0ull);
    expect_error(m.decode(), StatusCode::kInvalidArgument, {"'huge'", "out of range"});
  }
  {
    Message m;
    (*m.msg->mutable_parameters())["unset"];
    expect_error(m.decode(), StatusCode::kInvalidArgument, {"'unset'", "has no value"});
  }
}

TEST(GrpcCodecTest, ResponseOutputsAreRaw) {
  InferResponse response;
  response.model_name = "bert";
  response.model_version = "3";
  response.id = "abc";
  response.parameters["sequence_end"] = true;
  response.parameters["note"] = std::string("x");
  const std::vector<float> logits = {0.25f, -1.f, 3.5f, 8.f};
  std::vector<uint8_t> bytes(16);
  std::memcpy(bytes.data(), logits.data(), 16);
  response.outputs.push_back(Tensor::owned("logits", DataType::kFp32, {2, 2}, bytes));
  response.outputs.push_back(
      Tensor::owned("label", DataType::kBytes, {1}, {3, 0, 0, 0, 'p', 'o', 's'}));

  inference::ModelInferResponse msg;
  encode_infer_response(response, &msg);
  EXPECT_EQ(msg.model_name(), "bert");
  EXPECT_EQ(msg.model_version(), "3");
  EXPECT_EQ(msg.id(), "abc");
  EXPECT_TRUE(msg.parameters().at("sequence_end").bool_param());
  EXPECT_EQ(msg.parameters().at("note").string_param(), "x");
  ASSERT_EQ(msg.outputs_size(), 2);
  ASSERT_EQ(msg.raw_output_contents_size(), 2);
  EXPECT_EQ(msg.outputs(0).name(), "logits");
  EXPECT_EQ(msg.outputs(0).datatype(), "FP32");
  EXPECT_EQ(std::vector<int64_t>(msg.outputs(0).shape().begin(), msg.outputs(0).shape().end()),
            (std::vector<int64_t>{2, 2}));
  EXPECT_FALSE(msg.outputs(0).has_contents());
  EXPECT_EQ(msg.raw_output_contents(0), le_bytes(logits.data(), 16));
  EXPECT_EQ(msg.outputs(1).datatype(), "BYTES");
  EXPECT_EQ(msg.raw_output_contents(1), std::string("\x03\0\0\0pos", 7));
}

TEST(GrpcCodecTest, StatisticsKeepEveryField) {
  ModelStatistics s;
  s.name = "bert";
  s.version = "1";
  s.last_inference_ms = 1700000000123;
  s.inference_count = 40;
  s.execution_count = 5;
  s.success = {10, 1000};
  s.fail = {2, 20};
  s.queue = {10, 300};
  s.compute_input = {5, 50};
  s.compute_infer = {5, 500};
  s.compute_output = {5, 60};
  s.cache_hit = {3, 30};
  s.cache_miss = {7, 70};
  s.batch_stats.push_back({8, {4, 40}, {4, 400}, {4, 44}});
  s.batch_stats.push_back({1, {1, 10}, {1, 100}, {1, 11}});

  inference::ModelStatistics m;
  encode_model_statistics(s, &m);
  EXPECT_EQ(m.name(), "bert");
  EXPECT_EQ(m.version(), "1");
  EXPECT_EQ(m.last_inference(), 1700000000123u);
  EXPECT_EQ(m.inference_count(), 40u);
  EXPECT_EQ(m.execution_count(), 5u);
  const auto& i = m.inference_stats();
  EXPECT_EQ(i.success().count(), 10u);
  EXPECT_EQ(i.success().ns(), 1000u);
  EXPECT_EQ(i.fail().ns(), 20u);
  EXPECT_EQ(i.queue().ns(), 300u);
  EXPECT_EQ(i.compute_input().ns(), 50u);
  EXPECT_EQ(i.compute_infer().ns(), 500u);
  EXPECT_EQ(i.compute_output().ns(), 60u);
  EXPECT_EQ(i.cache_hit().count(), 3u);
  EXPECT_EQ(i.cache_miss().ns(), 70u);
  ASSERT_EQ(m.batch_stats_size(), 2);
  EXPECT_EQ(m.batch_stats(0).batch_size(), 8u);
  EXPECT_EQ(m.batch_stats(0).compute_infer().ns(), 400u);
  EXPECT_EQ(m.batch_stats(1).compute_output().count(), 1u);
}

TEST(GrpcCodecTest, MetadataAndIndex) {
  ModelMetadata md{"bert",
                   {"1", "2"},
                   "kiln",
                   {{"input_ids", DataType::kInt64, {-1, -1}}},
                   {{"logits", DataType::kFp32, {-1, 2}}}};
  inference::ModelMetadataResponse m;
  encode_model_metadata(md, &m);
  EXPECT_EQ(m.name(), "bert");
  EXPECT_EQ(m.versions_size(), 2);
  EXPECT_EQ(m.platform(), "kiln");
  EXPECT_EQ(m.inputs(0).datatype(), "INT64");
  EXPECT_EQ(m.inputs(0).shape(1), -1);
  EXPECT_EQ(m.outputs(0).name(), "logits");
  EXPECT_EQ(m.outputs(0).shape(1), 2);

  inference::RepositoryIndexResponse index;
  encode_repository_index({{"bert", "1", "READY", ""}, {"gone", "", "UNAVAILABLE", "unloaded"}},
                          &index);
  ASSERT_EQ(index.models_size(), 2);
  EXPECT_EQ(index.models(1).state(), "UNAVAILABLE");
  EXPECT_EQ(index.models(1).reason(), "unloaded");
}

}  // namespace
}  // namespace kiln::server
