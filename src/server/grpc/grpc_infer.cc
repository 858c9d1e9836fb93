#include "server/grpc/grpc_infer.h"

#include <deque>
#include <memory>
#include <mutex>
#include <utility>

#include "server/grpc/grpc_codec.h"
#include "server/protocol_codes.h"

namespace kiln::server {
namespace {

using inference::ModelInferRequest;
using inference::ModelInferResponse;
using inference::ModelStreamInferResponse;

// One unary ModelInfer. The decoded tensors view into `request`, which gRPC owns until the RPC
// finishes; so this state is each tensor's owner and finishes the RPC in its destructor, when the
// core's callback and every tensor have let go of it.
class UnaryInferCall {
 public:
  UnaryInferCall(grpc::ServerUnaryReactor* reactor, ModelInferResponse* response)
      : reactor_(reactor), response_(response) {}
  UnaryInferCall(const UnaryInferCall&) = delete;
  UnaryInferCall& operator=(const UnaryInferCall&) = delete;
  ~UnaryInferCall() { reactor_->Finish(status_); }

  void complete(Result<InferResponse> result) {
    if (result.ok()) {
      encode_infer_response(result.value(), response_);
    } else {
      status_ = to_grpc_status(result.status());
    }
  }

 private:
  grpc::ServerUnaryReactor* reactor_;
  ModelInferResponse* response_;
  grpc::Status status_;
};

bool wants_final_flag(const ModelInferRequest& request) {
  auto it = request.parameters().find(std::string(kEnableEmptyFinalResponse));
  return it != request.parameters().end() && it->second.has_bool_param() && it->second.bool_param();
}

// One ModelStreamInfer stream. Reads run one at a time (each into a fresh message that the
// decoded tensors keep alive); responses are queued under `mu_` and written one at a time, since
// gRPC allows only one outstanding write per stream. The reactor deletes itself in OnDone, which
// gRPC calls only after Finish, and Finish waits for every queued request to be answered, so the
// core's callbacks never outlive it.
class StreamInferReactor final
    : public grpc::ServerBidiReactor<ModelInferRequest, ModelStreamInferResponse> {
 public:
  explicit StreamInferReactor(Server& server) : server_(server) { read_next(); }

  void OnReadDone(bool ok) override {
    if (!ok) {  // the client closed its side, or the stream broke
      std::unique_lock lock(mu_);
      reads_done_ = true;
      pump(std::move(lock));
      return;
    }
    std::shared_ptr<ModelInferRequest> message = std::move(request_);
    {
      std::lock_guard lock(mu_);
      ++in_flight_;
    }
    read_next();  // `message` is ours now; keep reading while the core works

    Context ctx{message->id(), message->model_name(), message->model_version(),
                wants_final_flag(*message)};
    Result<InferRequest> decoded = decode_infer_request(*message, message);
    if (!decoded.ok()) {
      complete(ctx, decoded.status());
      return;
    }
    server_.infer(std::move(decoded).value(),
                  [this, ctx = std::move(ctx)](Result<InferResponse> result) {
                    complete(ctx, std::move(result));
                  });
  }

  void OnWriteDone(bool ok) override {
    std::unique_lock lock(mu_);
    write_in_flight_ = false;
    if (!ok) {  // the stream is broken: answers cannot be delivered any more
      write_failed_ = true;
      pending_.clear();
    }
    pump(std::move(lock));
  }

  void OnDone() override { delete this; }

 private:
  // What an error answer echoes so that the client can match it to its request.
  struct Context {
    std::string id;
    std::string model_name;
    std::string model_version;
    bool final_flag = false;
  };

  void read_next() {
    request_ = std::make_shared<ModelInferRequest>();
    StartRead(request_.get());
  }

  void complete(const Context& ctx, Result<InferResponse> result) {
    ModelStreamInferResponse answer;
    ModelInferResponse* response = answer.mutable_infer_response();
    if (result.ok()) {
      encode_infer_response(result.value(), response);
      if (ctx.final_flag) {
        (*response->mutable_parameters())[std::string(kFinalResponse)].set_bool_param(true);
      }
    } else {
      answer.set_error_message(result.status().message());
      response->set_id(ctx.id);
      response->set_model_name(ctx.model_name);
      response->set_model_version(ctx.model_version);
    }
    std::unique_lock lock(mu_);
    --in_flight_;
    if (!write_failed_) pending_.push_back(std::move(answer));
    pump(std::move(lock));
  }

  // Starts the next write, or finishes the stream when nothing is left to do. Called with `mu_`
  // held; releases it before calling into gRPC, whose reactions may run on other threads.
  void pump(std::unique_lock<std::mutex> lock) {
    if (!write_in_flight_ && !pending_.empty()) {
      writing_ = std::move(pending_.front());
      pending_.pop_front();
      write_in_flight_ = true;
      lock.unlock();
      StartWrite(&writing_);
      return;
    }
    if (reads_done_ && in_flight_ == 0 && !write_in_flight_ && pending_.empty() && !finished_) {
      finished_ = true;
      lock.unlock();
      Finish(grpc::Status::OK);  // may delete `this` (OnDone) before returning
    }
  }

  Server& server_;
  std::shared_ptr<ModelInferRequest> request_;  // the read in progress (one at a time)

  std::mutex mu_;
  std::deque<ModelStreamInferResponse> pending_;  // guarded by mu_
  ModelStreamInferResponse writing_;              // the write in flight
  int in_flight_ = 0;                             // requests read but not answered
  bool write_in_flight_ = false;
  bool write_failed_ = false;
  bool reads_done_ = false;
  bool finished_ = false;
};

}  // namespace

grpc::Status to_grpc_status(const Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(grpc_code(status.code())), status.message());
}

grpc::ServerUnaryReactor* start_model_infer(Server& server, grpc::CallbackServerContext* context,
                                            const ModelInferRequest* request,
                                            ModelInferResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  auto call = std::make_shared<UnaryInferCall>(reactor, response);
  Result<InferRequest> decoded = decode_infer_request(*request, call);
  if (!decoded.ok()) {
    call->complete(decoded.status());
    return reactor;  // `call` goes out of scope: the RPC finishes with the error
  }
  // The callback drops its reference as soon as it has run, so that the RPC's end does not wait
  // for the core to destroy the callback object itself.
  server.infer(std::move(decoded).value(), [call](Result<InferResponse> result) mutable {
    call->complete(std::move(result));
    call.reset();
  });
  return reactor;
}

grpc::ServerBidiReactor<ModelInferRequest, ModelStreamInferResponse>* start_model_stream_infer(
    Server& server) {
  return new StreamInferReactor(server);  // owned by gRPC until OnDone
}

}  // namespace kiln::server
