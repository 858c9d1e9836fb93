// The KServe v2 / Triton HTTP API: maps each route onto one call of the server core.
#pragma once

#include <string>
#include <string_view>

#include "kiln/server.h"
#include "server/http/request_handler.h"

namespace kiln::server::http {

/// What a request path names.
struct Route {
  enum class Kind {
    kServerMetadata,   ///< GET  /v2
    kHealthLive,       ///< GET  /v2/health/live
    kHealthReady,      ///< GET  /v2/health/ready
    kModelMetadata,    ///< GET  /v2/models/{m}[/versions/{v}]
    kModelReady,       ///< GET  .../ready
    kModelConfig,      ///< GET  .../config
    kModelInfer,       ///< POST .../infer
    kModelStats,       ///< GET  /v2/models[/{m}[/versions/{v}]]/stats
    kRepositoryIndex,  ///< POST /v2/repository/index
    kModelLoad,        ///< POST /v2/repository/models/{m}/load
    kModelUnload,      ///< POST /v2/repository/models/{m}/unload
    kPlayground,       ///< GET  / and /playground: the web playground page
    kMetrics,          ///< GET  /metrics: the Prometheus text (for the playground's live panel)
    kUnsupported,      ///< a Triton endpoint kiln does not implement (answered 501)
  };
  Kind kind = Kind::kServerMetadata;
  std::string model;    ///< percent-decoded
  std::string version;  ///< "" when the path names none
  std::string feature;  ///< for kUnsupported: what is not supported
};

/// Matches a request path (without query, not yet percent-decoded). kNotFound when no route
/// matches; kInvalidArgument for a malformed version in the URL.
Result<Route> match_route(std::string_view path);

/// The HTTP method a route takes ("GET" or "POST"); empty: any.
std::string_view route_method(Route::Kind kind);

/// Routes KServe v2 requests to a Server. Thread-safe: stateless besides the server reference.
class ApiRouter : public RequestHandler {
 public:
  /// `server` must outlive the router and every request it started.
  explicit ApiRouter(Server& server) : server_(server) {}
  void handle(const HttpRequestView& request, Responder respond) override;

 private:
  void infer(const Route& route, const HttpRequestView& request, Responder respond);
  HttpReply repository_index(const HttpRequestView& request);
  HttpReply load(const Route& route, const HttpRequestView& request);
  HttpReply unload(const Route& route, const HttpRequestView& request);

  Server& server_;
};

}  // namespace kiln::server::http
