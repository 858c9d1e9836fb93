// The HTTP/REST frontend (KServe v2 protocol + Triton's extensions, wire-compatible with
// tritonclient.http and perf_analyzer) and the Prometheus metrics endpoint. Both talk to the
// server core only through kiln::server::Server.
//
// Thread-safety: start/stop/port are called from one controlling thread (never from a request
// handler). Requests are served on the frontend's own io threads; no io thread ever waits for
// model execution.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "kiln/server.h"
#include "kiln/status.h"

namespace kiln::server::http {

class HttpListener;

/// Options of the KServe HTTP endpoint (tritonserver --http-port, --http-thread-count, ...).
struct HttpOptions {
  std::string address = "0.0.0.0";
  int port = 8000;       ///< 0 = an ephemeral port; port() reports it
  int thread_count = 8;  ///< io threads sharing one io_context
  /// Largest request body, compressed or inflated; larger bodies are answered 413.
  size_t max_body_bytes = size_t{64} << 20;
  /// Seconds an idle keep-alive connection stays open; 0 = until the client closes it.
  int idle_timeout_s = 0;
};

/// Serves the KServe v2 HTTP API.
class HttpFrontend {
 public:
  /// Starts serving `server`, which must outlive the frontend. kUnavailable when the port
  /// cannot be bound.
  static Result<std::unique_ptr<HttpFrontend>> start(Server& server, const HttpOptions& options);
  ~HttpFrontend();
  HttpFrontend(const HttpFrontend&) = delete;
  HttpFrontend& operator=(const HttpFrontend&) = delete;

  /// Stops accepting and closes connections; replies still owed by the core are dropped.
  /// Idempotent; also done by the destructor.
  void stop();
  /// The bound port (the ephemeral one when started with port 0).
  int port() const;

 private:
  explicit HttpFrontend(std::unique_ptr<HttpListener> listener);
  std::unique_ptr<HttpListener> listener_;
};

/// Options of the metrics endpoint (tritonserver --metrics-port).
struct MetricsOptions {
  std::string address = "0.0.0.0";
  int port = 8002;  ///< 0 = an ephemeral port
  int thread_count = 1;
};

/// Serves GET /metrics: Server::metrics_text() in the Prometheus text format 0.0.4.
class MetricsFrontend {
 public:
  /// Starts serving `server`'s metrics; `server` must outlive the frontend.
  static Result<std::unique_ptr<MetricsFrontend>> start(Server& server,
                                                        const MetricsOptions& options);
  ~MetricsFrontend();
  MetricsFrontend(const MetricsFrontend&) = delete;
  MetricsFrontend& operator=(const MetricsFrontend&) = delete;

  /// Stops serving. Idempotent; also done by the destructor.
  void stop();
  /// The bound port.
  int port() const;

 private:
  explicit MetricsFrontend(std::unique_ptr<HttpListener> listener);
  std::unique_ptr<HttpListener> listener_;
};

}  // namespace kiln::server::http
