// The HTTP frontend's pure parts: infer request parsing (JSON, nested data, the binary tensor
// extension, BYTES, every error path), response encoding, compression, routes and JSON bodies.
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <zlib.h>

#include <cstring>
#include <string>
#include <vector>

#include "server/http/api_router.h"
#include "server/http/compression.h"
#include "server/http/infer_codec.h"
#include "server/http/json_writer.h"

namespace kiln::server::http {
namespace {

using Body = std::shared_ptr<const std::string>;

Body make_body(const std::string& json, const std::string& binary = "") {
  return std::make_shared<const std::string>(json + binary);
}

// Parses `json` (+ `binary` after it, announced by the header length when non-empty).
Result<ParsedInfer> parse(const std::string& json, const std::string& binary = "") {
  std::optional<size_t> header;
  if (!binary.empty()) header = json.size();
  return parse_infer_request(make_body(json, binary), header, "m", "2");
}

template <typename T>
std::vector<T> values(const Tensor& t) {
  std::vector<T> out(t.byte_size / sizeof(T));
  std::memcpy(out.data(), t.data, t.byte_size);
  return out;
}

template <typename T>
std::string raw(const std::vector<T>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}

std::string bytes_elements(const std::vector<std::string>& elements) {
  std::string out;
  for (const std::string& e : elements) {
    const uint32_t len = e.size();
    out.append(reinterpret_cast<const char*>(&len), 4);
    out += e;
  }
  return out;
}

// Expects an error of `code` whose message contains every one of `parts`.
template <typename T>
void expect_error(const Result<T>& r, StatusCode code, std::initializer_list<std::string> parts) {
  ASSERT_FALSE(r.ok()) << "expected an error mentioning " << *parts.begin();
  EXPECT_EQ(r.status().code(), code) << r.status().to_string();
  for (const std::string& p : parts) {
    EXPECT_NE(r.status().message().find(p), std::string::npos)
        << "message '" << r.status().message() << "' lacks '" << p << "'";
  }
}

// ---- request parsing: JSON -------------------------------------------------------------------

TEST(HttpInferParse, JsonFlatAndNestedDataGiveTheSameRowMajorBytes) {
  auto flat = parse(R"({"id":"r1","inputs":[{"name":"x","datatype":"FP32","shape":[2,2],
                       "data":[1,2.5,-3,4]}]})");
  auto nested = parse(R"({"inputs":[{"name":"x","datatype":"FP32","shape":[2,2],
                         "data":[[1,2.5],[-3,4]]}]})");
  ASSERT_TRUE(flat.ok()) << flat.status().to_string();
  ASSERT_TRUE(nested.ok()) << nested.status().to_string();
  const InferRequest& r = flat->request;
  EXPECT_EQ(r.model_name, "m");
  EXPECT_EQ(r.model_version, "2");
  EXPECT_EQ(r.id, "r1");
  ASSERT_EQ(r.inputs.size(), 1u);
  EXPECT_EQ(r.inputs[0].name, "x");
  EXPECT_EQ(r.inputs[0].datatype, DataType::kFp32);
  EXPECT_EQ(r.inputs[0].shape, (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(values<float>(r.inputs[0]), (std::vector<float>{1, 2.5f, -3, 4}));
  EXPECT_EQ(values<float>(nested->request.inputs[0]), values<float>(r.inputs[0]));
  EXPECT_NE(r.inputs[0].owner, nullptr);
  EXPECT_TRUE(r.outputs.empty());
  EXPECT_FALSE(flat->format.is_binary("anything"));
}

TEST(HttpInferParse, EveryIntegerTypeAndBoolConverts) {
  auto r = parse(R"({"inputs":[
      {"name":"b","datatype":"BOOL","shape":[3],"data":[true,false,true]},
      {"name":"u8","datatype":"UINT8","shape":[2],"data":[0,255]},
      {"name":"u64","datatype":"UINT64","shape":[1],"data":[18446744073709551615]},
      {"name":"i8","datatype":"INT8","shape":[2],"data":[-128,127]},
      {"name":"i16","datatype":"INT16","shape":[1],"data":[-300]},
      {"name":"i32","datatype":"INT32","shape":[1,1],"data":[[7]]},
      {"name":"i64","datatype":"INT64","shape":[2],"data":[-9223372036854775808,5]},
      {"name":"f64","datatype":"FP64","shape":[1],"data":[0.1]}]})");
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  const auto& in = r->request.inputs;
  EXPECT_EQ(values<uint8_t>(in[0]), (std::vector<uint8_t>{1, 0, 1}));
  EXPECT_EQ(values<uint8_t>(in[1]), (std::vector<uint8_t>{0, 255}));
  EXPECT_EQ(values<uint64_t>(in[2]), (std::vector<uint64_t>{18446744073709551615ull}));
  EXPECT_EQ(values<int8_t>(in[3]), (std::vector<int8_t>{-128, 127}));
  EXPECT_EQ(values<int16_t>(in[4]), (std::vector<int16_t>{-300}));
  EXPECT_EQ(values<int32_t>(in[5]), (std::vector<int32_t>{7}));
  EXPECT_EQ(values<int64_t>(in[6]), (std::vector<int64_t>{INT64_MIN, 5}));
  EXPECT_EQ(values<double>(in[7]), (std::vector<double>{0.1}));
}

TEST(HttpInferParse, JsonValuesOutOfRangeOrOfTheWrongTypeNameInputElementAndType) {
  expect_error(
      parse(R"({"inputs":[{"name":"ids","datatype":"UINT8","shape":[2],"data":[1,300]}]})"),
      StatusCode::kInvalidArgument, {"'ids'", "element 1", "UINT8", "300"});
  expect_error(parse(R"({"inputs":[{"name":"a","datatype":"INT8","shape":[1],"data":[-129]}]})"),
               StatusCode::kInvalidArgument, {"'a'", "INT8", "-129"});
  expect_error(parse(R"({"inputs":[{"name":"a","datatype":"INT32","shape":[1],"data":[1.5]}]})"),
               StatusCode::kInvalidArgument, {"'a'", "INT32"});
  expect_error(parse(R"({"inputs":[{"name":"m","datatype":"BOOL","shape":[1],"data":[1]}]})"),
               StatusCode::kInvalidArgument, {"'m'", "BOOL", "true or false"});
  expect_error(parse(R"({"inputs":[{"name":"f","datatype":"FP32","shape":[1],"data":["x"]}]})"),
               StatusCode::kInvalidArgument, {"'f'", "FP32", "a string"});
  expect_error(parse(R"({"inputs":[{"name":"f","datatype":"FP32","shape":[1],"data":[1e300]}]})"),
               StatusCode::kInvalidArgument, {"'f'", "FP32", "range"});
  expect_error(parse(R"({"inputs":[{"name":"s","datatype":"BYTES","shape":[1],"data":[3]}]})"),
               StatusCode::kInvalidArgument, {"'s'", "BYTES", "a string"});
}

TEST(HttpInferParse, JsonBytesBecomeLengthPrefixedElements) {
  auto r = parse(R"({"inputs":[{"name":"text","datatype":"BYTES","shape":[1,3],
                   "data":[["hello","","\u00e9"]]}]})");
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  const Tensor& t = r->request.inputs[0];
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(t.data), t.byte_size),
            bytes_elements({"hello", "", "\xc3\xa9"}));
}

TEST(HttpInferParse, DataCountMustMatchTheShape) {
  expect_error(parse(R"({"inputs":[{"name":"x","datatype":"FP32","shape":[2,2],"data":[1,2,3]}]})"),
               StatusCode::kInvalidArgument, {"'x'", "3 elements", "[2,2]", "needs 4"});
  expect_error(
      parse(R"({"inputs":[{"name":"x","datatype":"INT64","shape":[1],"data":[[1],[2]]}]})"),
      StatusCode::kInvalidArgument, {"'x'", "2 elements"});
  auto empty = parse(R"({"inputs":[{"name":"x","datatype":"INT64","shape":[0,3],"data":[]}]})");
  ASSERT_TRUE(empty.ok()) << empty.status().to_string();
  EXPECT_EQ(empty->request.inputs[0].byte_size, 0u);
}

TEST(HttpInferParse, Fp16AndBf16AreRefusedAsJson) {
  expect_error(parse(R"({"inputs":[{"name":"h","datatype":"FP16","shape":[1],"data":[1.0]}]})"),
               StatusCode::kInvalidArgument, {"'h'", "FP16", "binary"});
  expect_error(parse(R"({"inputs":[{"name":"h","datatype":"BF16","shape":[1],"data":[1.0]}]})"),
               StatusCode::kInvalidArgument, {"'h'", "BF16", "binary"});
}

TEST(HttpInferParse, MalformedRequestsNameTheProblem) {
  using C = StatusCode;
  expect_error(parse(R"({"inputs":[)"), C::kInvalidArgument, {"invalid JSON", "byte"});
  expect_error(parse(R"([1,2])"), C::kInvalidArgument, {"JSON object"});
  expect_error(parse(R"({"id":"x"})"), C::kInvalidArgument, {"'inputs'"});
  expect_error(parse(R"({"inputs":{}})"), C::kInvalidArgument, {"'inputs'", "array"});
  expect_error(parse(R"({"id":5,"inputs":[]})"), C::kInvalidArgument, {"'id'"});
  expect_error(parse(R"({"inputs":[{"datatype":"FP32","shape":[1],"data":[1]}]})"),
               C::kInvalidArgument, {"inputs[0]", "'name'"});
  expect_error(parse(R"({"inputs":[{"name":"x","datatype":"FP8","shape":[1],"data":[1]}]})"),
               C::kInvalidArgument, {"'x'", "unknown datatype 'FP8'"});
  expect_error(parse(R"({"inputs":[{"name":"x","shape":[1],"data":[1]}]})"), C::kInvalidArgument,
               {"'x'", "'datatype'"});
  expect_error(parse(R"({"inputs":[{"name":"x","datatype":"FP32","shape":[-1],"data":[1]}]})"),
               C::kInvalidArgument, {"'x'", "-1", "non-negative"});
  expect_error(parse(R"({"inputs":[{"name":"x","datatype":"FP32","shape":"1","data":[1]}]})"),
               C::kInvalidArgument, {"'x'", "'shape'"});
  expect_error(parse(R"({"inputs":[{"name":"x","datatype":"FP32","shape":[1],"data":1}]})"),
               C::kInvalidArgument, {"'x'", "'data' must be an array"});
  expect_error(parse(R"({"inputs":[{"name":"x","datatype":"FP32","shape":[1]}]})"),
               C::kInvalidArgument, {"'x'", "exactly one of"});
  expect_error(parse(R"({"inputs":[{"name":"x","datatype":"FP32","shape":[1],"data":[1]},
                        {"name":"x","datatype":"FP32","shape":[1],"data":[2]}]})"),
               C::kInvalidArgument, {"'x'", "twice"});
  expect_error(parse(R"({"inputs":[{"name":"x","datatype":"FP32","shape":[1],"data":[1],
                        "parameters":{"shared_memory_region":"r"}}]})"),
               C::kInvalidArgument, {"exactly one of"});
  expect_error(parse(R"({"inputs":[{"name":"x","datatype":"FP32","shape":[1],
                        "parameters":{"shared_memory_region":"r"}}]})"),
               C::kUnimplemented, {"'x'", "shared memory"});
  expect_error(parse(""), C::kInvalidArgument, {"empty"});
  std::string deep = R"({"inputs":[{"name":"d","datatype":"INT32","shape":[1],"data":)" +
                     std::string(40, '[') + "1" + std::string(40, ']') + "}]}";
  expect_error(parse(deep), C::kInvalidArgument, {"'d'", "deeper"});
}

TEST(HttpInferParse, UnknownTopLevelFieldsAreIgnored) {
  auto r = parse(R"({"future":{"a":[1]},"inputs":[{"name":"x","datatype":"INT32","shape":[1],
                   "data":[1]}]})");
  EXPECT_TRUE(r.ok()) << r.status().to_string();
}

// ---- request parsing: parameters and outputs -------------------------------------------------

TEST(HttpInferParse, ReservedParametersMapToFieldsAndOthersPassThrough) {
  auto r = parse(R"({"parameters":{"priority":3,"timeout":2500,"binary_data_output":true,
                   "sequence_id":42,"sequence_start":true,"sequence_end":false,
                   "mode":"fast","k":-7,"ratio":0.5,"flag":true},"inputs":[]})");
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->request.priority, 3u);
  EXPECT_EQ(r->request.timeout_us, 2500u);
  EXPECT_TRUE(r->format.binary_default);
  const Parameters& p = r->request.parameters;
  EXPECT_EQ(p.count("priority") + p.count("timeout") + p.count("binary_data_output"), 0u);
  EXPECT_EQ(std::get<int64_t>(p.at("sequence_id")), 42);
  EXPECT_EQ(std::get<bool>(p.at("sequence_start")), true);
  EXPECT_EQ(std::get<bool>(p.at("sequence_end")), false);
  EXPECT_EQ(std::get<std::string>(p.at("mode")), "fast");
  EXPECT_EQ(std::get<int64_t>(p.at("k")), -7);
  EXPECT_EQ(std::get<double>(p.at("ratio")), 0.5);
  EXPECT_EQ(std::get<bool>(p.at("flag")), true);

  auto s = parse(R"({"parameters":{"sequence_id":"abc"},"inputs":[]})");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(std::get<std::string>(s->request.parameters.at("sequence_id")), "abc");
}

TEST(HttpInferParse, BadParametersNameTheParameter) {
  using C = StatusCode;
  expect_error(parse(R"({"parameters":{"priority":-1},"inputs":[]})"), C::kInvalidArgument,
               {"'priority'", "unsigned"});
  expect_error(parse(R"({"parameters":{"priority":4294967296},"inputs":[]})"), C::kInvalidArgument,
               {"'priority'"});
  expect_error(parse(R"({"parameters":{"timeout":"1s"},"inputs":[]})"), C::kInvalidArgument,
               {"'timeout'"});
  expect_error(parse(R"({"parameters":{"binary_data_output":1},"inputs":[]})"), C::kInvalidArgument,
               {"'binary_data_output'", "boolean"});
  expect_error(parse(R"({"parameters":{"triton_x":1},"inputs":[]})"), C::kInvalidArgument,
               {"'triton_x'", "reserved"});
  expect_error(parse(R"({"parameters":{"nested":{"a":1}},"inputs":[]})"), C::kInvalidArgument,
               {"'nested'", "an object"});
  expect_error(parse(R"({"parameters":[],"inputs":[]})"), C::kInvalidArgument, {"'parameters'"});
  expect_error(parse(R"({"parameters":{"sequence_start":"yes"},"inputs":[]})"), C::kInvalidArgument,
               {"'sequence_start'"});
}

TEST(HttpInferParse, RequestedOutputsAndTheirBinaryFlags) {
  auto r = parse(R"({"parameters":{"binary_data_output":true},"inputs":[],"outputs":[
                   {"name":"a"},{"name":"b","parameters":{"binary_data":false}},
                   {"name":"c","parameters":{"binary_data":true,"classification":0}}]})");
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->request.outputs, (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_TRUE(r->format.is_binary("a"));   // request-level default
  EXPECT_FALSE(r->format.is_binary("b"));  // per-output override
  EXPECT_TRUE(r->format.is_binary("c"));

  using C = StatusCode;
  expect_error(parse(R"({"inputs":[],"outputs":[{"name":"a"},{"name":"a"}]})"), C::kInvalidArgument,
               {"'a'", "twice"});
  expect_error(parse(R"({"inputs":[],"outputs":[{"name":"a","parameters":{"classification":2}}]})"),
               C::kUnimplemented, {"'a'", "classification"});
  expect_error(parse(R"({"inputs":[],"outputs":[{"name":"a","parameters":{"binary_data":"y"}}]})"),
               C::kInvalidArgument, {"'a'", "'binary_data'"});
  expect_error(parse(R"({"inputs":[],"outputs":[{"parameters":{}}]})"), C::kInvalidArgument,
               {"outputs[0]", "'name'"});
  expect_error(parse(R"({"inputs":[],"outputs":[{"name":"o",
                       "parameters":{"shared_memory_region":"r"}}]})"),
               C::kUnimplemented, {"'o'", "shared memory"});
}

// ---- request parsing: binary tensor data extension -------------------------------------------

TEST(HttpInferParse, BinaryInputsAreZeroCopyViewsIntoTheBody) {
  const std::vector<float> a = {1, 2, 3, 4, 5, 6};
  const std::vector<int64_t> b = {-1, 7};
  const std::string json = R"({"inputs":[
      {"name":"a","datatype":"FP32","shape":[2,3],"parameters":{"binary_data_size":24}},
      {"name":"j","datatype":"INT32","shape":[1],"data":[9]},
      {"name":"b","datatype":"INT64","shape":[2],"parameters":{"binary_data_size":16}}]})";
  Body body = make_body(json, raw(a) + raw(b));
  auto r = parse_infer_request(body, json.size(), "m", "");
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  const auto& in = r->request.inputs;
  ASSERT_EQ(in.size(), 3u);
  const auto* base = reinterpret_cast<const uint8_t*>(body->data());
  EXPECT_EQ(in[0].data, base + json.size());  // no copy: points into the body
  EXPECT_EQ(in[2].data, base + json.size() + 24);
  EXPECT_EQ(in[0].owner.get(), static_cast<const void*>(body.get()));  // keeps the body alive
  EXPECT_EQ(values<float>(in[0]), a);
  EXPECT_EQ(values<int32_t>(in[1]), (std::vector<int32_t>{9}));
  EXPECT_EQ(values<int64_t>(in[2]), b);
}

TEST(HttpInferParse, BinaryFp16AndBytesInputs) {
  const std::string half = std::string("\x00\x3c\x00\xc0", 4);  // 1.0, -2.0
  const std::string text = bytes_elements({"ab", "", "xyz"});
  const std::string json = R"({"inputs":[
      {"name":"h","datatype":"FP16","shape":[2],"parameters":{"binary_data_size":4}},
      {"name":"t","datatype":"BYTES","shape":[3],"parameters":{"binary_data_size":)" +
                           std::to_string(text.size()) + "}}]}";
  auto r = parse(json, half + text);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->request.inputs[0].byte_size, 4u);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(r->request.inputs[1].data),
                        r->request.inputs[1].byte_size),
            text);
}

TEST(HttpInferParse, BinarySizesAreChecked) {
  using C = StatusCode;
  const std::string four_floats(16, '\0');
  // binary_data_size vs datatype * elements.
  expect_error(parse(R"({"inputs":[{"name":"x","datatype":"FP32","shape":[4],
                        "parameters":{"binary_data_size":12}}]})",
                     std::string(12, '\0')),
               C::kInvalidArgument, {"'x'", "binary_data_size 12", "16 bytes", "FP32"});
  // More than the body holds.
  expect_error(parse(R"({"inputs":[{"name":"x","datatype":"FP32","shape":[4],
                        "parameters":{"binary_data_size":16}}]})",
                     std::string(8, '\0')),
               C::kInvalidArgument, {"'x'", "overruns", "8 bytes"});
  // Bytes left over after the last binary input.
  expect_error(parse(R"({"inputs":[{"name":"x","datatype":"FP32","shape":[4],
                        "parameters":{"binary_data_size":16}}]})",
                     four_floats + "zz"),
               C::kInvalidArgument, {"2 bytes", "after the last binary input"});
  // binary_data_size without the header.
  const std::string json = R"({"inputs":[{"name":"x","datatype":"FP32","shape":[4],
                              "parameters":{"binary_data_size":16}}]})";
  expect_error(parse_infer_request(make_body(json), std::nullopt, "m", ""), C::kInvalidArgument,
               {"'x'", "Inference-Header-Content-Length"});
  expect_error(parse(R"({"inputs":[{"name":"x","datatype":"FP32","shape":[4],
                        "parameters":{"binary_data_size":-16}}]})",
                     four_floats),
               C::kInvalidArgument, {"'x'", "binary_data_size"});
  // BYTES elements must fill the blob exactly.
  const std::string two = bytes_elements({"a", "b"});
  expect_error(parse(R"({"inputs":[{"name":"s","datatype":"BYTES","shape":[3],
                        "parameters":{"binary_data_size":10}}]})",
                     two),
               C::kInvalidArgument, {"'s'", "2 BYTES elements", "needs 3"});
  std::string bad = bytes_elements({"abc"});
  bad[0] = 100;  // the length now overruns
  expect_error(parse(R"({"inputs":[{"name":"s","datatype":"BYTES","shape":[1],
                        "parameters":{"binary_data_size":7}}]})",
                     bad),
               C::kInvalidArgument, {"'s'", "overruns"});
  // Raw binary bodies (header length 0) are not supported.
  expect_error(parse_infer_request(make_body("abcd"), 0, "m", ""), C::kUnimplemented,
               {"raw binary"});
}

TEST(HttpInferParse, HeaderLengthValues) {
  auto ok = parse_header_length("12", 20);
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok.value(), 12u);
  expect_error(parse_header_length("21", 20), StatusCode::kInvalidArgument,
               {"Inference-Header-Content-Length", "'21'"});
  expect_error(parse_header_length("1x", 20), StatusCode::kInvalidArgument, {"'1x'"});
  expect_error(parse_header_length("", 20), StatusCode::kInvalidArgument, {"''"});
  expect_error(parse_header_length("-1", 20), StatusCode::kInvalidArgument, {"'-1'"});
}

// ---- response encoding -----------------------------------------------------------------------

Tensor tensor(std::string name, DataType type, std::vector<int64_t> shape, std::string bytes) {
  return Tensor::owned(std::move(name), type, std::move(shape),
                       std::vector<uint8_t>(bytes.begin(), bytes.end()));
}

InferResponse sample_response() {
  InferResponse r;
  r.model_name = "m";
  r.model_version = "3";
  r.id = "req-7";
  r.parameters.emplace("note", std::string("hi"));
  r.outputs.push_back(tensor("f", DataType::kFp32, {2}, raw(std::vector<float>{0.5f, -1})));
  r.outputs.push_back(tensor("i", DataType::kInt64, {1, 2}, raw(std::vector<int64_t>{3, -4})));
  r.outputs.push_back(tensor("s", DataType::kBytes, {2}, bytes_elements({"yes", ""})));
  r.outputs.push_back(tensor("b", DataType::kBool, {2}, std::string("\x01\x00", 2)));
  return r;
}

TEST(HttpInferEncode, JsonOutputs) {
  auto e = encode_infer_response(sample_response(), OutputFormat{});
  ASSERT_TRUE(e.ok()) << e.status().to_string();
  EXPECT_FALSE(e->json_size.has_value());
  rapidjson::Document d;
  d.Parse(e->body.c_str());
  ASSERT_FALSE(d.HasParseError()) << e->body;
  EXPECT_STREQ(d["model_name"].GetString(), "m");
  EXPECT_STREQ(d["model_version"].GetString(), "3");
  EXPECT_STREQ(d["id"].GetString(), "req-7");
  EXPECT_STREQ(d["parameters"]["note"].GetString(), "hi");
  const auto& outs = d["outputs"];
  ASSERT_EQ(outs.Size(), 4u);
  EXPECT_STREQ(outs[0]["datatype"].GetString(), "FP32");
  EXPECT_EQ(outs[0]["shape"][0].GetInt(), 2);
  EXPECT_EQ(outs[0]["data"][0].GetDouble(), 0.5);
  EXPECT_EQ(outs[0]["data"][1].GetDouble(), -1.0);
  EXPECT_EQ(outs[1]["data"][1].GetInt64(), -4);
  EXPECT_EQ(outs[1]["shape"][1].GetInt(), 2);
  EXPECT_STREQ(outs[2]["data"][0].GetString(), "yes");
  EXPECT_STREQ(outs[2]["data"][1].GetString(), "");
  EXPECT_TRUE(outs[3]["data"][0].GetBool());
  EXPECT_FALSE(outs[3]["data"][1].GetBool());
  EXPECT_FALSE(outs[0].HasMember("parameters"));
}

TEST(HttpInferEncode, BinaryOutputsFollowTheJsonInOutputOrder) {
  OutputFormat format;
  format.binary_default = true;
  format.binary.emplace("i", false);  // this one stays JSON
  InferResponse resp = sample_response();
  resp.id.clear();
  auto e = encode_infer_response(resp, format);
  ASSERT_TRUE(e.ok()) << e.status().to_string();
  ASSERT_TRUE(e->json_size.has_value());
  const std::string json = e->body.substr(0, *e->json_size);
  rapidjson::Document d;
  d.Parse(json.c_str());
  ASSERT_FALSE(d.HasParseError()) << json;
  EXPECT_FALSE(d.HasMember("id"));  // Triton omits an empty id
  const auto& outs = d["outputs"];
  EXPECT_EQ(outs[0]["parameters"]["binary_data_size"].GetUint64(), 8u);
  EXPECT_FALSE(outs[0].HasMember("data"));
  EXPECT_TRUE(outs[1].HasMember("data"));
  EXPECT_EQ(outs[2]["parameters"]["binary_data_size"].GetUint64(), 11u);
  EXPECT_EQ(outs[3]["parameters"]["binary_data_size"].GetUint64(), 2u);
  const std::string blobs =
      raw(std::vector<float>{0.5f, -1}) + bytes_elements({"yes", ""}) + std::string("\x01\x00", 2);
  EXPECT_EQ(e->body.substr(*e->json_size), blobs);
}

TEST(HttpInferEncode, HalfPrecisionOutputsAreNumbersInJson) {
  InferResponse r;
  r.model_name = "m";
  r.outputs.push_back(tensor("h", DataType::kFp16, {2}, std::string("\x00\x3c\x00\xc0", 4)));
  r.outputs.push_back(tensor("bf", DataType::kBf16, {1}, std::string("\xc0\x3f", 2)));
  auto e = encode_infer_response(r, OutputFormat{});
  ASSERT_TRUE(e.ok()) << e.status().to_string();
  rapidjson::Document d;
  d.Parse(e->body.c_str());
  EXPECT_EQ(d["outputs"][0]["data"][0].GetDouble(), 1.0);
  EXPECT_EQ(d["outputs"][0]["data"][1].GetDouble(), -2.0);
  EXPECT_EQ(d["outputs"][1]["data"][0].GetDouble(), 1.5);
}

TEST(HttpInferEncode, InconsistentOutputsAreInternalErrors) {
  InferResponse r;
  r.outputs.push_back(tensor("o", DataType::kFp32, {3}, std::string(8, '\0')));
  expect_error(encode_infer_response(r, OutputFormat{}), StatusCode::kInternal,
               {"'o'", "8 bytes", "needs 12"});
  InferResponse s;
  s.outputs.push_back(tensor("t", DataType::kBytes, {2}, bytes_elements({"a"})));
  expect_error(encode_infer_response(s, OutputFormat{}), StatusCode::kInternal, {"'t'"});
}

TEST(HttpInferEncode, ParsedRequestRoundTripsThroughTheEncoder) {
  // What the fuzz target checks too: inputs parsed from a request encode back unchanged.
  const std::vector<float> a = {1.5f, -2};
  const std::string json = R"({"inputs":[
      {"name":"a","datatype":"FP32","shape":[2],"parameters":{"binary_data_size":8}}]})";
  auto r = parse(json, raw(a));
  ASSERT_TRUE(r.ok());
  InferResponse resp;
  resp.outputs = r->request.inputs;
  OutputFormat binary;
  binary.binary_default = true;
  auto e = encode_infer_response(resp, binary);
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->body.substr(*e->json_size), raw(a));
}

// ---- compression -----------------------------------------------------------------------------

std::string zlib_compress(const std::string& data, int window_bits) {
  z_stream zs{};
  deflateInit2(&zs, 6, Z_DEFLATED, window_bits, 8, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&zs, data.size()) + 32, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = data.size();
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = out.size();
  deflate(&zs, Z_FINISH);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

TEST(HttpCompression, InflatesGzipZlibAndRawDeflate) {
  const std::string text(10000, 'k');
  auto g = inflate_body(zlib_compress(text, 16 + 15), ContentEncoding::kGzip, 1 << 20);
  ASSERT_TRUE(g.ok()) << g.status().to_string();
  EXPECT_EQ(g.value(), text);
  auto z = inflate_body(zlib_compress(text, 15), ContentEncoding::kDeflate, 1 << 20);
  ASSERT_TRUE(z.ok()) << z.status().to_string();
  EXPECT_EQ(z.value(), text);
  auto raw_deflate = inflate_body(zlib_compress(text, -15), ContentEncoding::kDeflate, 1 << 20);
  ASSERT_TRUE(raw_deflate.ok()) << raw_deflate.status().to_string();
  EXPECT_EQ(raw_deflate.value(), text);
  // Two concatenated gzip members (what `cat a.gz b.gz` makes).
  auto two =
      inflate_body(zlib_compress("ab", 31) + zlib_compress("cd", 31), ContentEncoding::kGzip, 100);
  ASSERT_TRUE(two.ok());
  EXPECT_EQ(two.value(), "abcd");
}

TEST(HttpCompression, InflationIsCappedAndCorruptDataIsRefused) {
  const std::string bomb = zlib_compress(std::string(1 << 20, '\0'), 31);
  expect_error(inflate_body(bomb, ContentEncoding::kGzip, 4096), StatusCode::kOutOfRange, {"4096"});
  auto exact = inflate_body(zlib_compress("12345", 31), ContentEncoding::kGzip, 5);
  EXPECT_TRUE(exact.ok());
  expect_error(inflate_body("not gzip at all", ContentEncoding::kGzip, 100),
               StatusCode::kInvalidArgument, {"gzip"});
  std::string truncated = zlib_compress(std::string(1000, 'x'), 31);
  truncated.resize(truncated.size() / 2);
  expect_error(inflate_body(truncated, ContentEncoding::kGzip, 100000),
               StatusCode::kInvalidArgument, {"truncated"});
}

TEST(HttpCompression, EncodingHeaders) {
  EXPECT_EQ(parse_content_encoding("").value(), ContentEncoding::kIdentity);
  EXPECT_EQ(parse_content_encoding("GZIP").value(), ContentEncoding::kGzip);
  EXPECT_EQ(parse_content_encoding("deflate").value(), ContentEncoding::kDeflate);
  expect_error(parse_content_encoding("br"), StatusCode::kInvalidArgument, {"'br'"});
  EXPECT_EQ(choose_response_encoding(""), ContentEncoding::kIdentity);
  EXPECT_EQ(choose_response_encoding("gzip"), ContentEncoding::kGzip);
  EXPECT_EQ(choose_response_encoding("deflate;q=0.5, gzip;q=0.8"), ContentEncoding::kGzip);
  EXPECT_EQ(choose_response_encoding("br, deflate"), ContentEncoding::kDeflate);
  EXPECT_EQ(choose_response_encoding("gzip;q=0"), ContentEncoding::kIdentity);
  auto round = deflate_body("hello hello hello", ContentEncoding::kGzip);
  ASSERT_TRUE(round.ok());
  EXPECT_EQ(inflate_body(round.value(), ContentEncoding::kGzip, 100).value(), "hello hello hello");
}

// ---- routes and JSON bodies ------------------------------------------------------------------

TEST(HttpRoutes, MatchesTritonPaths) {
  using K = Route::Kind;
  auto kind = [](std::string_view p) { return match_route(p).value().kind; };
  EXPECT_EQ(kind("/v2"), K::kServerMetadata);
  EXPECT_EQ(kind("/v2/health/live"), K::kHealthLive);
  EXPECT_EQ(kind("/v2/health/ready"), K::kHealthReady);
  EXPECT_EQ(kind("/v2/models/stats"), K::kModelStats);
  EXPECT_EQ(kind("/v2/repository/index"), K::kRepositoryIndex);
  auto r = match_route("/v2/models/my%20model/versions/12/infer");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->kind, K::kModelInfer);
  EXPECT_EQ(r->model, "my model");
  EXPECT_EQ(r->version, "12");
  auto md = match_route("/v2/models/bert");
  EXPECT_EQ(md->kind, K::kModelMetadata);
  EXPECT_EQ(md->version, "");
  EXPECT_EQ(kind("/v2/models/bert/ready"), K::kModelReady);
  EXPECT_EQ(kind("/v2/models/bert/versions/1/config"), K::kModelConfig);
  EXPECT_EQ(kind("/v2/models/bert/stats"), K::kModelStats);
  auto load = match_route("/v2/repository/models/bert/load");
  EXPECT_EQ(load->kind, K::kModelLoad);
  EXPECT_EQ(load->model, "bert");
  EXPECT_EQ(kind("/v2/repository/models/bert/unload"), K::kModelUnload);
  for (const char* p : {"/v2/systemsharedmemory/status", "/v2/cudasharedmemory/region/r/register",
                        "/v2/logging", "/v2/trace/setting", "/v2/models/bert/trace/setting",
                        "/v2/models/bert/generate", "/v2/repository/repo1/index"}) {
    EXPECT_EQ(kind(p), K::kUnsupported) << p;
  }
  // The front page is the playground; /metrics is the Prometheus text (also on the metrics port).
  EXPECT_EQ(kind("/"), K::kPlayground);
  EXPECT_EQ(kind("/playground"), K::kPlayground);
  EXPECT_EQ(kind("/metrics"), K::kMetrics);
  EXPECT_EQ(route_method(K::kPlayground), "GET");
  for (const char* p : {"/playground/x", "/v1/models/x", "/v2/", "/v2/models", "/v2/models/x/y",
                        "/v2/health/alive", "/v2/models/x/versions", "/v2/systemsharedmemory/x"}) {
    EXPECT_EQ(match_route(p).status().code(), StatusCode::kNotFound) << p;
  }
  expect_error(match_route("/v2/models/x/versions/latest/infer"), StatusCode::kInvalidArgument,
               {"'latest'"});
  EXPECT_EQ(route_method(K::kModelInfer), "POST");
  EXPECT_EQ(route_method(K::kModelMetadata), "GET");
}

TEST(HttpJson, StatisticsCarryEveryFieldPerfAnalyzerReadsAsNumbers) {
  ModelStatistics s;
  s.name = "bert";
  s.version = "1";
  s.last_inference_ms = 1700000000000;
  s.inference_count = 10;
  s.execution_count = 4;
  s.success = {10, 5000};
  s.queue = {10, 700};
  s.cache_miss = {0, 0};
  s.batch_stats.push_back(BatchStatistics{8, {1, 2}, {3, 4}, {5, 6}});
  rapidjson::Document d;
  d.Parse(statistics_json({s}).c_str());
  ASSERT_FALSE(d.HasParseError());
  const auto& m = d["model_stats"][0];
  EXPECT_STREQ(m["name"].GetString(), "bert");
  EXPECT_STREQ(m["version"].GetString(), "1");
  EXPECT_EQ(m["last_inference"].GetUint64(), 1700000000000u);
  EXPECT_EQ(m["inference_count"].GetUint64(), 10u);
  EXPECT_EQ(m["execution_count"].GetUint64(), 4u);
  for (const char* k : {"success", "fail", "queue", "compute_input", "compute_infer",
                        "compute_output", "cache_hit", "cache_miss"}) {
    ASSERT_TRUE(m["inference_stats"].HasMember(k)) << k;
    EXPECT_TRUE(m["inference_stats"][k]["count"].IsUint64()) << k;
    EXPECT_TRUE(m["inference_stats"][k]["ns"].IsUint64()) << k;
  }
  EXPECT_EQ(m["inference_stats"]["success"]["ns"].GetUint64(), 5000u);
  EXPECT_EQ(m["inference_stats"]["queue"]["ns"].GetUint64(), 700u);
  EXPECT_EQ(m["batch_stats"][0]["batch_size"].GetUint64(), 8u);
  EXPECT_EQ(m["batch_stats"][0]["compute_infer"]["ns"].GetUint64(), 4u);
  EXPECT_EQ(m["batch_stats"][0]["compute_output"]["count"].GetUint64(), 5u);
}

TEST(HttpJson, MetadataIndexAndErrors) {
  ModelMetadata md{"bert",
                   {"1", "2"},
                   "kiln",
                   {{"input_ids", DataType::kInt64, {-1, 128}}},
                   {{"logits", DataType::kFp32, {-1, 2}}}};
  rapidjson::Document d;
  d.Parse(model_metadata_json(md).c_str());
  EXPECT_STREQ(d["versions"][1].GetString(), "2");
  EXPECT_STREQ(d["platform"].GetString(), "kiln");
  EXPECT_STREQ(d["inputs"][0]["datatype"].GetString(), "INT64");
  EXPECT_EQ(d["inputs"][0]["shape"][0].GetInt(), -1);
  EXPECT_STREQ(d["outputs"][0]["name"].GetString(), "logits");

  d.Parse(repository_index_json({{"a", "1", "READY", ""}, {"b", "", "UNAVAILABLE", "no file"}})
              .c_str());
  EXPECT_STREQ(d[0]["version"].GetString(), "1");
  EXPECT_FALSE(d[0].HasMember("reason"));
  EXPECT_FALSE(d[1].HasMember("version"));
  EXPECT_STREQ(d[1]["reason"].GetString(), "no file");

  d.Parse(error_json("bad \"quote\"\n").c_str());
  EXPECT_STREQ(d["error"].GetString(), "bad \"quote\"\n");
}

}  // namespace
}  // namespace kiln::server::http
