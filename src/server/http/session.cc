#include "server/http/session.h"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>

#include <utility>

#include "server/http/compression.h"

namespace kiln::server::http {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace net = boost::asio;

// ---- SessionHub ------------------------------------------------------------------------------

bool SessionHub::add(const std::shared_ptr<Session>& session) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!open_) return false;
  sessions_.emplace(session.get(), session);
  return true;
}

void SessionHub::remove(const Session* session) {
  std::shared_ptr<Session> keep;  // destroyed after the lock is released
  std::lock_guard<std::mutex> lock(mu_);
  auto it = sessions_.find(session);
  if (it == sessions_.end()) return;
  keep = std::move(it->second);
  sessions_.erase(it);
}

void SessionHub::deliver(const std::weak_ptr<Session>& session, ReplyFn make) {
  // Holding the lock while posting orders every post before close(): once close() returned,
  // nothing touches the io_context the listener is about to destroy.
  std::lock_guard<std::mutex> lock(mu_);
  if (!open_) return;
  if (std::shared_ptr<Session> s = session.lock()) s->post_reply(std::move(make));
}

std::vector<std::shared_ptr<Session>> SessionHub::close() {
  std::lock_guard<std::mutex> lock(mu_);
  open_ = false;
  std::vector<std::shared_ptr<Session>> out;
  out.reserve(sessions_.size());
  for (auto& [key, s] : sessions_) out.push_back(std::move(s));
  sessions_.clear();
  return out;
}

// ---- Session ---------------------------------------------------------------------------------

Session::Session(net::ip::tcp::socket socket, std::shared_ptr<SessionHub> hub,
                 std::shared_ptr<RequestHandler> handler, const SessionLimits& limits)
    : stream_(std::move(socket)),
      hub_(std::move(hub)),
      handler_(std::move(handler)),
      limits_(limits) {}

void Session::start() {
  if (!hub_->add(shared_from_this())) return;
  // Run the first read on the strand, like every later handler.
  net::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->read_header(); });
}

void Session::post_reply(ReplyFn make) {
  net::post(stream_.get_executor(), [self = shared_from_this(), make = std::move(make)] {
    // A second reply for one request (a handler bug) must not start a second write.
    if (self->closed_ || !self->awaiting_reply_) return;
    self->awaiting_reply_ = false;
    self->send(make());
  });
}

void Session::read_header() {
  method_.clear();
  parser_.emplace();
  parser_->body_limit(limits_.max_body_bytes);
  if (limits_.idle_timeout.count() > 0) {
    stream_.expires_after(limits_.idle_timeout);
  } else {
    stream_.expires_never();
  }
  bhttp::async_read_header(
      stream_, buffer_, *parser_,
      [self = shared_from_this()](beast::error_code ec, size_t) { self->on_header(ec); });
}

void Session::on_header(beast::error_code ec) {
  if (ec) return on_read_error(ec);
  const auto& req = parser_->get();
  version_ = req.version();
  keep_alive_ = req.keep_alive();
  stream_.expires_after(limits_.io_timeout);
  auto read_body = [self = shared_from_this()] {
    bhttp::async_read(self->stream_, self->buffer_, *self->parser_,
                      [self](beast::error_code ec, size_t) { self->on_body(ec); });
  };
  if (beast::iequals(req[bhttp::field::expect], "100-continue")) {
    // libcurl (perf_analyzer's client) waits for this before sending large bodies.
    continue_ = bhttp::response<bhttp::empty_body>(bhttp::status::continue_, version_);
    bhttp::async_write(stream_, continue_,
                       [self = shared_from_this(), read_body](beast::error_code ec, size_t) {
                         if (ec) return self->close();
                         read_body();
                       });
    return;
  }
  read_body();
}

void Session::on_body(beast::error_code ec) {
  if (ec) return on_read_error(ec);
  dispatch();
}

void Session::on_read_error(beast::error_code ec) {
  if (ec == bhttp::error::body_limit) {
    // The rest of the body is still unread: answer, then drain and close the connection.
    keep_alive_ = false;
    return send(HttpReply::http_error(413, "request body exceeds the limit of " +
                                               std::to_string(limits_.max_body_bytes) + " bytes"),
                true);
  }
  if (ec == bhttp::error::header_limit) {
    keep_alive_ = false;
    return send(HttpReply::http_error(431, "request headers are too large"), true);
  }
  if (ec.category() == bhttp::make_error_code(bhttp::error::bad_method).category() &&
      ec != bhttp::error::end_of_stream && ec != bhttp::error::partial_message) {
    // A malformed request (bad method, bad header, bad chunk...): say so, then close.
    keep_alive_ = false;
    return send(HttpReply::http_error(400, "malformed HTTP request: " + ec.message()), true);
  }
  close();  // end of stream, timeout, reset: nobody to answer
}

void Session::dispatch() {
  auto& req = parser_->get();
  method_.assign(req.method_string().data(), req.method_string().size());
  const auto target = req.target();
  path_.assign(target.data(), target.size());
  if (const size_t q = path_.find('?'); q != std::string::npos) path_.resize(q);

  Result<ContentEncoding> encoding = parse_content_encoding(std::string_view(
      req[bhttp::field::content_encoding].data(), req[bhttp::field::content_encoding].size()));
  if (!encoding.ok()) {
    HttpReply r = HttpReply::error(encoding.status());
    r.headers.emplace_back("Accept-Encoding", "gzip, deflate");
    return send(std::move(r));
  }
  std::string body = std::move(req.body());
  if (encoding.value() != ContentEncoding::kIdentity) {
    Result<std::string> inflated = inflate_body(body, encoding.value(), limits_.max_body_bytes);
    if (!inflated.ok()) {
      // The one transport limit without a StatusCode: the body is too large (413).
      return send(inflated.status().code() == StatusCode::kOutOfRange
                      ? HttpReply::http_error(413, inflated.status().message())
                      : HttpReply::error(inflated.status()));
    }
    body = std::move(inflated).value();
  }

  HttpRequestView view;
  view.method = method_;
  view.path = path_;
  // The handler may keep views into this buffer (zero-copy binary inputs): it lives as long as
  // the last tensor that points into it.
  view.body = std::make_shared<const std::string>(std::move(body));
  if (auto it = req.find("Inference-Header-Content-Length"); it != req.end()) {
    view.infer_header_length.emplace(it->value().data(), it->value().size());
  }
  const auto accept = req[bhttp::field::accept_encoding];
  view.accept_encoding.assign(accept.data(), accept.size());
  parser_.reset();

  stream_.expires_never();  // the core may take its time; the client may wait as long
  awaiting_reply_ = true;
  handler_->handle(view, [hub = hub_, weak = weak_from_this()](ReplyFn make) {
    hub->deliver(weak, std::move(make));
  });
}

void Session::send(HttpReply reply, bool close_after) {
  auto res = std::make_shared<bhttp::response<bhttp::string_body>>(
      static_cast<bhttp::status>(reply.status), version_);
  res->set(bhttp::field::server, "kiln");
  if (!reply.content_type.empty()) res->set(bhttp::field::content_type, reply.content_type);
  for (const auto& [name, value] : reply.headers) res->set(name, value);
  res->body() = std::move(reply.body);
  res->keep_alive(keep_alive_ && !close_after);
  res->prepare_payload();
  if (method_ == "HEAD") {  // a HEAD reply announces its length but carries no body
    const auto length = res->body().size();
    res->body().clear();
    res->content_length(length);
  }
  response_ = res;
  const bool close = !res->keep_alive();
  stream_.expires_after(limits_.io_timeout);
  bhttp::async_write(
      stream_, *response_,
      [self = shared_from_this(), close, drain = close_after](beast::error_code ec, size_t) {
        self->response_.reset();
        if (!ec && drain) return self->drain();
        self->on_write(close, ec);
      });
}

void Session::on_write(bool close, beast::error_code ec) {
  if (ec || close) return this->close();
  read_header();
}

void Session::drain() {
  beast::error_code ignored;
  stream_.socket().shutdown(net::ip::tcp::socket::shutdown_send, ignored);
  stream_.expires_after(std::chrono::seconds(2));  // one deadline for the whole drain
  scratch_.resize(64 * 1024);
  drain_more();
}

void Session::drain_more() {
  stream_.async_read_some(net::buffer(scratch_),
                          [self = shared_from_this()](beast::error_code ec, size_t) {
                            if (ec) return self->close();
                            self->drain_more();
                          });
}

void Session::close() {
  if (closed_) return;
  closed_ = true;
  beast::error_code ignored;
  stream_.socket().shutdown(net::ip::tcp::socket::shutdown_both, ignored);
  stream_.close();
  hub_->remove(this);  // the last pending handler that holds this session frees it
}

}  // namespace kiln::server::http
