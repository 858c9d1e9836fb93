// The gRPC frontend: serves inference.GRPCInferenceService (KServe v2 / Triton, wire-compatible
// with tritonclient.grpc and perf_analyzer) on one listening port over the server core.
//
// Thread-safety: start(), stop() and the destructor are called from one owning thread; port() may
// be called from any thread. RPCs run on the frontend's completion-queue threads (one per queue)
// and reach only the Server interface.
#pragma once

#include <chrono>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "kiln/server.h"

namespace grpc {
class Server;
class ServerCompletionQueue;
}  // namespace grpc

namespace kiln::server {

class GrpcInferenceService;
class LiveCalls;

/// Options of the gRPC frontend (tritonserver's --grpc-* flags).
struct GrpcOptions {
  /// Address to bind; IPv6 addresses may be given bare ("::").
  std::string address = "0.0.0.0";
  /// Port to listen on; 0 picks a free port (see GrpcFrontend::port()).
  int port = 8001;
  /// Largest request or response message in bytes; larger requests fail with
  /// RESOURCE_EXHAUSTED before reaching the core. Triton's default (INT32_MAX) since BERT
  /// hidden-state outputs of a large batch exceed 100 MiB.
  int max_message_bytes = std::numeric_limits<int32_t>::max();
  /// How long stop() lets in-flight RPCs finish before cancelling them.
  std::chrono::milliseconds shutdown_grace{5000};
  /// Completion queues, each with one thread that polls it and runs its RPC handlers; 0 picks
  /// one per 8 hardware threads, at least 2 and at most 4. Inference runs on the core's threads,
  /// except for a model that executes on the submitting thread when it finds an idle instance.
  int completion_queues = 0;
};

/// A running gRPC server. Destroying it stops it.
class GrpcFrontend {
 public:
  /// Binds the port and starts serving `server`, which must outlive the frontend. Unavailable
  /// when the address cannot be bound (e.g. the port is in use).
  static Result<std::unique_ptr<GrpcFrontend>> start(Server& server, const GrpcOptions& options);

  ~GrpcFrontend();
  GrpcFrontend(const GrpcFrontend&) = delete;
  GrpcFrontend& operator=(const GrpcFrontend&) = delete;

  /// How long stop() waits, after the grace period, for the core to answer the cancelled calls.
  static constexpr std::chrono::seconds kCoreAnswerWait{30};
  /// Stops accepting RPCs, waits up to shutdown_grace for running ones, then cancels the rest and
  /// waits (up to kCoreAnswerWait more) for the core to have answered every call; calls still
  /// unanswered then are logged and left behind with the frontend's state. Idempotent.
  void stop();
  /// The bound port (the chosen one when GrpcOptions::port was 0).
  int port() const { return port_; }

 private:
  GrpcFrontend();
  // Shuts the queues down and waits until their threads have taken every event.
  void drain_queues();

  std::unique_ptr<GrpcInferenceService> service_;  // outlives server_ (declared first)
  std::unique_ptr<LiveCalls> live_;
  std::vector<std::unique_ptr<grpc::ServerCompletionQueue>> queues_;
  std::unique_ptr<grpc::Server> server_;  // shut down before queues_
  std::vector<std::thread> threads_;      // one per queue
  std::chrono::milliseconds shutdown_grace_{0};
  int port_ = 0;
};

}  // namespace kiln::server
