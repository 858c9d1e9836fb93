#include "server/http/listener.h"

#include <boost/asio/strand.hpp>

#include <chrono>
#include <utility>

#include "core/thread_name.h"

namespace kiln::server::http {

namespace net = boost::asio;
using tcp = net::ip::tcp;

HttpListener::HttpListener(std::shared_ptr<RequestHandler> handler, const ListenerOptions& options)
    : ioc_(options.thread_count),
      acceptor_(ioc_),
      backoff_(ioc_),
      hub_(std::make_shared<SessionHub>()),
      handler_(std::move(handler)),
      options_(options) {}

Result<std::unique_ptr<HttpListener>> HttpListener::start(std::shared_ptr<RequestHandler> handler,
                                                          const ListenerOptions& options) {
  if (options.thread_count < 1) {
    return invalid_argument("HTTP thread count must be at least 1, got " +
                            std::to_string(options.thread_count));
  }
  if (options.port < 0 || options.port > 65535) {
    return invalid_argument("HTTP port must be in [0, 65535], got " + std::to_string(options.port));
  }
  boost::system::error_code ec;
  const net::ip::address address = net::ip::make_address(options.address, ec);
  if (ec) return invalid_argument("invalid HTTP listen address '" + options.address + "'");

  std::unique_ptr<HttpListener> l(new HttpListener(std::move(handler), options));
  const tcp::endpoint endpoint(address, static_cast<unsigned short>(options.port));
  const std::string where = options.address + ":" + std::to_string(options.port);
  auto fail = [&](std::string_view step) {
    return unavailable("cannot " + std::string(step) + " " + where + ": " + ec.message());
  };
  l->acceptor_.open(endpoint.protocol(), ec);
  if (ec) return fail("open a socket for");
  l->acceptor_.set_option(net::socket_base::reuse_address(true), ec);
  if (ec) return fail("set SO_REUSEADDR on");
  l->acceptor_.bind(endpoint, ec);
  if (ec) return fail("bind");
  l->acceptor_.listen(net::socket_base::max_listen_connections, ec);
  if (ec) return fail("listen on");
  l->port_ = l->acceptor_.local_endpoint(ec).port();
  if (ec) return fail("read the bound port of");

  l->work_.emplace(net::make_work_guard(l->ioc_));
  l->accept();
  l->threads_.reserve(options.thread_count);
  for (int i = 0; i < options.thread_count; ++i) {
    l->threads_.emplace_back([ioc = &l->ioc_] {
      core::set_thread_name("kiln-http");
      ioc->run();
    });
  }
  return l;
}

HttpListener::~HttpListener() { stop(); }

void HttpListener::accept() {
  // Each connection gets its own strand: its handlers never run concurrently.
  acceptor_.async_accept(
      net::make_strand(ioc_), [this](boost::system::error_code ec, tcp::socket socket) {
        if (ec == net::error::operation_aborted || !acceptor_.is_open()) return;
        if (ec) {
          // E.g. out of file descriptors: back off instead of spinning.
          backoff_.expires_after(std::chrono::milliseconds(50));
          backoff_.async_wait([this](boost::system::error_code wait_ec) {
            if (!wait_ec) accept();
          });
          return;
        }
        boost::system::error_code ignored;
        socket.set_option(tcp::no_delay(true), ignored);  // small replies must not wait (Nagle)
        std::make_shared<Session>(std::move(socket), hub_, handler_, options_.limits)->start();
        accept();
      });
}

void HttpListener::stop() {
  std::lock_guard<std::mutex> lock(stop_mu_);
  if (stopped_) return;
  stopped_ = true;
  // 1. No reply from the core may reach the io_context from now on.
  std::vector<std::shared_ptr<Session>> sessions = hub_->close();
  // 2. Stop the io threads.
  work_.reset();
  ioc_.stop();
  for (std::thread& t : threads_) t.join();
  threads_.clear();
  // 3. With no thread running, close the acceptor and the connections. Handlers still queued
  //    in ioc_ (holding sessions) are destroyed with it.
  boost::system::error_code ignored;
  acceptor_.close(ignored);
  backoff_.cancel();
  sessions.clear();
}

}  // namespace kiln::server::http
