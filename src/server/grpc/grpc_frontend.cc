#include "server/grpc/grpc_frontend.h"

#include <absl/synchronization/mutex.h>
#include <grpcpp/grpcpp.h>

#include "server/grpc/grpc_service.h"

namespace kiln::server {
namespace {

std::string listen_address(const GrpcOptions& options) {
  const bool bare_ipv6 =
      options.address.find(':') != std::string::npos && !options.address.starts_with('[');
  const std::string host = bare_ipv6 ? "[" + options.address + "]" : options.address;
  return host + ":" + std::to_string(options.port);
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
  // Debian builds Abseil without NDEBUG, which leaves absl::Mutex's deadlock detection on: every
  // lock gRPC takes then updates a global lock graph (measured here: 52 ns against 12 ns for a
  // nested lock pair), and gRPC takes dozens per call. It is a debugging aid; turn it off.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  std::unique_ptr<GrpcFrontend> frontend(new GrpcFrontend());
  frontend->service_ = std::make_unique<GrpcInferenceService>(server);
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
  builder.RegisterService(frontend->service_.get());
  frontend->server_ = builder.BuildAndStart();
  if (frontend->server_ == nullptr || selected_port == 0) {
    if (frontend->server_ != nullptr) frontend->server_->Shutdown();
    return unavailable("gRPC frontend cannot listen on " + address +
                       " (address in use or invalid)");
  }
  frontend->port_ = selected_port;
  return frontend;
}

GrpcFrontend::~GrpcFrontend() { stop(); }

void GrpcFrontend::stop() {
  if (server_ == nullptr) return;
  server_->Shutdown(std::chrono::system_clock::now() + shutdown_grace_);
  server_->Wait();
  server_.reset();
}

}  // namespace kiln::server
