// An HTTP server: one io_context run by N threads, an acceptor and a SessionHub, answering with
// a RequestHandler. The API frontend and the metrics frontend are two listeners with different
// handlers. Internal to src/server/http.
#pragma once

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "kiln/status.h"
#include "server/http/request_handler.h"
#include "server/http/session.h"

namespace kiln::server::http {

/// Where and how a listener serves.
struct ListenerOptions {
  std::string address = "0.0.0.0";
  int port = 0;  ///< 0 = an ephemeral port (see HttpListener::port())
  int thread_count = 1;
  SessionLimits limits;
};

/// Thread-safety: start/stop/port from any one controlling thread; never from an io thread.
class HttpListener {
 public:
  /// Binds, listens and starts the io threads. kUnavailable when the address cannot be bound,
  /// kInvalidArgument for a bad address or option.
  static Result<std::unique_ptr<HttpListener>> start(std::shared_ptr<RequestHandler> handler,
                                                     const ListenerOptions& options);
  ~HttpListener();
  HttpListener(const HttpListener&) = delete;
  HttpListener& operator=(const HttpListener&) = delete;

  /// Stops accepting, drops open connections (replies still in the core are discarded) and
  /// joins the io threads. Idempotent.
  void stop();
  /// The bound port.
  int port() const { return port_; }

 private:
  HttpListener(std::shared_ptr<RequestHandler> handler, const ListenerOptions& options);
  void accept();

  // Declared first so that it is destroyed last, after every socket and timer that uses it.
  boost::asio::io_context ioc_;
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_;
  boost::asio::ip::tcp::acceptor acceptor_;
  boost::asio::steady_timer backoff_;
  std::shared_ptr<SessionHub> hub_;
  std::shared_ptr<RequestHandler> handler_;
  ListenerOptions options_;
  std::vector<std::thread> threads_;
  int port_ = 0;
  std::mutex stop_mu_;
  bool stopped_ = false;
};

}  // namespace kiln::server::http
