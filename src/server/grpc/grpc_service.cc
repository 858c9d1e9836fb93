#include "server/grpc/grpc_service.h"

#include <chrono>
#include <string>
#include <utility>

#include "server/grpc/grpc_infer.h"
#include "server/grpc/grpc_statistics.h"

namespace kiln::server {
namespace {

using namespace inference;  // the protocol's message types, used throughout this file

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

GrpcInferenceService::GrpcInferenceService(Server& server) : server_(server) {
  add_health_and_metadata();
  add_repository();
  // A few ModelInfer calls wait on each queue, so that a burst of requests finds one ready
  // while the queue's thread is still serving the previous one.
  add(
      &AsyncService::RequestModelInfer,
      [this](UnaryCall<ModelInferRequest, ModelInferResponse>& call) {
        serve_model_infer(server_, call);
      },
      /*waiting=*/16);
  awaiters_.push_back([this](const CallSite& site) { await_model_stream_infer(server_, site); });
  add_unsupported();
}

GrpcInferenceService::~GrpcInferenceService() {
  std::lock_guard lock(blocking_mu_);
  blocking_.clear();  // each future's destructor joins its std::async thread
}

void GrpcInferenceService::await_calls(const CallSite& site) const {
  for (const auto& await : awaiters_) await(site);
}

void GrpcInferenceService::run_blocking(std::function<void()> work) {
  std::lock_guard lock(blocking_mu_);
  std::erase_if(blocking_, [](const std::future<void>& f) {
    return f.wait_for(std::chrono::seconds(0)) == std::future_status::ready;
  });
  blocking_.push_back(std::async(std::launch::async, std::move(work)));
}

void GrpcInferenceService::add_health_and_metadata() {
  add(&AsyncService::RequestServerLive,
      [this](UnaryCall<ServerLiveRequest, ServerLiveResponse>& c) {
        c.response()->set_live(server_.live());
        c.finish(grpc::Status::OK);
      });
  add(&AsyncService::RequestServerReady,
      [this](UnaryCall<ServerReadyRequest, ServerReadyResponse>& c) {
        c.response()->set_ready(server_.ready());
        c.finish(grpc::Status::OK);
      });
  add(&AsyncService::RequestModelReady,
      [this](UnaryCall<ModelReadyRequest, ModelReadyResponse>& c) {
        Result<bool> ready = server_.model_ready(c.request().name(), c.request().version());
        // Triton answers an unknown model with ready = false, not an error.
        if (!ready.ok() && ready.status().code() != StatusCode::kNotFound) {
          c.finish(to_grpc_status(ready.status()));
          return;
        }
        c.response()->set_ready(ready.ok() && ready.value());
        c.finish(grpc::Status::OK);
      });
  add(&AsyncService::RequestServerMetadata,
      [this](UnaryCall<ServerMetadataRequest, ServerMetadataResponse>& c) {
        kiln::server::ServerMetadata metadata = server_.metadata();
        c.response()->set_name(metadata.name);
        c.response()->set_version(metadata.version);
        for (const std::string& e : metadata.extensions) c.response()->add_extensions(e);
        c.finish(grpc::Status::OK);
      });
  add(&AsyncService::RequestModelMetadata,
      [this](UnaryCall<ModelMetadataRequest, ModelMetadataResponse>& c) {
        auto metadata = server_.model_metadata(c.request().name(), c.request().version());
        if (metadata.ok()) encode_model_metadata(metadata.value(), c.response());
        c.finish(to_grpc_status(metadata.status()));
      });
  add(&AsyncService::RequestModelConfig,
      [this](UnaryCall<ModelConfigRequest, ModelConfigResponse>& c) {
        const ModelConfigRequest& request = c.request();
        Result<std::string> config =
            server_.model_config(request.name(), request.version(), ConfigFormat::kProtoBinary);
        if (!config.ok()) {
          c.finish(to_grpc_status(config.status()));
        } else if (!c.response()->mutable_config()->ParseFromString(config.value())) {
          c.finish(to_grpc_status(
              internal_error("model '" + request.name() +
                             "': the core's configuration is not a valid ModelConfig")));
        } else {
          c.finish(grpc::Status::OK);
        }
      });
  add(&AsyncService::RequestModelStatistics,
      [this](UnaryCall<ModelStatisticsRequest, ModelStatisticsResponse>& c) {
        auto stats = server_.statistics(c.request().name(), c.request().version());
        if (stats.ok()) {
          for (const auto& s : stats.value()) {
            encode_model_statistics(s, c.response()->add_model_stats());
          }
        }
        c.finish(to_grpc_status(stats.status()));
      });
}

void GrpcInferenceService::add_repository() {
  add(&AsyncService::RequestRepositoryIndex,
      [this](UnaryCall<RepositoryIndexRequest, RepositoryIndexResponse>& c) {
        encode_repository_index(server_.repository_index(c.request().ready()), c.response());
        c.finish(grpc::Status::OK);
      });
  add(&AsyncService::RequestRepositoryModelLoad,
      [this](UnaryCall<RepositoryModelLoadRequest, RepositoryModelLoadResponse>& c) {
        Result<LoadOptions> options = load_options(c.request().parameters());
        if (!options.ok()) {
          c.finish(to_grpc_status(options.status()));
          return;
        }
        run_blocking([this, &c, options = std::move(options).value()] {
          c.finish(to_grpc_status(server_.load_model(c.request().model_name(), options)));
        });
      });
  add(&AsyncService::RequestRepositoryModelUnload,
      [this](UnaryCall<RepositoryModelUnloadRequest, RepositoryModelUnloadResponse>& c) {
        run_blocking([this, &c] {
          c.finish(to_grpc_status(server_.unload_model(c.request().model_name())));
        });
      });
}

grpc::Status GrpcInferenceService::unimplemented_status(const std::string& what) {
  return to_grpc_status(unimplemented(what + " is not supported by kiln"));
}

void GrpcInferenceService::add_unsupported() {
  add_unimplemented(&AsyncService::RequestSystemSharedMemoryStatus, "system shared memory");
  add_unimplemented(&AsyncService::RequestSystemSharedMemoryRegister, "system shared memory");
  add_unimplemented(&AsyncService::RequestSystemSharedMemoryUnregister, "system shared memory");
  add_unimplemented(&AsyncService::RequestCudaSharedMemoryStatus, "CUDA shared memory");
  add_unimplemented(&AsyncService::RequestCudaSharedMemoryRegister, "CUDA shared memory");
  add_unimplemented(&AsyncService::RequestCudaSharedMemoryUnregister, "CUDA shared memory");
  add_unimplemented(&AsyncService::RequestTraceSetting, "the trace extension");
  add_unimplemented(&AsyncService::RequestLogSettings, "the logging extension");
}

}  // namespace kiln::server
