// Server core: the identity backend's answers and request validation, dynamic batching, queue
// policies, priorities and preserve_ordering, through the public Server API.
#include <algorithm>
#include <map>
#include <mutex>

#include "core_test_util.h"

namespace kiln::server::testing {
namespace {

using namespace std::chrono_literals;

std::map<uint64_t, uint64_t> batch_sizes(const ModelStatistics& s) {
  std::map<uint64_t, uint64_t> out;  // batch size -> executions of that size
  for (const auto& b : s.batch_stats) out[b.batch_size] = b.compute_infer.count;
  return out;
}

ModelStatistics stats_of(const Server& server, const std::string& name) {
  auto s = server.statistics(name, "1");
  EXPECT_TRUE(s.ok()) << s.status().to_string();
  if (!s.ok() || s->empty()) return {};
  return (*s)[0];
}

class IdentityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    repo_.add_model("ident", identity_config("ident"));
    repo_.add_model("text",
                    "backend: \"identity\"\nmax_batch_size: 4\n"
                    "input [ { name: \"INPUT1\" data_type: TYPE_STRING dims: [ -1 ] } ]\n");
    server_ = make_server(repo_);
    ASSERT_NE(server_, nullptr);
  }

  // The InvalidArgument message of a request that must fail validation.
  std::string rejection(InferRequest r) {
    auto result = infer_sync(*server_, std::move(r));
    EXPECT_FALSE(result.ok());
    if (result.ok()) return "";
    EXPECT_EQ(result.status().code(), StatusCode::kInvalidArgument) << result.status().message();
    return result.status().message();
  }

  TempRepo repo_;
  std::unique_ptr<Server> server_;
};

TEST_F(IdentityTest, OutputEqualsInput) {
  InferRequest req;
  req.model_name = "ident";
  req.id = "req-7";
  const std::vector<float> values = {1.5f, -2.0f, 3.25f, 0.0f, 7.0f, 8.0f, -9.5f, 1e-3f};
  req.inputs.push_back(fp32("INPUT0", {2, 4}, values));
  auto r = infer_sync(*server_, req);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->model_name, "ident");
  EXPECT_EQ(r->model_version, "1");
  EXPECT_EQ(r->id, "req-7");
  ASSERT_EQ(r->outputs.size(), 1u);
  const Tensor& out = r->outputs[0];
  EXPECT_EQ(out.name, "OUTPUT0");
  EXPECT_EQ(out.datatype, DataType::kFp32);
  EXPECT_EQ(out.shape, (std::vector<int64_t>{2, 4}));
  EXPECT_EQ(floats_of(out), values);
  ModelStatistics s = stats_of(*server_, "ident");
  EXPECT_EQ(s.inference_count, 2u);  // batch rows
  EXPECT_EQ(s.execution_count, 1u);
  EXPECT_EQ(s.success.count, 1u);
}

TEST_F(IdentityTest, BytesRoundTrip) {
  InferRequest req;
  req.model_name = "text";
  req.inputs.push_back(bytes_tensor("INPUT1", {1, 3}, {"a", "", "kiln \x01\x02"}));
  auto r = infer_sync(*server_, req);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  ASSERT_EQ(r->outputs.size(), 1u);
  const Tensor& out = r->outputs[0];
  EXPECT_EQ(out.name, "OUTPUT1");
  EXPECT_EQ(out.datatype, DataType::kBytes);
  const Tensor& in = req.inputs[0];
  ASSERT_EQ(out.byte_size, in.byte_size);
  EXPECT_EQ(std::memcmp(out.data, in.data, in.byte_size), 0);
}

TEST_F(IdentityTest, ValidationErrorsNameTheProblem) {
  InferRequest base = identity_request("ident");

  InferRequest r = base;
  r.inputs[0].datatype = DataType::kInt32;
  std::string m = rejection(r);
  EXPECT_NE(m.find("INT32"), std::string::npos) << m;
  EXPECT_NE(m.find("FP32"), std::string::npos) << m;

  r = base;
  r.inputs[0] = fp32("INPUT0", {1, 5}, {1, 2, 3, 4, 5});
  m = rejection(r);
  EXPECT_NE(m.find("shape [1,5]"), std::string::npos) << m;
  EXPECT_NE(m.find("[-1,4]"), std::string::npos) << m;

  r = base;
  r.inputs[0].byte_size = 12;  // [1,4] FP32 needs 16
  m = rejection(r);
  EXPECT_NE(m.find("12 bytes"), std::string::npos) << m;

  r = base;
  r.inputs.clear();
  m = rejection(r);
  EXPECT_NE(m.find("missing required input 'INPUT0'"), std::string::npos) << m;

  r = base;
  r.inputs.push_back(fp32("EXTRA", {1, 4}, {0, 0, 0, 0}));
  m = rejection(r);
  EXPECT_NE(m.find("unexpected input 'EXTRA'"), std::string::npos) << m;

  r = base;
  r.inputs.push_back(base.inputs[0]);
  m = rejection(r);
  EXPECT_NE(m.find("given twice"), std::string::npos) << m;

  r = base;
  r.outputs = {"OUTPUT0", "NOPE"};
  m = rejection(r);
  EXPECT_NE(m.find("unknown output 'NOPE'"), std::string::npos) << m;

  r = base;
  r.inputs[0] = fp32("INPUT0", {9, 4}, std::vector<float>(36, 1.0f));
  m = rejection(r);
  EXPECT_NE(m.find("batch size 9 exceeds max_batch_size 8"), std::string::npos) << m;

  r = base;
  r.inputs[0] = fp32("INPUT0", {0, 4}, {});
  m = rejection(r);
  EXPECT_NE(m.find("batch size 0"), std::string::npos) << m;

  // BYTES: an element whose length prefix runs past the end of the tensor.
  InferRequest t;
  t.model_name = "text";
  std::vector<uint8_t> bad = {100, 0, 0, 0, 'a', 'b'};
  t.inputs.push_back(Tensor::owned("INPUT1", DataType::kBytes, {1, 1}, bad));
  m = rejection(t);
  EXPECT_NE(m.find("claims 100 bytes"), std::string::npos) << m;
  // ... and one with bytes left over after the last element.
  t.inputs[0] = Tensor::owned("INPUT1", DataType::kBytes, {1, 1}, {1, 0, 0, 0, 'a', 'z'});
  m = rejection(t);
  EXPECT_NE(m.find("left over"), std::string::npos) << m;

  // Failures are counted; nothing was executed.
  ModelStatistics s = stats_of(*server_, "ident");
  EXPECT_EQ(s.fail.count, 9u);
  EXPECT_EQ(s.execution_count, 0u);
  EXPECT_EQ(s.success.count, 0u);
}

TEST_F(IdentityTest, RequestedOutputsOnly) {
  InferRequest r = identity_request("ident", 5.0f);
  r.outputs = {"OUTPUT0"};
  auto ok = infer_sync(*server_, r);
  ASSERT_TRUE(ok.ok());
  ASSERT_EQ(ok->outputs.size(), 1u);
  EXPECT_EQ(floats_of(ok->outputs[0]), (std::vector<float>{5, 6, 7, 8}));
}

// Sends `n` identity requests at once and waits for all of them.
std::vector<Result<InferResponse>> burst(Server& server, const std::string& model, int n,
                                         std::chrono::milliseconds timeout = 10s) {
  std::vector<Pending> pending;
  for (int i = 0; i < n; ++i) {
    pending.push_back(infer_async(server, identity_request(model, 10.0f * i)));
  }
  std::vector<Result<InferResponse>> out;
  for (auto& p : pending) out.push_back(p.get(timeout));
  for (auto& p : pending) EXPECT_EQ(p.calls->load(), 1);
  return out;
}

TEST(DynamicBatching, ConcurrentRequestsShareExecutions) {
  TempRepo repo;
  repo.add_model("dyn", identity_config("dyn",
                                        "dynamic_batching { "
                                        "max_queue_delay_microseconds: 20000 }"));
  repo.add_model("plain", identity_config("plain"));
  auto server = make_server(repo);
  ASSERT_NE(server, nullptr);

  auto results = burst(*server, "dyn", 8);
  for (size_t i = 0; i < results.size(); ++i) {
    ASSERT_TRUE(results[i].ok()) << results[i].status().to_string();
    // Each request gets its own rows back, not a neighbour's.
    EXPECT_EQ(floats_of(results[i]->outputs[0])[0], 10.0f * static_cast<float>(i));
  }
  ModelStatistics s = stats_of(*server, "dyn");
  EXPECT_EQ(s.inference_count, 8u);
  EXPECT_EQ(s.success.count, 8u);
  EXPECT_LT(s.execution_count, 8u);
  const auto sizes = batch_sizes(s);
  EXPECT_TRUE(std::any_of(sizes.begin(), sizes.end(), [](auto& kv) { return kv.first > 1; }))
      << "no batch larger than 1";
  uint64_t rows = 0, executions = 0;
  for (auto [size, count] : sizes) {
    rows += size * count;
    executions += count;
  }
  EXPECT_EQ(rows, 8u);
  EXPECT_EQ(executions, s.execution_count);

  // Without dynamic_batching every request executes alone.
  results = burst(*server, "plain", 8);
  for (auto& r : results) ASSERT_TRUE(r.ok()) << r.status().to_string();
  s = stats_of(*server, "plain");
  EXPECT_EQ(s.execution_count, 8u);
  EXPECT_EQ(s.inference_count, 8u);
  EXPECT_EQ(batch_sizes(s), (std::map<uint64_t, uint64_t>{{1, 8}}));
}

TEST(DynamicBatching, PreferredBatchSizeDispatchesWithoutWaiting) {
  TempRepo repo;
  // The delay is long: only the preferred size can send a batch early.
  repo.add_model("pref", identity_config("pref",
                                         "dynamic_batching { preferred_batch_size: [4] "
                                         "max_queue_delay_microseconds: 300000 }"));
  auto server = make_server(repo);
  ASSERT_NE(server, nullptr);
  const auto start = std::chrono::steady_clock::now();
  auto results = burst(*server, "pref", 4);
  const auto elapsed = std::chrono::steady_clock::now() - start;
  for (auto& r : results) ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_LT(elapsed, 250ms);
  EXPECT_EQ(batch_sizes(stats_of(*server, "pref")), (std::map<uint64_t, uint64_t>{{4, 1}}));

  // Six at once: a batch of the preferred 4 at once, the other 2 after the delay.
  results = burst(*server, "pref", 6);
  for (auto& r : results) ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(batch_sizes(stats_of(*server, "pref")), (std::map<uint64_t, uint64_t>{{2, 1}, {4, 2}}));
}

TEST(DynamicBatching, AnyFilledPreferredSizeGoesAtOnce) {
  TempRepo repo;
  // Triton's rule: a batch that exactly fills a preferred size (not only the largest one) is
  // sent at once; once the delay has run out, everything pending goes, preferred size or not.
  repo.add_model("pref28", identity_config("pref28",
                                           "dynamic_batching { "
                                           "preferred_batch_size: [2, 8] "
                                           "max_queue_delay_microseconds: 400000 }"));
  repo.add_model("pref2", identity_config("pref2",
                                          "dynamic_batching { "
                                          "preferred_batch_size: [2, 8] "
                                          "max_queue_delay_microseconds: 50000 }"));
  auto server = make_server(repo);
  ASSERT_NE(server, nullptr);
  const auto start = std::chrono::steady_clock::now();
  for (auto& r : burst(*server, "pref28", 2)) ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 300ms);
  EXPECT_EQ(batch_sizes(stats_of(*server, "pref28")), (std::map<uint64_t, uint64_t>{{2, 1}}));

  // Two requests of 3 rows fill neither preferred size exactly: after the delay both go
  // together (not a batch cut down to the preferred 2).
  std::vector<Pending> pending;
  for (int i = 0; i < 2; ++i) {
    InferRequest r = identity_request("pref2");
    r.inputs[0] = fp32("INPUT0", {3, 4}, std::vector<float>(12, static_cast<float>(i)));
    pending.push_back(infer_async(*server, std::move(r)));
  }
  for (auto& p : pending) ASSERT_TRUE(p.get().ok());
  EXPECT_EQ(batch_sizes(stats_of(*server, "pref2")), (std::map<uint64_t, uint64_t>{{6, 1}}));
}

TEST(QueuePolicy, MaxQueueSizeRejects) {
  TempRepo repo;
  repo.add_model("q1", identity_config("q1",
                                       "dynamic_batching { "
                                       "max_queue_delay_microseconds: 300000 "
                                       "default_queue_policy { max_queue_size: 1 } }"));
  auto server = make_server(repo);
  ASSERT_NE(server, nullptr);
  auto results = burst(*server, "q1", 3);
  ASSERT_TRUE(results[0].ok()) << results[0].status().to_string();
  for (int i = 1; i < 3; ++i) {
    ASSERT_FALSE(results[i].ok());
    EXPECT_EQ(results[i].status().code(), StatusCode::kUnavailable);
    EXPECT_NE(results[i].status().message().find("queue"), std::string::npos)
        << results[i].status().message();
  }
  ModelStatistics s = stats_of(*server, "q1");
  EXPECT_EQ(s.success.count, 1u);
  EXPECT_EQ(s.fail.count, 2u);
  const std::string metrics = server->metrics_text();
  EXPECT_NE(metrics.find("nv_inference_request_failure{model=\"q1\",version=\"1\",reason="
                         "\"REJECTED\"} 2"),
            std::string::npos)
      << metrics;
}

TEST(QueuePolicy, TimeoutRejects) {
  TempRepo repo;
  repo.add_model("tmo", identity_config("tmo",
                                        "dynamic_batching { "
                                        "max_queue_delay_microseconds: 200000 "
                                        "default_queue_policy { timeout_action: REJECT "
                                        "default_timeout_microseconds: 1000 } }"));
  repo.add_model("ovr", identity_config("ovr",
                                        "dynamic_batching { "
                                        "max_queue_delay_microseconds: 200000 "
                                        "default_queue_policy { "
                                        "allow_timeout_override: true } }"));
  auto server = make_server(repo);
  ASSERT_NE(server, nullptr);
  for (auto& r : burst(*server, "tmo", 2)) {
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
    EXPECT_NE(r.status().message().find("timeout"), std::string::npos) << r.status().message();
  }
  ModelStatistics s = stats_of(*server, "tmo");
  EXPECT_EQ(s.fail.count, 2u);
  EXPECT_EQ(s.execution_count, 0u);

  // A request's own timeout applies where the policy allows overriding it.
  InferRequest short_lived = identity_request("ovr");
  short_lived.timeout_us = 1000;
  auto r = infer_sync(*server, short_lived);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  r = infer_sync(*server, identity_request("ovr"));  // no timeout: waits out the delay
  EXPECT_TRUE(r.ok()) << r.status().to_string();
}

TEST(QueuePolicy, HigherPriorityServedFirst) {
  TempRepo repo;
  repo.add_model("prio", identity_config("prio",
                                         "dynamic_batching { "
                                         "max_queue_delay_microseconds: 150000 "
                                         "priority_levels: 2 default_priority_level: 2 }"));
  auto server = make_server(repo);
  ASSERT_NE(server, nullptr);
  std::mutex mu;
  std::vector<std::string> order;
  std::vector<Pending> pending;
  auto send = [&](const std::string& id, uint32_t priority) {
    InferRequest r = identity_request("prio", 0, id);
    r.priority = priority;
    Pending p;
    server->infer(std::move(r), [&mu, &order, p](Result<InferResponse> res) {
      {
        std::lock_guard lock(mu);
        order.push_back(res.ok() ? res->id : "error: " + res.status().message());
      }
      p.promise->set_value(std::move(res));
    });
    pending.push_back(p);
  };
  send("low-a", 2);
  send("low-b", 0);  // 0 = the default level, 2
  send("high", 1);
  for (auto& p : pending) ASSERT_TRUE(p.get().ok());
  std::lock_guard lock(mu);
  EXPECT_EQ(order, (std::vector<std::string>{"high", "low-a", "low-b"}));

  // As in Triton, a priority outside [1, priority_levels] means the default level.
  InferRequest out_of_range = identity_request("prio");
  out_of_range.priority = 3;
  auto r = infer_sync(*server, out_of_range);
  EXPECT_TRUE(r.ok()) << r.status().to_string();
}

TEST(IdentityModels, WithoutBatchingShapesMatchDimsExactly) {
  TempRepo repo;
  repo.add_model("nb",
                 "backend: \"identity\"\n"
                 "input [ { name: \"INPUT0\" data_type: TYPE_INT64 dims: [ 2, -1 ] } ]\n");
  auto server = make_server(repo);
  ASSERT_NE(server, nullptr);
  auto meta = server->model_metadata("nb", "");
  ASSERT_TRUE(meta.ok());
  EXPECT_EQ(meta->inputs[0].shape, (std::vector<int64_t>{2, -1}));  // no batch dimension
  InferRequest r;
  r.model_name = "nb";
  r.inputs.push_back(int64s("INPUT0", {2, 3}, {1, 2, 3, 4, 5, 6}));
  auto ok = infer_sync(*server, r);
  ASSERT_TRUE(ok.ok()) << ok.status().to_string();
  EXPECT_EQ(ok->outputs[0].shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(ok->outputs[0].datatype, DataType::kInt64);
  r.inputs[0] = int64s("INPUT0", {1, 2, 3}, {1, 2, 3, 4, 5, 6});
  auto bad = infer_sync(*server, r);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("model expects [2,-1]"), std::string::npos)
      << bad.status().message();
}

TEST(IdentityModels, WarmupRunsAtLoadAndBadWarmupFailsIt) {
  TempRepo repo;
  const std::string warmup =
      "model_warmup [ { name: \"w\" batch_size: 2 count: 3 inputs { key: \"INPUT0\" "
      "value: { data_type: TYPE_FP32 dims: [ DIMS ] random_data: true } } } ]\n";
  auto with_dims = [&](const std::string& dims) {
    std::string w = warmup;
    w.replace(w.find("DIMS"), 4, dims);
    return w;
  };
  repo.add_model("warm", identity_config("warm", with_dims("4")));
  repo.add_model("cold", identity_config("cold", with_dims("5")));
  auto server = make_server(repo, ModelControlMode::kNone, /*exit_on_error=*/false);
  ASSERT_NE(server, nullptr);
  auto ready = server->model_ready("warm", "1");
  ASSERT_TRUE(ready.ok());
  EXPECT_TRUE(*ready);
  // Warm-up executions are not client statistics.
  EXPECT_EQ(stats_of(*server, "warm").execution_count, 0u);
  for (const auto& e : server->repository_index(false)) {
    if (e.name != "cold") continue;
    EXPECT_EQ(e.state, "UNAVAILABLE");
    EXPECT_NE(e.reason.find("model_warmup"), std::string::npos) << e.reason;
  }
}

TEST(QueuePolicy, DelayedRequestsStillExecute) {
  TempRepo repo;
  repo.add_model("dly", identity_config("dly",
                                        "dynamic_batching { "
                                        "max_queue_delay_microseconds: 50000 "
                                        "default_queue_policy { timeout_action: DELAY "
                                        "default_timeout_microseconds: 1000 } }"));
  auto server = make_server(repo);
  ASSERT_NE(server, nullptr);
  auto results = burst(*server, "dly", 3);
  for (size_t i = 0; i < results.size(); ++i) {
    ASSERT_TRUE(results[i].ok()) << results[i].status().to_string();
    EXPECT_EQ(floats_of(results[i]->outputs[0])[0], 10.0f * static_cast<float>(i));
  }
  EXPECT_EQ(stats_of(*server, "dly").inference_count, 3u);
}

TEST(DynamicBatching, ConcurrentClientsGetTheirOwnRows) {
  TempRepo repo;
  repo.add_model("conc", identity_config("conc",
                                         "instance_group [ { count: 2 kind: KIND_CPU } ]\n"
                                         "dynamic_batching { "
                                         "max_queue_delay_microseconds: 500 }"));
  auto server = make_server(repo);
  ASSERT_NE(server, nullptr);
  constexpr int kThreads = 4, kPerThread = 50;
  std::atomic<int> wrong{0}, failed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::vector<Pending> pending;
      for (int i = 0; i < kPerThread; ++i) {
        const float base = static_cast<float>(t * 1000 + i * 4);
        InferRequest r =
            identity_request("conc", base, std::to_string(t) + "/" + std::to_string(i));
        if (i % 3 == 0) r.inputs[0] = fp32("INPUT0", {2, 4}, {base, 1, 2, 3, base, 5, 6, 7});
        pending.push_back(infer_async(*server, std::move(r)));
      }
      for (int i = 0; i < kPerThread; ++i) {
        auto res = pending[i].get();
        if (!res.ok()) {
          ++failed;
          continue;
        }
        const auto v = floats_of(res->outputs[0]);
        const float base = static_cast<float>(t * 1000 + i * 4);
        const bool two = i % 3 == 0;
        if (res->id != std::to_string(t) + "/" + std::to_string(i) || v.empty() || v[0] != base ||
            v.size() != (two ? 8u : 4u) || (two && v[4] != base)) {
          ++wrong;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(wrong.load(), 0);
  const ModelStatistics s = stats_of(*server, "conc");
  EXPECT_EQ(s.success.count, uint64_t{kThreads * kPerThread});
  // 17 of every 50 requests carry 2 rows.
  EXPECT_EQ(s.inference_count, uint64_t{kThreads * (kPerThread + 17)});
  uint64_t rows = 0;
  for (const auto& b : s.batch_stats) {
    EXPECT_LE(b.batch_size, 8u);
    rows += b.batch_size * b.compute_infer.count;
  }
  EXPECT_EQ(rows, s.inference_count);
}

}  // namespace
}  // namespace kiln::server::testing
