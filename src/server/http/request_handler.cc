#include "server/http/request_handler.h"

#include "server/http/json_writer.h"
#include "server/protocol_codes.h"

namespace kiln::server::http {

HttpReply HttpReply::json(std::string body) {
  HttpReply r;
  r.content_type = "application/json";
  r.body = std::move(body);
  return r;
}

HttpReply HttpReply::error(const Status& status) {
  // An ok Status here is a caller bug; answer it as an internal error rather than a 200.
  if (status.ok()) return http_error(500, "internal error: success reported as an error");
  return http_error(static_cast<unsigned>(http_status(status.code())), status.message());
}

HttpReply HttpReply::http_error(unsigned http_status, std::string_view message) {
  HttpReply r;
  r.status = http_status;
  r.content_type = "application/json";
  r.body = error_json(message);
  return r;
}

}  // namespace kiln::server::http
