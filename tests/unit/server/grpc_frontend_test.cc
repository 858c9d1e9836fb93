// GrpcFrontend over loopback: a real generated C++ stub against a fake core.
#include "server/grpc/grpc_frontend.h"

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <initializer_list>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "grpc_service.grpc.pb.h"
#include "model_config.pb.h"

namespace kiln::server {
namespace {

using namespace std::chrono_literals;

// RepeatedField has no initializer-list Add in protobuf 3.21.
template <typename Field, typename T>
void add_all(Field* field, std::initializer_list<T> values) {
  for (const T& v : values) field->Add(v);
}

// A core with one model, "identity", that echoes its inputs (or the requested subset) as
// outputs of the same names. It answers from its own threads after the request's "delay_ms"
// parameter, reading the input bytes only then: a frontend that freed the request message early
// would echo garbage (or crash under ASan). Unknown models fail on the calling thread.
class FakeServer final : public Server {
 public:
  ~FakeServer() override {
    std::lock_guard lock(mu_);
    for (std::thread& t : threads_) t.join();
  }

  bool live() const override { return true; }
  bool ready() const override { return ready_; }
  kiln::server::ServerMetadata metadata() const override {
    return {"kiln", "0.1.0", {"classification", "model_repository"}};
  }
  Result<bool> model_ready(std::string_view name, std::string_view) const override {
    if (name != "identity") return not_found("unknown model '" + std::string(name) + "'");
    return true;
  }
  Result<kiln::server::ModelMetadata> model_metadata(std::string_view name,
                                                     std::string_view) const override {
    if (name != "identity") return not_found("unknown model '" + std::string(name) + "'");
    return kiln::server::ModelMetadata{"identity",
                                       {"1"},
                                       "kiln",
                                       {{"INPUT0", DataType::kInt64, {-1, -1}}},
                                       {{"INPUT0", DataType::kInt64, {-1, -1}}}};
  }
  Result<std::string> model_config(std::string_view name, std::string_view,
                                   ConfigFormat format) const override {
    if (name != "identity") return not_found("unknown model '" + std::string(name) + "'");
    if (format != ConfigFormat::kProtoBinary) return internal_error("wrong format");
    inference::ModelConfig config;
    config.set_name("identity");
    config.set_max_batch_size(8);
    return config.SerializeAsString();
  }

  void infer(InferRequest request, InferCallback done) override {
    if (request.model_name != "identity") {
      done(not_found("unknown model '" + request.model_name + "'"));
      return;
    }
    {
      std::lock_guard lock(mu_);
      last_priority_ = request.priority;
      last_timeout_us_ = request.timeout_us;
      last_parameters_ = request.parameters;
    }
    int64_t delay_ms = 0;
    if (auto it = request.parameters.find("delay_ms"); it != request.parameters.end()) {
      delay_ms = std::get<int64_t>(it->second);
    }
    std::lock_guard lock(mu_);
    threads_.emplace_back([request = std::move(request), done = std::move(done), delay_ms] {
      std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
      InferResponse response;
      response.model_name = request.model_name;
      response.model_version = "1";
      response.id = request.id;
      for (const Tensor& in : request.inputs) {
        if (!request.outputs.empty() && std::find(request.outputs.begin(), request.outputs.end(),
                                                  in.name) == request.outputs.end()) {
          continue;
        }
        response.outputs.push_back(
            Tensor::owned(in.name, in.datatype, in.shape, {in.data, in.data + in.byte_size}));
      }
      done(std::move(response));
    });
  }

  Result<std::vector<ModelStatistics>> statistics(std::string_view name,
                                                  std::string_view) const override {
    if (!name.empty() && name != "identity") return not_found("unknown model");
    ModelStatistics s;
    s.name = "identity";
    s.version = "1";
    s.inference_count = 12;
    s.execution_count = 3;
    s.cache_miss = {4, 400};
    s.batch_stats.push_back({4, {3, 30}, {3, 300}, {3, 33}});
    return std::vector<ModelStatistics>{s};
  }
  std::vector<RepositoryEntry> repository_index(bool ready_only) const override {
    std::vector<RepositoryEntry> entries = {{"identity", "1", "READY", ""}};
    if (!ready_only) entries.push_back({"other", "", "UNAVAILABLE", "not loaded"});
    return entries;
  }
  Status load_model(std::string_view name, const LoadOptions& options) override {
    std::lock_guard lock(mu_);
    loaded_config_ = options.config_json;
    return name == "identity" ? ok_status() : not_found("no model '" + std::string(name) + "'");
  }
  Status unload_model(std::string_view name) override {
    return name == "identity" ? ok_status() : failed_precondition("not loaded");
  }
  std::string metrics_text() const override { return ""; }
  bool shutdown(std::chrono::milliseconds) override { return true; }

  std::atomic<bool> ready_ = true;
  mutable std::mutex mu_;
  uint32_t last_priority_ = 0;
  uint64_t last_timeout_us_ = 0;
  Parameters last_parameters_;
  std::string loaded_config_;

 private:
  std::vector<std::thread> threads_;
};

class GrpcFrontendTest : public ::testing::Test {
 protected:
  void SetUp() override { start({}); }

  void start(GrpcOptions options) {
    frontend_.reset();
    options.address = "127.0.0.1";
    options.port = 0;
    auto f = GrpcFrontend::start(core_, options);
    ASSERT_TRUE(f.ok()) << f.status().to_string();
    frontend_ = std::move(f).value();
    ASSERT_GT(frontend_->port(), 0);
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(-1);
    args.SetMaxSendMessageSize(-1);
    stub_ = inference::GRPCInferenceService::NewStub(
        grpc::CreateCustomChannel("127.0.0.1:" + std::to_string(frontend_->port()),
                                  grpc::InsecureChannelCredentials(), args));
  }

  static inference::ModelInferRequest raw_request(const std::string& id,
                                                  const std::vector<int64_t>& values) {
    inference::ModelInferRequest req;
    req.set_model_name("identity");
    req.set_id(id);
    auto* in = req.add_inputs();
    in->set_name("INPUT0");
    in->set_datatype("INT64");
    in->add_shape(1);
    in->add_shape(static_cast<int64_t>(values.size()));
    req.add_raw_input_contents(
        std::string(reinterpret_cast<const char*>(values.data()), values.size() * 8));
    return req;
  }

  static std::vector<int64_t> raw_int64(const std::string& bytes) {
    std::vector<int64_t> v(bytes.size() / 8);
    std::memcpy(v.data(), bytes.data(), v.size() * 8);
    return v;
  }

  FakeServer core_;  // declared first: outlives the frontend
  std::unique_ptr<GrpcFrontend> frontend_;
  std::unique_ptr<inference::GRPCInferenceService::Stub> stub_;
};

TEST_F(GrpcFrontendTest, HealthAndServerMetadata) {
  grpc::ClientContext c1, c2, c3;
  inference::ServerLiveResponse live;
  ASSERT_TRUE(stub_->ServerLive(&c1, {}, &live).ok());
  EXPECT_TRUE(live.live());
  core_.ready_ = false;
  inference::ServerReadyResponse ready;
  ASSERT_TRUE(stub_->ServerReady(&c2, {}, &ready).ok());
  EXPECT_FALSE(ready.ready());
  inference::ServerMetadataResponse md;
  ASSERT_TRUE(stub_->ServerMetadata(&c3, {}, &md).ok());
  EXPECT_EQ(md.name(), "kiln");
  EXPECT_EQ(md.version(), "0.1.0");
  ASSERT_EQ(md.extensions_size(), 2);
  EXPECT_EQ(md.extensions(1), "model_repository");
}

TEST_F(GrpcFrontendTest, ModelReadyMetadataAndConfig) {
  inference::ModelReadyRequest rq;
  rq.set_name("identity");
  inference::ModelReadyResponse rr;
  grpc::ClientContext c1;
  ASSERT_TRUE(stub_->ModelReady(&c1, rq, &rr).ok());
  EXPECT_TRUE(rr.ready());
  rq.set_name("nope");  // Triton: ready = false, not an error
  grpc::ClientContext c2;
  ASSERT_TRUE(stub_->ModelReady(&c2, rq, &rr).ok());
  EXPECT_FALSE(rr.ready());

  inference::ModelMetadataRequest mq;
  mq.set_name("identity");
  inference::ModelMetadataResponse mr;
  grpc::ClientContext c3;
  ASSERT_TRUE(stub_->ModelMetadata(&c3, mq, &mr).ok());
  EXPECT_EQ(mr.platform(), "kiln");
  ASSERT_EQ(mr.inputs_size(), 1);
  EXPECT_EQ(mr.inputs(0).datatype(), "INT64");
  EXPECT_EQ(mr.inputs(0).shape(0), -1);
  mq.set_name("nope");
  grpc::ClientContext c4;
  grpc::Status s = stub_->ModelMetadata(&c4, mq, &mr);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(s.error_message(), "unknown model 'nope'");

  inference::ModelConfigRequest cq;
  cq.set_name("identity");
  inference::ModelConfigResponse cr;
  grpc::ClientContext c5;
  ASSERT_TRUE(stub_->ModelConfig(&c5, cq, &cr).ok());
  EXPECT_EQ(cr.config().name(), "identity");
  EXPECT_EQ(cr.config().max_batch_size(), 8);
}

TEST_F(GrpcFrontendTest, StatisticsAndRepository) {
  inference::ModelStatisticsRequest sq;
  sq.set_name("identity");
  inference::ModelStatisticsResponse sr;
  grpc::ClientContext c1;
  ASSERT_TRUE(stub_->ModelStatistics(&c1, sq, &sr).ok());
  ASSERT_EQ(sr.model_stats_size(), 1);
  EXPECT_EQ(sr.model_stats(0).inference_count(), 12u);
  EXPECT_EQ(sr.model_stats(0).inference_stats().cache_miss().ns(), 400u);
  EXPECT_EQ(sr.model_stats(0).batch_stats(0).compute_output().ns(), 33u);

  inference::RepositoryIndexRequest iq;
  inference::RepositoryIndexResponse ir;
  grpc::ClientContext c2;
  ASSERT_TRUE(stub_->RepositoryIndex(&c2, iq, &ir).ok());
  ASSERT_EQ(ir.models_size(), 2);
  EXPECT_EQ(ir.models(1).reason(), "not loaded");

  inference::RepositoryModelLoadRequest lq;
  lq.set_model_name("identity");
  (*lq.mutable_parameters())["config"].set_string_param(R"({"max_batch_size": 4})");
  inference::RepositoryModelLoadResponse lr;
  grpc::ClientContext c3;
  ASSERT_TRUE(stub_->RepositoryModelLoad(&c3, lq, &lr).ok());
  {
    std::lock_guard lock(core_.mu_);
    EXPECT_EQ(core_.loaded_config_, R"({"max_batch_size": 4})");
  }
  (*lq.mutable_parameters())["file:1/model.onnx"].set_bytes_param("x");
  grpc::ClientContext c4;
  EXPECT_EQ(stub_->RepositoryModelLoad(&c4, lq, &lr).error_code(), grpc::StatusCode::UNIMPLEMENTED);

  inference::RepositoryModelUnloadRequest uq;
  uq.set_model_name("other");
  inference::RepositoryModelUnloadResponse ur;
  grpc::ClientContext c5;
  grpc::Status s = stub_->RepositoryModelUnload(&c5, uq, &ur);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(s.error_message(), "not loaded");
}

TEST_F(GrpcFrontendTest, InferRawAndTyped) {
  inference::ModelInferRequest req = raw_request("r1", {101, 2023, 102});
  auto& params = *req.mutable_parameters();
  params["priority"].set_uint64_param(2);
  params["timeout"].set_int64_param(5000);
  params["delay_ms"].set_int64_param(20);  // answered later, from another thread
  inference::ModelInferResponse resp;
  grpc::ClientContext c1;
  grpc::Status s = stub_->ModelInfer(&c1, req, &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(resp.id(), "r1");
  EXPECT_EQ(resp.model_name(), "identity");
  EXPECT_EQ(resp.model_version(), "1");
  ASSERT_EQ(resp.outputs_size(), 1);
  EXPECT_EQ(resp.outputs(0).name(), "INPUT0");
  EXPECT_EQ(resp.outputs(0).datatype(), "INT64");
  EXPECT_EQ(resp.outputs(0).shape(1), 3);
  ASSERT_EQ(resp.raw_output_contents_size(), 1);
  EXPECT_EQ(raw_int64(resp.raw_output_contents(0)), (std::vector<int64_t>{101, 2023, 102}));
  {
    std::lock_guard lock(core_.mu_);
    EXPECT_EQ(core_.last_priority_, 2u);
    EXPECT_EQ(core_.last_timeout_us_, 5000u);
    EXPECT_EQ(core_.last_parameters_.size(), 1u);
  }

  inference::ModelInferRequest typed;
  typed.set_model_name("identity");
  auto* in = typed.add_inputs();
  in->set_name("scores");
  in->set_datatype("FP32");
  in->add_shape(2);
  add_all(in->mutable_contents()->mutable_fp32_contents(), {0.5f, -4.f});
  grpc::ClientContext c2;
  inference::ModelInferResponse tr;
  ASSERT_TRUE(stub_->ModelInfer(&c2, typed, &tr).ok());
  ASSERT_EQ(tr.raw_output_contents_size(), 1);  // typed in, raw out (as Triton)
  EXPECT_FALSE(tr.outputs(0).has_contents());
  float out[2];
  ASSERT_EQ(tr.raw_output_contents(0).size(), sizeof(out));
  std::memcpy(out, tr.raw_output_contents(0).data(), sizeof(out));
  EXPECT_EQ(out[0], 0.5f);
  EXPECT_EQ(out[1], -4.f);
}

TEST_F(GrpcFrontendTest, InferErrorsHaveTheirCodes) {
  inference::ModelInferRequest req = raw_request("bad", {1, 2});
  req.set_model_name("nope");
  inference::ModelInferResponse resp;
  grpc::ClientContext c1;
  grpc::Status s = stub_->ModelInfer(&c1, req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(s.error_message(), "unknown model 'nope'");

  req = raw_request("bad", {1, 2});
  req.mutable_inputs(0)->set_shape(1, 3);  // 16 bytes for 3 INT64s
  grpc::ClientContext c2;
  s = stub_->ModelInfer(&c2, req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("needs 24"), std::string::npos) << s.error_message();

  grpc::ClientContext c3;
  inference::SystemSharedMemoryRegisterResponse shm;
  s = stub_->SystemSharedMemoryRegister(&c3, {}, &shm);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNIMPLEMENTED);
  EXPECT_NE(s.error_message().find("shared memory"), std::string::npos);
}

TEST_F(GrpcFrontendTest, OversizedRequestIsResourceExhausted) {
  GrpcOptions options;
  options.max_message_bytes = 1 << 20;
  start(options);
  inference::ModelInferRequest req =
      raw_request("big", std::vector<int64_t>(size_t{256} * 1024, 7));
  inference::ModelInferResponse resp;
  grpc::ClientContext c1;
  grpc::Status s = stub_->ModelInfer(&c1, req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
  // A request under the limit still works on the same server.
  grpc::ClientContext c2;
  EXPECT_TRUE(stub_->ModelInfer(&c2, raw_request("small", {1}), &resp).ok());
}

TEST_F(GrpcFrontendTest, StreamAnswersEachRequestInOrderOfCompletion) {
  grpc::ClientContext ctx;
  auto stream = stub_->ModelStreamInfer(&ctx);
  inference::ModelInferRequest slow = raw_request("slow", {1, 2, 3});
  (*slow.mutable_parameters())["delay_ms"].set_int64_param(300);
  (*slow.mutable_parameters())["triton_enable_empty_final_response"].set_bool_param(true);
  inference::ModelInferRequest missing = raw_request("missing", {4});
  missing.set_model_name("nope");
  inference::ModelInferRequest malformed = raw_request("malformed", {5});
  malformed.mutable_inputs(0)->set_datatype("FLOAT");
  ASSERT_TRUE(stream->Write(slow));
  ASSERT_TRUE(stream->Write(missing));
  ASSERT_TRUE(stream->Write(malformed));
  for (int i = 0; i < 5; ++i) {
    inference::ModelInferRequest fast = raw_request("fast" + std::to_string(i), {10 + i});
    ASSERT_TRUE(stream->Write(fast));
  }
  ASSERT_TRUE(stream->WritesDone());

  std::vector<inference::ModelStreamInferResponse> answers;
  inference::ModelStreamInferResponse answer;
  while (stream->Read(&answer)) answers.push_back(answer);
  grpc::Status s = stream->Finish();
  ASSERT_TRUE(s.ok()) << s.error_message();

  ASSERT_EQ(answers.size(), 8u);
  std::map<std::string, inference::ModelStreamInferResponse> by_id;
  for (const auto& a : answers) by_id[a.infer_response().id()] = a;
  ASSERT_EQ(by_id.size(), 8u);
  // The slow request was sent first but completes last.
  EXPECT_EQ(answers.back().infer_response().id(), "slow");
  EXPECT_EQ(raw_int64(by_id["slow"].infer_response().raw_output_contents(0)),
            (std::vector<int64_t>{1, 2, 3}));
  EXPECT_TRUE(by_id["slow"].infer_response().parameters().at("triton_final_response").bool_param());
  EXPECT_EQ(by_id["missing"].error_message(), "unknown model 'nope'");
  EXPECT_NE(by_id["malformed"].error_message().find("unknown datatype 'FLOAT'"), std::string::npos);
  for (int i = 0; i < 5; ++i) {
    const auto& a = by_id["fast" + std::to_string(i)];
    EXPECT_EQ(a.error_message(), "");
    EXPECT_EQ(raw_int64(a.infer_response().raw_output_contents(0)), (std::vector<int64_t>{10 + i}));
    EXPECT_EQ(a.infer_response().parameters().count("triton_final_response"), 0u);
  }
}

TEST_F(GrpcFrontendTest, StopWaitsForStreamsAndPortIsExclusive) {
  GrpcOptions same;
  same.address = "127.0.0.1";
  same.port = frontend_->port();
  auto second = GrpcFrontend::start(core_, same);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), StatusCode::kUnavailable);

  // A client that never half-closes: stop() cancels the stream after the grace period and
  // returns once its in-flight request has been answered.
  GrpcOptions quick;
  quick.shutdown_grace = 100ms;
  start(quick);
  grpc::ClientContext ctx;
  auto stream = stub_->ModelStreamInfer(&ctx);
  inference::ModelInferRequest req = raw_request("pending", {1});
  (*req.mutable_parameters())["delay_ms"].set_int64_param(500);
  ASSERT_TRUE(stream->Write(req));
  std::this_thread::sleep_for(50ms);
  const auto t0 = std::chrono::steady_clock::now();
  frontend_->stop();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 3s);
  frontend_->stop();  // idempotent
  inference::ModelStreamInferResponse answer;
  while (stream->Read(&answer)) {
  }
  EXPECT_FALSE(stream->Finish().ok());
}

TEST_F(GrpcFrontendTest, ManyClientsOnSeveralQueuesEachGetTheirOwnAnswer) {
  GrpcOptions three;
  three.completion_queues = 3;
  start(three);
  constexpr int kThreads = 8, kCalls = 40;
  std::atomic<int> good{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < kThreads; ++t) {
    clients.emplace_back([&, t] {
      for (int i = 0; i < kCalls; ++i) {
        const int64_t v = t * 1000 + i;
        inference::ModelInferRequest req = raw_request(std::to_string(v), {v, -v});
        // Every third call is answered from the core's own thread, the rest on the queue's.
        if (i % 3 == 0) (*req.mutable_parameters())["delay_ms"].set_int64_param(1);
        grpc::ClientContext ctx;
        inference::ModelInferResponse resp;
        if (!stub_->ModelInfer(&ctx, req, &resp).ok()) continue;
        if (resp.id() == req.id() && resp.raw_output_contents_size() == 1 &&
            raw_int64(resp.raw_output_contents(0)) == std::vector<int64_t>{v, -v}) {
          ++good;
        }
      }
    });
  }
  for (std::thread& c : clients) c.join();
  EXPECT_EQ(good.load(), kThreads * kCalls);
}

TEST_F(GrpcFrontendTest, QueueCountIsValidated) {
  GrpcOptions bad;
  bad.address = "127.0.0.1";
  bad.port = 0;
  bad.completion_queues = -1;
  auto f = GrpcFrontend::start(core_, bad);
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(f.status().message().find("completion queue"), std::string::npos);
}

TEST_F(GrpcFrontendTest, StopLetsAnInFlightCallFinishWithinTheGrace) {
  GrpcOptions patient;
  patient.shutdown_grace = 3s;
  start(patient);
  inference::ModelInferRequest req = raw_request("slow", {7});
  (*req.mutable_parameters())["delay_ms"].set_int64_param(200);
  grpc::Status status;
  inference::ModelInferResponse resp;
  std::thread client([&] {
    grpc::ClientContext ctx;
    status = stub_->ModelInfer(&ctx, req, &resp);
  });
  std::this_thread::sleep_for(50ms);
  frontend_->stop();
  client.join();
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(resp.id(), "slow");
  EXPECT_EQ(raw_int64(resp.raw_output_contents(0)), std::vector<int64_t>{7});
}

// Clients that go away while the core still works: a unary call past its deadline and a
// stream cancelled with requests in flight. The late answers go to dead calls; the server
// keeps serving and stops cleanly.
TEST_F(GrpcFrontendTest, ClientsThatLeaveEarlyDoNotHurtTheServer) {
  {
    inference::ModelInferRequest req = raw_request("late", {1});
    (*req.mutable_parameters())["delay_ms"].set_int64_param(200);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 20ms);
    inference::ModelInferResponse resp;
    EXPECT_EQ(stub_->ModelInfer(&ctx, req, &resp).error_code(),
              grpc::StatusCode::DEADLINE_EXCEEDED);
  }
  {
    grpc::ClientContext ctx;
    auto stream = stub_->ModelStreamInfer(&ctx);
    for (int i = 0; i < 5; ++i) {
      inference::ModelInferRequest req = raw_request("s" + std::to_string(i), {i});
      (*req.mutable_parameters())["delay_ms"].set_int64_param(100);
      ASSERT_TRUE(stream->Write(req));
    }
    ctx.TryCancel();
    inference::ModelStreamInferResponse answer;
    while (stream->Read(&answer)) {
    }
    EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::CANCELLED);
  }
  // The server still answers while the abandoned work finishes in the core.
  inference::ModelInferRequest req = raw_request("after", {42});
  grpc::ClientContext ctx;
  inference::ModelInferResponse resp;
  ASSERT_TRUE(stub_->ModelInfer(&ctx, req, &resp).ok());
  EXPECT_EQ(raw_int64(resp.raw_output_contents(0)), std::vector<int64_t>{42});
  std::this_thread::sleep_for(300ms);  // every late answer has reached its dead call
  const auto t0 = std::chrono::steady_clock::now();
  frontend_->stop();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 2s);
}

}  // namespace
}  // namespace kiln::server
