#include "server/http/http_frontend.h"

#include <chrono>
#include <utility>

#include "server/http/api_router.h"
#include "server/http/listener.h"

namespace kiln::server::http {
namespace {

// GET /metrics and nothing else.
class MetricsHandler : public RequestHandler {
 public:
  explicit MetricsHandler(Server& server) : server_(server) {}

  void handle(const HttpRequestView& request, Responder respond) override {
    if (request.path != "/metrics") {
      return reply_now(respond,
                       HttpReply::error(not_found("no route for " + std::string(request.path) +
                                                  "; metrics are at /metrics")));
    }
    if (request.method != "GET") {
      HttpReply r = HttpReply::http_error(
          405, "method " + std::string(request.method) + " is not allowed on /metrics; use GET");
      r.headers.emplace_back("Allow", "GET");
      return reply_now(respond, std::move(r));
    }
    HttpReply r;
    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    r.body = server_.metrics_text();
    reply_now(respond, std::move(r));
  }

 private:
  Server& server_;
};

}  // namespace

HttpFrontend::HttpFrontend(std::unique_ptr<HttpListener> listener)
    : listener_(std::move(listener)) {}

HttpFrontend::~HttpFrontend() { stop(); }

Result<std::unique_ptr<HttpFrontend>> HttpFrontend::start(Server& server,
                                                          const HttpOptions& options) {
  if (options.max_body_bytes == 0) return invalid_argument("max_body_bytes must be positive");
  if (options.idle_timeout_s < 0) return invalid_argument("idle_timeout_s must not be negative");
  ListenerOptions lo;
  lo.address = options.address;
  lo.port = options.port;
  lo.thread_count = options.thread_count;
  lo.limits.max_body_bytes = options.max_body_bytes;
  lo.limits.idle_timeout = std::chrono::seconds(options.idle_timeout_s);
  KILN_ASSIGN_OR_RETURN(auto listener,
                        HttpListener::start(std::make_shared<ApiRouter>(server), lo));
  return std::unique_ptr<HttpFrontend>(new HttpFrontend(std::move(listener)));
}

void HttpFrontend::stop() {
  if (listener_) listener_->stop();
}

int HttpFrontend::port() const { return listener_->port(); }

MetricsFrontend::MetricsFrontend(std::unique_ptr<HttpListener> listener)
    : listener_(std::move(listener)) {}

MetricsFrontend::~MetricsFrontend() { stop(); }

Result<std::unique_ptr<MetricsFrontend>> MetricsFrontend::start(Server& server,
                                                                const MetricsOptions& options) {
  ListenerOptions lo;
  lo.address = options.address;
  lo.port = options.port;
  lo.thread_count = options.thread_count;
  lo.limits.max_body_bytes = 64 * 1024;  // GET only; nobody needs a large body here
  KILN_ASSIGN_OR_RETURN(auto listener,
                        HttpListener::start(std::make_shared<MetricsHandler>(server), lo));
  return std::unique_ptr<MetricsFrontend>(new MetricsFrontend(std::move(listener)));
}

void MetricsFrontend::stop() {
  if (listener_) listener_->stop();
}

int MetricsFrontend::port() const { return listener_->port(); }

}  // namespace kiln::server::http
