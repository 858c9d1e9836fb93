#include "server/grpc/grpc_statistics.h"

namespace kiln::server {
namespace {

void encode_duration(const Duration& d, inference::StatisticDuration* message) {
  message->set_count(d.count);
  message->set_ns(d.ns);
}

void encode_tensors(
    const std::vector<TensorMetadata>& tensors,
    google::protobuf::RepeatedPtrField<inference::ModelMetadataResponse::TensorMetadata>* message) {
  for (const TensorMetadata& t : tensors) {
    auto* out = message->Add();
    out->set_name(t.name);
    out->set_datatype(std::string(datatype_name(t.datatype)));
    for (int64_t d : t.shape) out->add_shape(d);
  }
}

}  // namespace

void encode_model_statistics(const ModelStatistics& stats, inference::ModelStatistics* message) {
  message->set_name(stats.name);
  message->set_version(stats.version);
  message->set_last_inference(stats.last_inference_ms);
  message->set_inference_count(stats.inference_count);
  message->set_execution_count(stats.execution_count);
  inference::InferStatistics* infer = message->mutable_inference_stats();
  encode_duration(stats.success, infer->mutable_success());
  encode_duration(stats.fail, infer->mutable_fail());
  encode_duration(stats.queue, infer->mutable_queue());
  encode_duration(stats.compute_input, infer->mutable_compute_input());
  encode_duration(stats.compute_infer, infer->mutable_compute_infer());
  encode_duration(stats.compute_output, infer->mutable_compute_output());
  encode_duration(stats.cache_hit, infer->mutable_cache_hit());
  encode_duration(stats.cache_miss, infer->mutable_cache_miss());
  for (const BatchStatistics& b : stats.batch_stats) {
    inference::InferBatchStatistics* batch = message->add_batch_stats();
    batch->set_batch_size(b.batch_size);
    encode_duration(b.compute_input, batch->mutable_compute_input());
    encode_duration(b.compute_infer, batch->mutable_compute_infer());
    encode_duration(b.compute_output, batch->mutable_compute_output());
  }
}

void encode_model_metadata(const ModelMetadata& metadata,
                           inference::ModelMetadataResponse* message) {
  message->set_name(metadata.name);
  for (const std::string& v : metadata.versions) message->add_versions(v);
  message->set_platform(metadata.platform);
  encode_tensors(metadata.inputs, message->mutable_inputs());
  encode_tensors(metadata.outputs, message->mutable_outputs());
}

void encode_repository_index(const std::vector<RepositoryEntry>& entries,
                             inference::RepositoryIndexResponse* message) {
  for (const RepositoryEntry& e : entries) {
    auto* model = message->add_models();
    model->set_name(e.name);
    model->set_version(e.version);
    model->set_state(e.state);
    model->set_reason(e.reason);
  }
}

}  // namespace kiln::server
