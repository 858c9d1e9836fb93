#include "server/grpc/grpc_service.h"

#include <chrono>
#include <string>
#include <utility>

#include "server/grpc/grpc_infer.h"
#include "server/grpc/grpc_statistics.h"

namespace kiln::server {
namespace {

using Reactor = grpc::ServerUnaryReactor;

Reactor* finish(grpc::CallbackServerContext* ctx, const Status& status) {
  Reactor* reactor = ctx->DefaultReactor();
  reactor->Finish(to_grpc_status(status));
  return reactor;
}

Reactor* not_supported(grpc::CallbackServerContext* ctx, std::string_view what) {
  return finish(ctx, unimplemented(std::string(what) + " is not supported by kiln"));
}

// Triton's load parameters: "config" (a JSON model configuration) is supported; "file:<path>"
// overrides carry model files and are not. Other keys are ignored, as Triton ignores them.
Result<LoadOptions> load_options(
    const google::protobuf::Map<std::string, inference::ModelRepositoryParameter>& params) {
  LoadOptions options;
  for (const auto& [key, param] : params) {
    if (key == "config") {
      if (!param.has_string_param()) {
        return invalid_argument(
            "load parameter 'config' must be a string holding the model configuration as JSON");
      }
      options.config_json = param.string_param();
    } else if (key.starts_with("file:")) {
      return unimplemented("load parameter '" + key +
                           "': model file overrides are not supported by kiln");
    }
  }
  return options;
}

}  // namespace

GrpcInferenceService::~GrpcInferenceService() {
  std::lock_guard lock(blocking_mu_);
  blocking_.clear();  // each future's destructor joins its std::async thread
}

void GrpcInferenceService::run_blocking(std::function<void()> work) {
  std::lock_guard lock(blocking_mu_);
  std::erase_if(blocking_, [](const std::future<void>& f) {
    return f.wait_for(std::chrono::seconds(0)) == std::future_status::ready;
  });
  blocking_.push_back(std::async(std::launch::async, std::move(work)));
}

Reactor* GrpcInferenceService::ServerLive(Context* ctx, const inference::ServerLiveRequest*,
                                          inference::ServerLiveResponse* response) {
  response->set_live(server_.live());
  return finish(ctx, ok_status());
}

Reactor* GrpcInferenceService::ServerReady(Context* ctx, const inference::ServerReadyRequest*,
                                           inference::ServerReadyResponse* response) {
  response->set_ready(server_.ready());
  return finish(ctx, ok_status());
}

Reactor* GrpcInferenceService::ModelReady(Context* ctx, const inference::ModelReadyRequest* request,
                                          inference::ModelReadyResponse* response) {
  Result<bool> ready = server_.model_ready(request->name(), request->version());
  // Triton answers an unknown model with ready = false, not an error.
  if (!ready.ok() && ready.status().code() != StatusCode::kNotFound) {
    return finish(ctx, ready.status());
  }
  response->set_ready(ready.ok() && ready.value());
  return finish(ctx, ok_status());
}

Reactor* GrpcInferenceService::ServerMetadata(Context* ctx, const inference::ServerMetadataRequest*,
                                              inference::ServerMetadataResponse* response) {
  kiln::server::ServerMetadata metadata = server_.metadata();
  response->set_name(metadata.name);
  response->set_version(metadata.version);
  for (const std::string& e : metadata.extensions) response->add_extensions(e);
  return finish(ctx, ok_status());
}

Reactor* GrpcInferenceService::ModelMetadata(Context* ctx,
                                             const inference::ModelMetadataRequest* request,
                                             inference::ModelMetadataResponse* response) {
  auto metadata = server_.model_metadata(request->name(), request->version());
  if (metadata.ok()) encode_model_metadata(metadata.value(), response);
  return finish(ctx, metadata.status());
}

Reactor* GrpcInferenceService::ModelConfig(Context* ctx,
                                           const inference::ModelConfigRequest* request,
                                           inference::ModelConfigResponse* response) {
  Result<std::string> config =
      server_.model_config(request->name(), request->version(), ConfigFormat::kProtoBinary);
  if (!config.ok()) return finish(ctx, config.status());
  if (!response->mutable_config()->ParseFromString(config.value())) {
    return finish(ctx, internal_error("model '" + request->name() +
                                      "': the core's configuration is not a valid ModelConfig"));
  }
  return finish(ctx, ok_status());
}

Reactor* GrpcInferenceService::ModelStatistics(Context* ctx,
                                               const inference::ModelStatisticsRequest* request,
                                               inference::ModelStatisticsResponse* response) {
  auto stats = server_.statistics(request->name(), request->version());
  if (!stats.ok()) return finish(ctx, stats.status());
  for (const auto& s : stats.value()) encode_model_statistics(s, response->add_model_stats());
  return finish(ctx, ok_status());
}

Reactor* GrpcInferenceService::RepositoryIndex(Context* ctx,
                                               const inference::RepositoryIndexRequest* request,
                                               inference::RepositoryIndexResponse* response) {
  encode_repository_index(server_.repository_index(request->ready()), response);
  return finish(ctx, ok_status());
}

Reactor* GrpcInferenceService::RepositoryModelLoad(
    Context* ctx, const inference::RepositoryModelLoadRequest* request,
    inference::RepositoryModelLoadResponse*) {
  Result<LoadOptions> options = load_options(request->parameters());
  if (!options.ok()) return finish(ctx, options.status());
  Reactor* reactor = ctx->DefaultReactor();
  // `request` stays valid until Finish.
  run_blocking([this, reactor, request, options = std::move(options).value()] {
    reactor->Finish(to_grpc_status(server_.load_model(request->model_name(), options)));
  });
  return reactor;
}

Reactor* GrpcInferenceService::RepositoryModelUnload(
    Context* ctx, const inference::RepositoryModelUnloadRequest* request,
    inference::RepositoryModelUnloadResponse*) {
  Reactor* reactor = ctx->DefaultReactor();
  run_blocking([this, reactor, request] {
    reactor->Finish(to_grpc_status(server_.unload_model(request->model_name())));
  });
  return reactor;
}

Reactor* GrpcInferenceService::ModelInfer(Context* ctx, const inference::ModelInferRequest* request,
                                          inference::ModelInferResponse* response) {
  return start_model_infer(server_, ctx, request, response);
}

grpc::ServerBidiReactor<inference::ModelInferRequest, inference::ModelStreamInferResponse>*
GrpcInferenceService::ModelStreamInfer(Context*) {
  return start_model_stream_infer(server_);
}

Reactor* GrpcInferenceService::SystemSharedMemoryStatus(
    Context* ctx, const inference::SystemSharedMemoryStatusRequest*,
    inference::SystemSharedMemoryStatusResponse*) {
  return not_supported(ctx, "system shared memory");
}

Reactor* GrpcInferenceService::SystemSharedMemoryRegister(
    Context* ctx, const inference::SystemSharedMemoryRegisterRequest*,
    inference::SystemSharedMemoryRegisterResponse*) {
  return not_supported(ctx, "system shared memory");
}

Reactor* GrpcInferenceService::SystemSharedMemoryUnregister(
    Context* ctx, const inference::SystemSharedMemoryUnregisterRequest*,
    inference::SystemSharedMemoryUnregisterResponse*) {
  return not_supported(ctx, "system shared memory");
}

Reactor* GrpcInferenceService::CudaSharedMemoryStatus(
    Context* ctx, const inference::CudaSharedMemoryStatusRequest*,
    inference::CudaSharedMemoryStatusResponse*) {
  return not_supported(ctx, "CUDA shared memory");
}

Reactor* GrpcInferenceService::CudaSharedMemoryRegister(
    Context* ctx, const inference::CudaSharedMemoryRegisterRequest*,
    inference::CudaSharedMemoryRegisterResponse*) {
  return not_supported(ctx, "CUDA shared memory");
}

Reactor* GrpcInferenceService::CudaSharedMemoryUnregister(
    Context* ctx, const inference::CudaSharedMemoryUnregisterRequest*,
    inference::CudaSharedMemoryUnregisterResponse*) {
  return not_supported(ctx, "CUDA shared memory");
}

Reactor* GrpcInferenceService::TraceSetting(Context* ctx, const inference::TraceSettingRequest*,
                                            inference::TraceSettingResponse*) {
  return not_supported(ctx, "the trace extension");
}

Reactor* GrpcInferenceService::LogSettings(Context* ctx, const inference::LogSettingsRequest*,
                                           inference::LogSettingsResponse*) {
  return not_supported(ctx, "the logging extension");
}

}  // namespace kiln::server
