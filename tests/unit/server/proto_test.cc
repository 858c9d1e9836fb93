// The Triton-compatible schemas in proto/: real config.pbtxt text parses, typos are rejected
// with the offending name, and messages keep Triton's field numbers on the wire.
#include <google/protobuf/descriptor.h>
#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/text_format.h>
#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <iterator>
#include <string>
#include <vector>

#include "grpc_service.grpc.pb.h"
#include "grpc_service.pb.h"
#include "model_config.pb.h"

namespace kiln {
namespace {

namespace pb = google::protobuf;

// Collects TextFormat errors instead of letting protobuf log them to stderr.
class ErrorList : public pb::io::ErrorCollector {
 public:
  void AddError(int line, pb::io::ColumnNumber column, const std::string& message) override {
    errors.push_back(std::to_string(line + 1) + ":" + std::to_string(column + 1) + ": " + message);
  }
  std::vector<std::string> errors;
};

bool parse_config(const std::string& text, inference::ModelConfig* config, ErrorList* errors) {
  pb::TextFormat::Parser parser;
  parser.RecordErrorsTo(errors);
  return parser.ParseFromString(text, config);
}

// Written the way Triton users write them: mixed `field: {` / `field {` forms, bracketed
// lists, comments, a map given as repeated key/value entries.
constexpr char kBertConfig[] = R"cfg(
# all-MiniLM-L6-v2 served as an embedding model
name: "minilm"
backend: "onnxruntime"
max_batch_size: 64
version_policy: { specific: { versions: [ 1, 3 ] } }
input [
  {
    name: "input_ids"
    data_type: TYPE_INT64
    dims: [ -1 ]
  },
  {
    name: "attention_mask"
    data_type: TYPE_INT64
    dims: [ -1 ]
    allow_ragged_batch: true
  }
]
output [
  {
    name: "sentence_embedding"
    data_type: TYPE_FP32
    dims: [ 384 ]
  }
]
instance_group [
  { count: 2 kind: KIND_CPU },
  { name: "gpu" count: 1 kind: KIND_GPU gpus: [ 0, 1 ] }
]
dynamic_batching {
  preferred_batch_size: [ 16, 32 ]
  max_queue_delay_microseconds: 500
  priority_levels: 2
  default_priority_level: 2
  default_queue_policy { max_queue_size: 128 }
  priority_queue_policy {
    key: 1
    value: {
      timeout_action: DELAY
      default_timeout_microseconds: 20000
      allow_timeout_override: true
      max_queue_size: 16
    }
  }
}
parameters { key: "pooling" value: { string_value: "mean" } }
parameters: { key: "normalize" value: { string_value: "true" } }
model_warmup [
  {
    name: "short_batch"
    batch_size: 8
    count: 2
    inputs { key: "input_ids" value: { data_type: TYPE_INT64 dims: [ 16 ] random_data: true } }
    inputs { key: "attention_mask" value: { data_type: TYPE_INT64 dims: [ 16 ] zero_data: true } }
  }
]
)cfg";

TEST(ProtoTest, ParsesRealisticTritonConfig) {
  inference::ModelConfig config;
  ErrorList errors;
  ASSERT_TRUE(parse_config(kBertConfig, &config, &errors))
      << (errors.errors.empty() ? "" : errors.errors.front());

  EXPECT_EQ(config.name(), "minilm");
  EXPECT_EQ(config.backend(), "onnxruntime");
  EXPECT_EQ(config.max_batch_size(), 64);

  ASSERT_TRUE(config.version_policy().has_specific());
  EXPECT_EQ(config.version_policy().specific().versions_size(), 2);
  EXPECT_EQ(config.version_policy().specific().versions(1), 3);

  ASSERT_EQ(config.input_size(), 2);
  EXPECT_EQ(config.input(0).name(), "input_ids");
  EXPECT_EQ(config.input(0).data_type(), inference::TYPE_INT64);
  ASSERT_EQ(config.input(0).dims_size(), 1);
  EXPECT_EQ(config.input(0).dims(0), -1);
  EXPECT_FALSE(config.input(0).allow_ragged_batch());
  EXPECT_TRUE(config.input(1).allow_ragged_batch());
  ASSERT_EQ(config.output_size(), 1);
  EXPECT_EQ(config.output(0).data_type(), inference::TYPE_FP32);
  EXPECT_EQ(config.output(0).dims(0), 384);

  ASSERT_EQ(config.instance_group_size(), 2);
  EXPECT_EQ(config.instance_group(0).kind(), inference::ModelInstanceGroup::KIND_CPU);
  EXPECT_EQ(config.instance_group(0).count(), 2);
  EXPECT_EQ(config.instance_group(1).name(), "gpu");
  EXPECT_EQ(config.instance_group(1).kind(), inference::ModelInstanceGroup::KIND_GPU);
  ASSERT_EQ(config.instance_group(1).gpus_size(), 2);
  EXPECT_EQ(config.instance_group(1).gpus(1), 1);

  ASSERT_EQ(config.scheduling_choice_case(), inference::ModelConfig::kDynamicBatching);
  const inference::ModelDynamicBatching& batching = config.dynamic_batching();
  ASSERT_EQ(batching.preferred_batch_size_size(), 2);
  EXPECT_EQ(batching.preferred_batch_size(1), 32);
  EXPECT_EQ(batching.max_queue_delay_microseconds(), 500u);
  EXPECT_EQ(batching.priority_levels(), 2u);
  EXPECT_EQ(batching.default_priority_level(), 2u);
  EXPECT_EQ(batching.default_queue_policy().max_queue_size(), 128u);
  EXPECT_EQ(batching.default_queue_policy().timeout_action(), inference::ModelQueuePolicy::REJECT);
  ASSERT_EQ(batching.priority_queue_policy().size(), 1u);
  ASSERT_TRUE(batching.priority_queue_policy().contains(1));
  const inference::ModelQueuePolicy& high = batching.priority_queue_policy().at(1);
  EXPECT_EQ(high.timeout_action(), inference::ModelQueuePolicy::DELAY);
  EXPECT_EQ(high.default_timeout_microseconds(), 20000u);
  EXPECT_TRUE(high.allow_timeout_override());
  EXPECT_EQ(high.max_queue_size(), 16u);

  ASSERT_EQ(config.parameters().size(), 2u);
  EXPECT_EQ(config.parameters().at("pooling").string_value(), "mean");
  EXPECT_EQ(config.parameters().at("normalize").string_value(), "true");

  ASSERT_EQ(config.model_warmup_size(), 1);
  const inference::ModelWarmup& warmup = config.model_warmup(0);
  EXPECT_EQ(warmup.name(), "short_batch");
  EXPECT_EQ(warmup.batch_size(), 8u);
  EXPECT_EQ(warmup.count(), 2u);
  ASSERT_EQ(warmup.inputs().size(), 2u);
  const inference::ModelWarmup::Input& ids = warmup.inputs().at("input_ids");
  EXPECT_EQ(ids.input_data_type_case(), inference::ModelWarmup::Input::kRandomData);
  EXPECT_EQ(ids.dims(0), 16);
  EXPECT_EQ(warmup.inputs().at("attention_mask").input_data_type_case(),
            inference::ModelWarmup::Input::kZeroData);

  EXPECT_FALSE(config.has_optimization());
  EXPECT_FALSE(config.has_model_transaction_policy());
}

// Settings kiln does not implement still parse, so the server can name them when it refuses.
TEST(ProtoTest, ParsesSettingsKilnDoesNotServe) {
  inference::ModelConfig config;
  ErrorList errors;
  ASSERT_TRUE(parse_config(R"cfg(
    name: "ens"
    platform: "ensemble"
    ensemble_scheduling {
      step [ { model_name: "tok" model_version: -1 input_map { key: "TEXT" value: "raw" } } ]
      max_inflight_requests: 4
    }
    model_transaction_policy { decoupled: true }
    model_metrics {
      metric_control {
        metric_identifier { family: "nv_inference_first_response_histogram_ms" }
        histogram_options { buckets: [ 1, 10, 100 ] }
      }
    }
  )cfg",
                           &config, &errors))
      << (errors.errors.empty() ? "" : errors.errors.front());
  ASSERT_TRUE(config.has_ensemble_scheduling());
  EXPECT_EQ(config.ensemble_scheduling().step(0).model_version(), -1);
  EXPECT_EQ(config.ensemble_scheduling().step(0).input_map().at("TEXT"), "raw");
  EXPECT_EQ(config.ensemble_scheduling().max_inflight_requests(), 4u);
  EXPECT_TRUE(config.model_transaction_policy().decoupled());
  EXPECT_EQ(config.model_metrics().metric_control(0).histogram_options().buckets(2), 100.0);
}

TEST(ProtoTest, RejectsMisspelledFieldByName) {
  inference::ModelConfig config;
  ErrorList errors;
  EXPECT_FALSE(parse_config("name: \"m\"\nmax_batch_sise: 8\n", &config, &errors));
  ASSERT_EQ(errors.errors.size(), 1u);
  EXPECT_NE(errors.errors[0].find("max_batch_sise"), std::string::npos) << errors.errors[0];
  EXPECT_EQ(errors.errors[0].rfind("2:", 0), 0u) << errors.errors[0];  // reported on line 2

  // Nested fields and enum values are checked too.
  ErrorList nested;
  EXPECT_FALSE(
      parse_config("dynamic_batching { max_queue_delay_microsecond: 100 }", &config, &nested));
  ASSERT_FALSE(nested.errors.empty());
  EXPECT_NE(nested.errors[0].find("max_queue_delay_microsecond"), std::string::npos);

  ErrorList bad_enum;
  EXPECT_FALSE(parse_config("input { name: \"x\" data_type: TYPE_FLOAT32 dims: [ 1 ] }", &config,
                            &bad_enum));
  ASSERT_FALSE(bad_enum.errors.empty());
  EXPECT_NE(bad_enum.errors[0].find("TYPE_FLOAT32"), std::string::npos);
}

TEST(ProtoTest, RejectsTwoSchedulersInTheOneof) {
  inference::ModelConfig config;
  ErrorList errors;
  EXPECT_FALSE(parse_config("dynamic_batching {}\nsequence_batching {}\n", &config, &errors));
  ASSERT_FALSE(errors.errors.empty());
  EXPECT_NE(errors.errors[0].find("scheduling_choice"), std::string::npos) << errors.errors[0];
}

TEST(ProtoTest, InferRequestRoundTripsWithRawContents) {
  inference::ModelInferRequest request;
  request.set_model_name("minilm");
  request.set_model_version("1");
  request.set_id("req-7");
  (*request.mutable_parameters())["priority"].set_uint64_param(1);
  (*request.mutable_parameters())["temperature"].set_double_param(0.5);

  auto* ids = request.add_inputs();
  ids->set_name("input_ids");
  ids->set_datatype("INT64");
  ids->add_shape(1);
  ids->add_shape(3);
  auto* text = request.add_inputs();
  text->set_name("TEXT");
  text->set_datatype("BYTES");
  text->add_shape(1);
  request.add_outputs()->set_name("sentence_embedding");

  const int64_t id_values[3] = {101, 7592, 102};
  request.add_raw_input_contents(
      std::string(reinterpret_cast<const char*>(id_values), sizeof(id_values)));
  // BYTES element: 4-byte little-endian length, then the bytes (here with an embedded NUL).
  request.add_raw_input_contents(std::string("\x03\x00\x00\x00h\0i", 7));

  std::string wire;
  ASSERT_TRUE(request.SerializeToString(&wire));
  inference::ModelInferRequest decoded;
  ASSERT_TRUE(decoded.ParseFromString(wire));

  EXPECT_TRUE(pb::util::MessageDifferencer::Equals(request, decoded));
  EXPECT_EQ(decoded.id(), "req-7");
  ASSERT_EQ(decoded.inputs_size(), 2);
  EXPECT_EQ(decoded.inputs(0).shape(1), 3);
  EXPECT_EQ(decoded.inputs(1).datatype(), "BYTES");
  EXPECT_EQ(decoded.parameters().at("priority").parameter_choice_case(),
            inference::InferParameter::kUint64Param);
  EXPECT_EQ(decoded.parameters().at("temperature").double_param(), 0.5);
  ASSERT_EQ(decoded.raw_input_contents_size(), 2);
  ASSERT_EQ(decoded.raw_input_contents(0).size(), sizeof(id_values));
  int64_t back[3];
  std::memcpy(back, decoded.raw_input_contents(0).data(), sizeof(back));
  EXPECT_EQ(back[1], 7592);
  EXPECT_EQ(decoded.raw_input_contents(1), std::string("\x03\x00\x00\x00h\0i", 7));
}

// Byte-exact encodings pin Triton's field numbers: clients built from Triton's own .proto
// files only decode what we send if these match.
TEST(ProtoTest, WireFieldNumbersMatchTriton) {
  inference::ModelInferRequest request;
  request.set_model_name("m");                 // field 1, length-delimited
  request.add_raw_input_contents("\x01\x02");  // field 7, length-delimited
  EXPECT_EQ(request.SerializeAsString(), std::string("\x0a\x01m\x3a\x02\x01\x02", 7));

  inference::ModelConfigResponse response;
  response.mutable_config()->set_max_batch_size(8);  // config = 1, max_batch_size = 4 (varint)
  response.mutable_config()->set_backend("o");       // backend = 17: tag 0x8a 0x01
  EXPECT_EQ(response.SerializeAsString(), std::string("\x0a\x06\x20\x08\x8a\x01\x01o", 8));

  inference::ModelStatistics stats;
  stats.set_execution_count(3);            // field 5, varint
  (*stats.mutable_response_stats())["0"];  // field 9, map entry {key = "0"}
  EXPECT_EQ(stats.SerializeAsString(), std::string("\x28\x03\x4a\x05\x0a\x01\x30\x12\x00", 9));
}

TEST(ProtoTest, ServiceDeclaresEveryTritonRpc) {
  EXPECT_STREQ(inference::GRPCInferenceService::service_full_name(),
               "inference.GRPCInferenceService");
  const pb::ServiceDescriptor* service =
      inference::ModelInferRequest::descriptor()->file()->FindServiceByName("GRPCInferenceService");
  ASSERT_NE(service, nullptr);
  const char* expected[] = {"ServerLive",
                            "ServerReady",
                            "ModelReady",
                            "ServerMetadata",
                            "ModelMetadata",
                            "ModelInfer",
                            "ModelStreamInfer",
                            "ModelConfig",
                            "ModelStatistics",
                            "RepositoryIndex",
                            "RepositoryModelLoad",
                            "RepositoryModelUnload",
                            "SystemSharedMemoryStatus",
                            "SystemSharedMemoryRegister",
                            "SystemSharedMemoryUnregister",
                            "CudaSharedMemoryStatus",
                            "CudaSharedMemoryRegister",
                            "CudaSharedMemoryUnregister",
                            "TraceSetting",
                            "LogSettings"};
  ASSERT_EQ(service->method_count(), static_cast<int>(std::size(expected)));
  for (int i = 0; i < service->method_count(); ++i) {
    EXPECT_EQ(service->method(i)->name(), expected[i]);
  }
  const pb::MethodDescriptor* stream = service->FindMethodByName("ModelStreamInfer");
  ASSERT_NE(stream, nullptr);
  EXPECT_TRUE(stream->client_streaming());
  EXPECT_TRUE(stream->server_streaming());
  EXPECT_EQ(stream->output_type()->full_name(), "inference.ModelStreamInferResponse");
  EXPECT_FALSE(service->FindMethodByName("ModelInfer")->client_streaming());
}

}  // namespace
}  // namespace kiln
