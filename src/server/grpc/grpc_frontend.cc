#include "server/grpc/grpc_frontend.h"

#include <absl/synchronization/mutex.h>
#include <grpcpp/grpcpp.h>

#include <algorithm>

#include "core/log.h"
#include "core/thread_name.h"
#include "server/grpc/grpc_async.h"
#include "server/grpc/grpc_service.h"

namespace kiln::server {
namespace {

std::string listen_address(const GrpcOptions& options) {
  const bool bare_ipv6 =
      options.address.find(':') != std::string::npos && !options.address.starts_with('[');
  const std::string host = bare_ipv6 ? "[" + options.address + "]" : options.address;
  return host + ":" + std::to_string(options.port);
}

int queue_count(const GrpcOptions& options) {
  if (options.completion_queues > 0) return options.completion_queues;
  // At least two: a model that runs on the submitting thread (identity, GPU embedding models
  // with an idle instance) holds its queue's thread for the whole run, and one queue would then
  // stall every other RPC, health checks included.
  return std::clamp(static_cast<int>(std::thread::hardware_concurrency()) / 8, 2, 4);
}

}  // namespace

Result<std::unique_ptr<GrpcFrontend>> GrpcFrontend::start(Server& server,
                                                          const GrpcOptions& options) {
  if (options.port < 0 || options.port > 65535) {
    return invalid_argument("gRPC port " + std::to_string(options.port) + " is out of range");
  }
  if (options.max_message_bytes <= 0) {
    return invalid_argument("gRPC max message size must be positive");
  }
  if (options.completion_queues < 0 || options.completion_queues > 64) {
    return invalid_argument("gRPC completion queue count " +
                            std::to_string(options.completion_queues) + " is out of range 0-64");
  }
  // Debian builds Abseil without NDEBUG, which leaves absl::Mutex's deadlock detection on: every
  // lock gRPC takes then updates a global lock graph (measured here: 52 ns against 12 ns for a
  // nested lock pair), and gRPC takes dozens per call. It is a debugging aid; turn it off.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  std::unique_ptr<GrpcFrontend> frontend(new GrpcFrontend());
  frontend->service_ = std::make_unique<GrpcInferenceService>(server);
  frontend->live_ = std::make_unique<LiveCalls>();
  frontend->shutdown_grace_ = options.shutdown_grace;

  const std::string address = listen_address(options);
  int selected_port = 0;
  grpc::ServerBuilder builder;
  // gRPC sets SO_REUSEPORT by default on Linux, which would let a second server silently share
  // the port; a taken port must be an error.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.SetMaxReceiveMessageSize(options.max_message_bytes);
  builder.SetMaxSendMessageSize(options.max_message_bytes);
  builder.AddListeningPort(address, grpc::InsecureServerCredentials(), &selected_port);
  builder.RegisterService(frontend->service_->async_service());
  for (int i = queue_count(options); i > 0; --i) {
    frontend->queues_.push_back(builder.AddCompletionQueue());
  }
  frontend->server_ = builder.BuildAndStart();
  if (frontend->server_ == nullptr || selected_port == 0) {
    // Draining runs gRPC's own queued requests, which read the server: drain before it goes.
    if (frontend->server_ != nullptr) frontend->server_->Shutdown();
    frontend->drain_queues();
    frontend->server_.reset();
    return unavailable("gRPC frontend cannot listen on " + address +
                       " (address in use or invalid)");
  }
  frontend->port_ = selected_port;
  for (const auto& queue : frontend->queues_) {
    frontend->service_->await_calls(
        {frontend->service_->async_service(), queue.get(), frontend->live_.get()});
    const int index = static_cast<int>(frontend->threads_.size());
    frontend->threads_.emplace_back([queue = queue.get(), index] {
      core::set_thread_name("kiln-grpc-" + std::to_string(index));
      void* tag = nullptr;
      bool ok = false;
      while (queue->Next(&tag, &ok)) static_cast<Tag*>(tag)->proceed(ok);
    });
  }
  return frontend;
}

GrpcFrontend::GrpcFrontend() = default;

GrpcFrontend::~GrpcFrontend() { stop(); }

void GrpcFrontend::stop() {
  if (server_ == nullptr) return;
  server_->Shutdown(std::chrono::system_clock::now() + shutdown_grace_);
  // Calls cancelled by the shutdown still finish once the core answers them, and finishing posts
  // to their queue: the queues stay up (and their threads serve them) until every call is gone.
  const int stuck = live_->wait_none(shutdown_grace_ + kCoreAnswerWait);
  if (stuck > 0) {
    // A core that never answers must not hang the process's exit. Shutting the queues down now
    // would let a late answer post to a dead queue, so everything the calls reach is left alive
    // (leaked) for the process to end with.
    core::log(core::LogLevel::kError, "gRPC frontend stopped with calls the core never answered",
              {{"calls", std::to_string(stuck)}});
    for (std::thread& thread : threads_) thread.detach();
    threads_.clear();
    (void)server_.release();
    for (auto& queue : queues_) (void)queue.release();
    (void)live_.release();
    (void)service_.release();
    return;
  }
  server_->Wait();
  drain_queues();
  server_.reset();
}

void GrpcFrontend::drain_queues() {
  for (const auto& queue : queues_) queue->Shutdown();
  if (threads_.empty()) {  // never started: drain here
    for (const auto& queue : queues_) {
      void* tag = nullptr;
      bool ok = false;
      while (queue->Next(&tag, &ok)) {
      }
    }
  }
  for (std::thread& thread : threads_) thread.join();
  threads_.clear();
}

}  // namespace kiln::server
