// inference.GRPCInferenceService on the server core, served on gRPC's completion-queue API (see
// grpc_async.h for why). Each RPC is one handler; UnaryCall and StreamInferCall carry the
// protocol state, so there is no hand-written state machine per RPC.
//
// Thread-safety: handlers run concurrently on the frontend's queue threads; the service's only
// shared state is the set of blocking-call workers, guarded by a mutex.
#pragma once

#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <type_traits>
#include <vector>

#include "kiln/server.h"
#include "server/grpc/grpc_async.h"

namespace kiln::server {

/// The KServe v2 / Triton gRPC service. Shared-memory, trace and log RPCs answer UNIMPLEMENTED.
class GrpcInferenceService {
 public:
  /// `server` must outlive the service.
  explicit GrpcInferenceService(Server& server);
  /// Waits for the threads running load/unload calls.
  ~GrpcInferenceService();
  GrpcInferenceService(const GrpcInferenceService&) = delete;
  GrpcInferenceService& operator=(const GrpcInferenceService&) = delete;

  /// What to register with grpc::ServerBuilder.
  AsyncService* async_service() { return &service_; }
  /// Puts waiting calls of every RPC on `site`'s queue; call once per queue after the server has
  /// started.
  void await_calls(const CallSite& site) const;

 private:
  // Registers one unary RPC: gRPC's Request<Rpc> method (of a base class of AsyncService) and
  // its handler, with `waiting` calls waiting on each queue.
  template <class Base, class Req, class Resp>
  using RequestRpc = void (Base::*)(grpc::ServerContext*, Req*,
                                    grpc::ServerAsyncResponseWriter<Resp>*, grpc::CompletionQueue*,
                                    grpc::ServerCompletionQueue*, void*);
  template <class Base, class Req, class Resp>
  void add(RequestRpc<Base, Req, Resp> request,
           std::type_identity_t<std::function<void(UnaryCall<Req, Resp>&)>> handler,
           int waiting = 1) {
    using Call = UnaryCall<Req, Resp>;
    auto kind = std::make_shared<typename Call::Kind>(typename Call::Kind{
        static_cast<typename Call::RequestMethod>(request), std::move(handler)});
    awaiters_.push_back([kind = kind.get(), waiting](const CallSite& site) {
      for (int i = 0; i < waiting; ++i) Call::await(site, kind);
    });
    kinds_.push_back(std::move(kind));
  }
  void add_health_and_metadata();
  void add_repository();
  void add_unsupported();
  // Registers an RPC that always answers UNIMPLEMENTED: "<what> is not supported by kiln".
  template <class Base, class Req, class Resp>
  void add_unimplemented(RequestRpc<Base, Req, Resp> request, const std::string& what) {
    const grpc::Status status = unimplemented_status(what);
    add(request, [status](UnaryCall<Req, Resp>& c) { c.finish(status); });
  }
  static grpc::Status unimplemented_status(const std::string& what);
  // Runs `work` on its own thread: loading a model takes seconds, and a queue's thread must not
  // block on it.
  void run_blocking(std::function<void()> work);

  Server& server_;
  AsyncService service_;
  std::vector<std::shared_ptr<const void>> kinds_;  // every UnaryCall::Kind, alive with `this`
  std::vector<std::function<void(const CallSite&)>> awaiters_;
  std::mutex blocking_mu_;
  std::vector<std::future<void>> blocking_;  // guarded by blocking_mu_
};

}  // namespace kiln::server
