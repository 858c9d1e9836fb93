// One HTTP/1.1 connection (keep-alive, one request at a time) and the hub of all connections of
// a listener. Internal to src/server/http.
//
// Lifetime: the hub holds every open session; a session's own pending async operations hold it
// too. Replies that arrive from server core threads go through SessionHub::deliver, which holds
// only a weak reference: a session that closed (client disconnected) or a hub that closed
// (frontend stopping) just drops the reply. Nothing blocks an io thread while the core works.
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <chrono>
#include <cstddef>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "server/http/request_handler.h"

namespace kiln::server::http {

/// Transport limits of each connection.
struct SessionLimits {
  size_t max_body_bytes = 64u << 20;     ///< request body cap, before and after inflation (413)
  std::chrono::seconds idle_timeout{0};  ///< waiting for a request; 0 = no limit
  std::chrono::seconds io_timeout{60};   ///< reading one body / writing one response
};

class Session;

/// The open sessions of one listener and the gate that drops replies once it stops.
/// Thread-safe.
class SessionHub {
 public:
  /// Registers an open session; false when the hub already closed.
  bool add(const std::shared_ptr<Session>& session);
  /// Unregisters a session that closed.
  void remove(const Session* session);
  /// Hands `make` to the session's io strand, unless the hub or the session closed.
  void deliver(const std::weak_ptr<Session>& session, ReplyFn make);
  /// Closes the gate and returns the sessions still open; the caller destroys them once the io
  /// threads stopped.
  std::vector<std::shared_ptr<Session>> close();

 private:
  std::mutex mu_;
  bool open_ = true;
  std::unordered_map<const Session*, std::shared_ptr<Session>> sessions_;
};

/// One connection. All its handlers run on its strand.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(boost::asio::ip::tcp::socket socket, std::shared_ptr<SessionHub> hub,
          std::shared_ptr<RequestHandler> handler, const SessionLimits& limits);

  /// Registers with the hub and starts reading requests.
  void start();
  /// Posts `make` to this session's strand, where it builds and writes the reply.
  void post_reply(ReplyFn make);

 private:
  void read_header();
  void on_header(boost::beast::error_code ec);
  void on_body(boost::beast::error_code ec);
  void on_read_error(boost::beast::error_code ec);
  void dispatch();
  void send(HttpReply reply, bool close_after = false);
  void on_write(bool close, boost::beast::error_code ec);
  void drain();  // after a 413 mid-request: read and drop the rest so the client sees the reply
  void drain_more();
  void close();

  boost::beast::tcp_stream stream_;
  boost::beast::flat_buffer buffer_;
  std::shared_ptr<SessionHub> hub_;
  std::shared_ptr<RequestHandler> handler_;
  SessionLimits limits_;
  std::optional<boost::beast::http::request_parser<boost::beast::http::string_body>> parser_;
  std::shared_ptr<boost::beast::http::response<boost::beast::http::string_body>> response_;
  boost::beast::http::response<boost::beast::http::empty_body> continue_;
  std::vector<char> scratch_;
  std::string method_;
  std::string path_;
  unsigned version_ = 11;
  bool keep_alive_ = true;
  bool awaiting_reply_ = false;  // the handler owes the current request its reply
  bool closed_ = false;
};

}  // namespace kiln::server::http
