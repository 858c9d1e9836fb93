// A measuring probe, not part of kiln: the smallest KServe v2 gRPC server that perf_analyzer can
// drive (an identity model "identity", INPUT0 -> OUTPUT0), with ModelInfer on gRPC's
// completion-queue API (one thread per queue polling and answering, as Triton's frontend does)
// and the metadata calls on the synchronous API. bench/e2e/server_cpu_per_request.sh runs it
// beside `kiln serve`, whose frontend uses gRPC's callback API, to tell how much of kiln's server
// cost per request is the gRPC API it is written against.
// SIGUSR1 prints the number of requests answered so far to stderr ("answered N").
//   grpc_async_probe --port 18101 [--queues 1] [--slots 64]
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "grpc_service.grpc.pb.h"

namespace {

using inference::GRPCInferenceService;

constexpr int kDims = 16;

// The synchronous half: what perf_analyzer asks before it starts sending.
class MetadataService final
    : public GRPCInferenceService::WithAsyncMethod_ModelInfer<GRPCInferenceService::Service> {
 public:
  grpc::Status ServerLive(grpc::ServerContext*, const inference::ServerLiveRequest*,
                          inference::ServerLiveResponse* r) override {
    r->set_live(true);
    return grpc::Status::OK;
  }
  grpc::Status ServerReady(grpc::ServerContext*, const inference::ServerReadyRequest*,
                           inference::ServerReadyResponse* r) override {
    r->set_ready(true);
    return grpc::Status::OK;
  }
  grpc::Status ModelReady(grpc::ServerContext*, const inference::ModelReadyRequest*,
                          inference::ModelReadyResponse* r) override {
    r->set_ready(true);
    return grpc::Status::OK;
  }
  grpc::Status ServerMetadata(grpc::ServerContext*, const inference::ServerMetadataRequest*,
                              inference::ServerMetadataResponse* r) override {
    r->set_name("grpc_async_probe");
    r->set_version("0");
    return grpc::Status::OK;
  }
  grpc::Status ModelMetadata(grpc::ServerContext*, const inference::ModelMetadataRequest* q,
                             inference::ModelMetadataResponse* r) override {
    r->set_name(q->name());
    const std::string version = "1";
    r->add_versions(version);
    r->set_platform("identity");
    auto* in = r->add_inputs();
    in->set_name("INPUT0");
    in->set_datatype("FP32");
    in->add_shape(kDims);
    auto* out = r->add_outputs();
    out->set_name("OUTPUT0");
    out->set_datatype("FP32");
    out->add_shape(kDims);
    return grpc::Status::OK;
  }
  grpc::Status ModelConfig(grpc::ServerContext*, const inference::ModelConfigRequest* q,
                           inference::ModelConfigResponse* r) override {
    auto* c = r->mutable_config();
    c->set_name(q->name());
    c->set_backend("identity");
    c->set_max_batch_size(0);
    auto* in = c->add_input();
    in->set_name("INPUT0");
    in->set_data_type(inference::TYPE_FP32);
    in->add_dims(kDims);
    auto* out = c->add_output();
    out->set_name("OUTPUT0");
    out->set_data_type(inference::TYPE_FP32);
    out->add_dims(kDims);
    return grpc::Status::OK;
  }
  grpc::Status ModelStatistics(grpc::ServerContext*, const inference::ModelStatisticsRequest* q,
                               inference::ModelStatisticsResponse* r) override {
    auto* s = r->add_model_stats();
    s->set_name(q->name().empty() ? "identity" : q->name());
    s->set_version("1");
    return grpc::Status::OK;
  }
};

std::atomic<uint64_t> g_answered{0};
std::atomic<bool> g_stop{false}, g_report{false};

// One ModelInfer in flight on a queue: waiting for a call, then answered and finishing.
class Call {
 public:
  Call(MetadataService* service, grpc::ServerCompletionQueue* cq)
      : service_(service), cq_(cq), responder_(&ctx_) {
    service_->RequestModelInfer(&ctx_, &request_, &responder_, cq_, cq_, this);
  }
  void proceed(bool ok) {
    if (!ok || finishing_) {  // shut down, or the answer has gone out
      delete this;
      return;
    }
    new Call(service_, cq_);  // the next call on this queue
    finishing_ = true;
    response_.set_model_name(request_.model_name());
    response_.set_model_version("1");
    response_.set_id(request_.id());
    if (request_.inputs_size() != 1 || request_.raw_input_contents_size() != 1) {
      responder_.Finish(response_, grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "INPUT0"),
                        this);
      return;
    }
    auto* out = response_.add_outputs();
    out->set_name("OUTPUT0");
    out->set_datatype(request_.inputs(0).datatype());
    *out->mutable_shape() = request_.inputs(0).shape();
    *response_.add_raw_output_contents() = request_.raw_input_contents(0);
    responder_.Finish(response_, grpc::Status::OK, this);
    g_answered.fetch_add(1, std::memory_order_relaxed);
  }

 private:
  MetadataService* service_;
  grpc::ServerCompletionQueue* cq_;
  grpc::ServerContext ctx_;
  inference::ModelInferRequest request_;
  inference::ModelInferResponse response_;
  grpc::ServerAsyncResponseWriter<inference::ModelInferResponse> responder_;
  bool finishing_ = false;
};

}  // namespace

int main(int argc, char** argv) {
  int port = 18101, queues = 1, slots = 64;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--port")) port = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--queues")) queues = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--slots")) slots = std::atoi(argv[i + 1]);
  }
  MetadataService service;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("0.0.0.0:" + std::to_string(port), grpc::InsecureServerCredentials());
  builder.RegisterService(&service);
  std::vector<std::unique_ptr<grpc::ServerCompletionQueue>> cqs;
  for (int q = 0; q < queues; ++q) cqs.push_back(builder.AddCompletionQueue());
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr) {
    std::fprintf(stderr, "cannot listen on port %d\n", port);
    return 1;
  }
  std::vector<std::thread> threads;
  for (auto& cq : cqs) {
    for (int s = 0; s < slots; ++s) new Call(&service, cq.get());
    threads.emplace_back([cq = cq.get()] {
      void* tag = nullptr;
      bool ok = false;
      while (cq->Next(&tag, &ok)) static_cast<Call*>(tag)->proceed(ok);
    });
  }
  std::signal(SIGINT, [](int) { g_stop = true; });
  std::signal(SIGTERM, [](int) { g_stop = true; });
  std::signal(SIGUSR1, [](int) { g_report = true; });
  std::fprintf(stderr, "grpc_async_probe listening on %d\n", port);
  while (!g_stop) {
    if (g_report.exchange(false)) {
      std::fprintf(stderr, "answered %llu\n", static_cast<unsigned long long>(g_answered.load()));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  server->Shutdown();
  for (auto& cq : cqs) cq->Shutdown();
  for (auto& t : threads) t.join();
  return 0;
}
