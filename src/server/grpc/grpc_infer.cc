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
using InferCall = UnaryCall<ModelInferRequest, ModelInferResponse>;

// The answer of one unary ModelInfer. The decoded tensors view into the call's request, which
// lives until the call finishes; so this is each tensor's owner and finishes the call in its
// destructor, when the core's callback and every tensor have let go of it.
class InferAnswer {
 public:
  explicit InferAnswer(InferCall* call) : call_(call) {}
  InferAnswer(const InferAnswer&) = delete;
  InferAnswer& operator=(const InferAnswer&) = delete;
  ~InferAnswer() { call_->finish(status_); }

  void complete(Result<InferResponse> result) {
    if (result.ok()) {
      encode_infer_response(result.value(), call_->response());
    } else {
      status_ = to_grpc_status(result.status());
    }
  }

 private:
  InferCall* call_;
  grpc::Status status_;
};

bool wants_final_flag(const ModelInferRequest& request) {
  auto it = request.parameters().find(std::string(kEnableEmptyFinalResponse));
  return it != request.parameters().end() && it->second.has_bool_param() && it->second.bool_param();
}

// One ModelStreamInfer stream. Reads run one at a time (each into a fresh message that the
// decoded tensors keep alive); responses are queued under `mu_` and written one at a time, since
// gRPC allows one outstanding write per stream. Every stream ends with Finish, which waits for
// every request read to be answered; the call deletes itself when Finish has completed (or when
// no stream arrived before shutdown), so the core's callbacks never outlive it.
class StreamInferCall {
 public:
  static void await(Server& server, const CallSite& site) { new StreamInferCall(server, site); }

 private:
  // One kind of queue event on this stream.
  class Event final : public Tag {
   public:
    Event(StreamInferCall* call, void (StreamInferCall::*on)(bool)) : call_(call), on_(on) {}
    void proceed(bool ok) override { (call_->*on_)(ok); }

   private:
    StreamInferCall* call_;
    void (StreamInferCall::*on_)(bool);
  };

  // What an error answer echoes so that the client can match it to its request.
  struct Context {
    std::string id;
    std::string model_name;
    std::string model_version;
    bool final_flag = false;
  };

  StreamInferCall(Server& server, const CallSite& site)
      : server_(server), site_(site), stream_(&context_) {
    site_.live->add();
    site_.service->RequestModelStreamInfer(&context_, &stream_, site_.queue, site_.queue,
                                           static_cast<Tag*>(&accepted_));
  }
  ~StreamInferCall() { site_.live->remove(); }

  void on_accepted(bool ok) {
    if (!ok) {  // shutting down: no stream came
      delete this;
      return;
    }
    await(server_, site_);  // the next stream
    read_next();
  }

  void on_read(bool ok) {
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

  void on_written(bool ok) {
    std::unique_lock lock(mu_);
    write_in_flight_ = false;
    if (!ok) {  // the stream is broken: answers cannot be delivered any more
      write_failed_ = true;
      pending_.clear();
    }
    pump(std::move(lock));
  }

  void on_finished(bool) { delete this; }

  void read_next() {
    request_ = std::make_shared<ModelInferRequest>();
    stream_.Read(request_.get(), static_cast<Tag*>(&read_));
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
  // held; releases it before calling into gRPC.
  void pump(std::unique_lock<std::mutex> lock) {
    if (!write_in_flight_ && !pending_.empty()) {
      writing_ = std::move(pending_.front());
      pending_.pop_front();
      write_in_flight_ = true;
      lock.unlock();
      stream_.Write(writing_, static_cast<Tag*>(&written_));
      return;
    }
    if (reads_done_ && in_flight_ == 0 && !write_in_flight_ && pending_.empty() && !finished_) {
      finished_ = true;
      lock.unlock();
      stream_.Finish(grpc::Status::OK, static_cast<Tag*>(&finish_));  // on_finished deletes `this`
    }
  }

  Server& server_;
  CallSite site_;
  grpc::ServerContext context_;
  grpc::ServerAsyncReaderWriter<ModelStreamInferResponse, ModelInferRequest> stream_;
  Event accepted_{this, &StreamInferCall::on_accepted};
  Event read_{this, &StreamInferCall::on_read};
  Event written_{this, &StreamInferCall::on_written};
  Event finish_{this, &StreamInferCall::on_finished};
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

void serve_model_infer(Server& server, InferCall& call) {
  auto answer = std::make_shared<InferAnswer>(&call);
  Result<InferRequest> decoded = decode_infer_request(call.request(), answer);
  if (!decoded.ok()) {
    answer->complete(decoded.status());
    return;  // `answer` goes out of scope: the call finishes with the error
  }
  // The callback drops its reference as soon as it has run, so that the call's end does not
  // wait for the core to destroy the callback object itself.
  server.infer(std::move(decoded).value(), [answer](Result<InferResponse> result) mutable {
    answer->complete(std::move(result));
    answer.reset();
  });
}

void await_model_stream_infer(Server& server, const CallSite& site) {
  StreamInferCall::await(server, site);
}

}  // namespace kiln::server
