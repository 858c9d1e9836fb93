// The part of gRPC's completion-queue (asynchronous) server API that the gRPC frontend builds on.
//
// Why the completion-queue API and not the callback API: with the callback API, gRPC's own
// event-engine threads poll the sockets, run the handlers and hand every event to whichever
// thread is free; measured with bench/e2e/server_cpu_per_request.sh, that costs about 4 context
// switches per unary ModelInfer, against 0.3-0.4 for one thread per completion queue that polls
// and runs the handlers itself (bench/e2e/grpc_async_probe.cc). Mixing the two APIs in one
// server keeps the callback threads polling the same sockets, so every RPC is on queues here.
//
// A Tag is what a queue event points at; a queue's thread calls proceed(ok) on it. LiveCalls
// counts the calls that may still post to a queue, so that stop() shuts the queues down only
// when none can. UnaryCall serves one unary RPC.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>

#include <grpcpp/grpcpp.h>

#include "grpc_service.grpc.pb.h"

namespace kiln::server {

using AsyncService = inference::GRPCInferenceService::AsyncService;

/// The target of a completion-queue event. proceed() runs on the queue's thread. Tags go to gRPC
/// as a Tag* converted to void*, since the queue's thread converts them back to Tag*.
class Tag {
 public:
  virtual void proceed(bool ok) = 0;

 protected:
  ~Tag() = default;
};

/// The number of calls alive: waiting for a client, being served or finishing.
/// Thread-safe.
class LiveCalls {
 public:
  void add() {
    std::lock_guard lock(mu_);
    ++count_;
  }
  void remove() {
    std::lock_guard lock(mu_);
    if (--count_ == 0) none_.notify_all();
  }
  /// Blocks until no call is alive or `timeout` has passed; the number still alive.
  int wait_none(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    none_.wait_for(lock, timeout, [this] { return count_ == 0; });
    return count_;
  }

 private:
  std::mutex mu_;
  std::condition_variable none_;
  int count_ = 0;  // guarded by mu_
};

/// Where a call is served: the service it is requested from, its queue and the live count.
struct CallSite {
  AsyncService* service = nullptr;
  grpc::ServerCompletionQueue* queue = nullptr;
  LiveCalls* live = nullptr;
};

/// One unary RPC on a completion queue. It asks gRPC for the next call of its kind; when one
/// arrives it asks for another (so one always waits), runs the handler, and deletes itself once
/// the answer the handler gave to finish() has gone out or the queue is shut down.
///
/// Thread-safety: the handler runs on the queue's thread; finish() may be called from any thread,
/// exactly once, and the call must not be touched after it.
template <class Request, class Response>
class UnaryCall final : public Tag {
 public:
  using Writer = grpc::ServerAsyncResponseWriter<Response>;
  using RequestMethod = void (AsyncService::*)(grpc::ServerContext*, Request*, Writer*,
                                               grpc::CompletionQueue*, grpc::ServerCompletionQueue*,
                                               void*);
  /// What one kind of call does: how gRPC is asked for it, and its handler.
  struct Kind {
    RequestMethod request;
    std::function<void(UnaryCall&)> handler;
  };

  /// Asks gRPC for a call of `kind` on `site`'s queue. `kind` must outlive every such call.
  static void await(const CallSite& site, const Kind* kind) { new UnaryCall(site, kind); }

  const Request& request() const { return request_; }
  Response* response() { return &response_; }
  grpc::ServerContext& context() { return context_; }

  /// Sends the answer: `response()` when `status` is OK, else only the status.
  void finish(const grpc::Status& status) {
    if (status.ok()) {
      writer_.Finish(response_, status, tag());
    } else {
      writer_.FinishWithError(status, tag());
    }
  }

  void proceed(bool ok) override {
    // Not ok: the server is shutting down. Served: the answer has gone out (or could not).
    if (!ok || served_) {
      delete this;
      return;
    }
    served_ = true;
    await(site_, kind_);
    kind_->handler(*this);  // may call finish(): `this` is not touched after
  }

 private:
  UnaryCall(const CallSite& site, const Kind* kind) : site_(site), kind_(kind), writer_(&context_) {
    site_.live->add();
    (site_.service->*kind_->request)(&context_, &request_, &writer_, site_.queue, site_.queue,
                                     tag());
  }
  ~UnaryCall() { site_.live->remove(); }
  // The queue's threads cast every tag back to Tag*: pass that exact pointer.
  Tag* tag() { return static_cast<Tag*>(this); }

  CallSite site_;
  const Kind* kind_;
  grpc::ServerContext context_;
  Request request_;
  Response response_;
  Writer writer_;
  bool served_ = false;  // set on the queue's thread before the handler runs
};

}  // namespace kiln::server
