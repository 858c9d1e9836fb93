// The seam between the HTTP transport (listener, session: Beast) and what a request means (the
// KServe router, the metrics page): plain structs, no Beast types.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "kiln/status.h"

namespace kiln::server::http {

/// One complete request as the transport read it. The body is already inflated.
struct HttpRequestView {
  std::string_view method;  ///< "GET", "POST", ...
  std::string_view path;    ///< the target without its query string, not yet percent-decoded
  std::shared_ptr<const std::string> body;
  std::optional<std::string> infer_header_length;  ///< Inference-Header-Content-Length
  std::string accept_encoding;                     ///< Accept-Encoding ("" when absent)
};

/// One response, built by a handler and written by the transport.
struct HttpReply {
  unsigned status = 200;
  std::string content_type;  ///< empty: no Content-Type header (empty bodies)
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  ///< extra headers

  /// 200 with a JSON body.
  static HttpReply json(std::string body);
  /// An error answered with the status of `status.code()` from the one code table
  /// (protocol_codes.h) and the body {"error": message}.
  static HttpReply error(const Status& status);
  /// A transport-level error that has no StatusCode (405, 413): {"error": message}.
  static HttpReply http_error(unsigned http_status, std::string_view message);
};

/// Produces the reply; runs on the connection's io thread.
using ReplyFn = std::function<HttpReply()>;

/// Completes one request. Call exactly once, from any thread. Handlers that finish on another
/// thread (infer) pass work in `ReplyFn` so that encoding runs on the io thread, not on the
/// server core's thread. Calling after the connection or the frontend went away is harmless.
using Responder = std::function<void(ReplyFn)>;

/// Answers requests. Thread-safety: handle() is called concurrently from all io threads.
class RequestHandler {
 public:
  virtual ~RequestHandler() = default;
  /// Handles `request`; must not block on model execution.
  virtual void handle(const HttpRequestView& request, Responder respond) = 0;
};

/// Responds with a reply that is already built.
inline void reply_now(const Responder& respond, HttpReply reply) {
  respond([r = std::move(reply)]() mutable { return std::move(r); });
}

}  // namespace kiln::server::http
