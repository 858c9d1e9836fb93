// inference.GRPCInferenceService on the server core.
//
// Written against gRPC's callback API (CallbackService + reactors): it is gRPC's recommended
// asynchronous server API, so no RPC holds a thread while the core works and there are no
// hand-written completion-queue state machines (Triton's grpc_server.cc needs ~3,000 lines of
// those).
//
// Thread-safety: gRPC calls the RPC methods concurrently from its own threads; the service's
// only shared state is the set of blocking-call workers, guarded by a mutex.
#pragma once

#include <functional>
#include <future>
#include <mutex>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "grpc_service.grpc.pb.h"
#include "kiln/server.h"

namespace kiln::server {

/// The KServe v2 / Triton gRPC service. Shared-memory, trace and log RPCs answer UNIMPLEMENTED.
class GrpcInferenceService final : public inference::GRPCInferenceService::CallbackService {
 public:
  /// `server` must outlive the service.
  explicit GrpcInferenceService(Server& server) : server_(server) {}
  /// Waits for the threads running load/unload calls.
  ~GrpcInferenceService() override;

  using Context = grpc::CallbackServerContext;
  using Reactor = grpc::ServerUnaryReactor;

  Reactor* ServerLive(Context* ctx, const inference::ServerLiveRequest* request,
                      inference::ServerLiveResponse* response) override;
  Reactor* ServerReady(Context* ctx, const inference::ServerReadyRequest* request,
                       inference::ServerReadyResponse* response) override;
  Reactor* ModelReady(Context* ctx, const inference::ModelReadyRequest* request,
                      inference::ModelReadyResponse* response) override;
  Reactor* ServerMetadata(Context* ctx, const inference::ServerMetadataRequest* request,
                          inference::ServerMetadataResponse* response) override;
  Reactor* ModelMetadata(Context* ctx, const inference::ModelMetadataRequest* request,
                         inference::ModelMetadataResponse* response) override;
  Reactor* ModelConfig(Context* ctx, const inference::ModelConfigRequest* request,
                       inference::ModelConfigResponse* response) override;
  Reactor* ModelStatistics(Context* ctx, const inference::ModelStatisticsRequest* request,
                           inference::ModelStatisticsResponse* response) override;
  Reactor* RepositoryIndex(Context* ctx, const inference::RepositoryIndexRequest* request,
                           inference::RepositoryIndexResponse* response) override;
  Reactor* RepositoryModelLoad(Context* ctx, const inference::RepositoryModelLoadRequest* request,
                               inference::RepositoryModelLoadResponse* response) override;
  Reactor* RepositoryModelUnload(Context* ctx,
                                 const inference::RepositoryModelUnloadRequest* request,
                                 inference::RepositoryModelUnloadResponse* response) override;
  Reactor* ModelInfer(Context* ctx, const inference::ModelInferRequest* request,
                      inference::ModelInferResponse* response) override;
  grpc::ServerBidiReactor<inference::ModelInferRequest, inference::ModelStreamInferResponse>*
  ModelStreamInfer(Context* ctx) override;

  Reactor* SystemSharedMemoryStatus(Context* ctx,
                                    const inference::SystemSharedMemoryStatusRequest* request,
                                    inference::SystemSharedMemoryStatusResponse* response) override;
  Reactor* SystemSharedMemoryRegister(
      Context* ctx, const inference::SystemSharedMemoryRegisterRequest* request,
      inference::SystemSharedMemoryRegisterResponse* response) override;
  Reactor* SystemSharedMemoryUnregister(
      Context* ctx, const inference::SystemSharedMemoryUnregisterRequest* request,
      inference::SystemSharedMemoryUnregisterResponse* response) override;
  Reactor* CudaSharedMemoryStatus(Context* ctx,
                                  const inference::CudaSharedMemoryStatusRequest* request,
                                  inference::CudaSharedMemoryStatusResponse* response) override;
  Reactor* CudaSharedMemoryRegister(Context* ctx,
                                    const inference::CudaSharedMemoryRegisterRequest* request,
                                    inference::CudaSharedMemoryRegisterResponse* response) override;
  Reactor* CudaSharedMemoryUnregister(
      Context* ctx, const inference::CudaSharedMemoryUnregisterRequest* request,
      inference::CudaSharedMemoryUnregisterResponse* response) override;
  Reactor* TraceSetting(Context* ctx, const inference::TraceSettingRequest* request,
                        inference::TraceSettingResponse* response) override;
  Reactor* LogSettings(Context* ctx, const inference::LogSettingsRequest* request,
                       inference::LogSettingsResponse* response) override;

 private:
  // Runs `work` on its own thread: loading a model takes seconds, and callback-API handlers
  // must not block gRPC's threads.
  void run_blocking(std::function<void()> work);

  Server& server_;
  std::mutex blocking_mu_;
  std::vector<std::future<void>> blocking_;  // guarded by blocking_mu_
};

}  // namespace kiln::server
