// Server core: explicit load / unload (also with requests in flight), control modes, shutdown,
// Prometheus metrics and repository polling, through the public Server API.
#include <dlfcn.h>

#include <atomic>
#include <map>
#include <sstream>
#include <thread>

#include "core_test_util.h"

namespace kiln::server::testing {
namespace {

using namespace std::chrono_literals;

// Identity with a long batching delay: requests stay in flight for ~200 ms.
std::string slow_identity(const std::string& name) {
  return identity_config(name, "dynamic_batching { max_queue_delay_microseconds: 200000 }");
}

std::unique_ptr<Server> explicit_server(const TempRepo& repo) {
  return make_server(repo, ModelControlMode::kExplicit);
}

TEST(Lifecycle, ExplicitLoadUnloadReload) {
  TempRepo repo;
  repo.add_model("ident", identity_config("ident"));
  auto server = explicit_server(repo);
  ASSERT_NE(server, nullptr);

  // Nothing is loaded at start in explicit mode, but the model is known.
  auto ready = server->model_ready("ident", "");
  ASSERT_TRUE(ready.ok()) << ready.status().to_string();
  EXPECT_FALSE(*ready);
  auto index = server->repository_index(false);
  ASSERT_EQ(index.size(), 1u);
  EXPECT_EQ(index[0].name, "ident");
  EXPECT_EQ(index[0].version, "");
  EXPECT_TRUE(server->repository_index(true).empty());

  ASSERT_TRUE(server->load_model("ident", {}).ok());
  auto r = infer_sync(*server, identity_request("ident", 1.0f));
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(floats_of(r->outputs[0]), (std::vector<float>{1, 2, 3, 4}));

  ASSERT_TRUE(server->unload_model("ident").ok());
  r = infer_sync(*server, identity_request("ident"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  index = server->repository_index(false);
  ASSERT_EQ(index.size(), 1u);
  EXPECT_EQ(index[0].state, "UNAVAILABLE");
  EXPECT_EQ(index[0].reason, "unloaded");

  ASSERT_TRUE(server->load_model("ident", {}).ok());
  r = infer_sync(*server, identity_request("ident", 2.0f));
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(floats_of(r->outputs[0]), (std::vector<float>{2, 3, 4, 5}));

  Status missing = server->load_model("nosuch", {});
  EXPECT_EQ(missing.code(), StatusCode::kNotFound);
  EXPECT_EQ(server->unload_model("nosuch").code(), StatusCode::kNotFound);
}

TEST(Lifecycle, LoadWithConfigOverride) {
  TempRepo repo;
  repo.add_model("ident", identity_config("ident"));
  auto server = explicit_server(repo);
  ASSERT_NE(server, nullptr);
  LoadOptions options;
  options.config_json = R"({"name":"ident","backend":"identity","max_batch_size":2,
      "input":[{"name":"INPUT0","data_type":"TYPE_FP32","dims":[4]}]})";
  ASSERT_TRUE(server->load_model("ident", options).ok());
  InferRequest r = identity_request("ident");
  r.inputs[0] = fp32("INPUT0", {3, 4}, std::vector<float>(12, 0.0f));
  auto res = infer_sync(*server, r);
  ASSERT_FALSE(res.ok());
  EXPECT_NE(res.status().message().find("max_batch_size 2"), std::string::npos)
      << res.status().message();
}

// Reloads and unloads from several threads while requests run: versions retire while the
// reaper is stopping earlier ones (its bookkeeping once kept an iterator across that unlock).
TEST(Lifecycle, ConcurrentReloadsAndUnloads) {
  TempRepo repo;
  const std::vector<std::string> names = {"a", "b", "c", "d"};
  for (const auto& n : names) repo.add_model(n, identity_config(n));
  auto server = explicit_server(repo);
  ASSERT_NE(server, nullptr);
  std::atomic<bool> done{false};
  std::atomic<int> answered{0};
  std::thread traffic([&] {
    while (!done) {
      for (const auto& n : names) {
        auto r = infer_sync(*server, identity_request(n, 1.0f));
        if (r.ok()) ++answered;  // unloaded models answer UNAVAILABLE; nothing may crash
      }
    }
  });
  std::vector<std::thread> control;
  for (int t = 0; t < 3; ++t) {
    control.emplace_back([&, t] {
      for (int i = 0; i < 60; ++i) {
        const std::string& n = names[static_cast<size_t>((i + t) % names.size())];
        if ((i + t) % 3 == 2) {
          (void)server->unload_model(n);
        } else {
          EXPECT_TRUE(server->load_model(n, {}).ok());
        }
      }
    });
  }
  for (auto& th : control) th.join();
  done = true;
  traffic.join();
  for (const auto& n : names) ASSERT_TRUE(server->load_model(n, {}).ok());
  auto r = infer_sync(*server, identity_request("a", 2.0f));
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(floats_of(r->outputs[0]), (std::vector<float>{2, 3, 4, 5}));
  EXPECT_GT(answered.load(), 0);
}

TEST(Lifecycle, UnloadWaitsForInFlightRequests) {
  TempRepo repo;
  repo.add_model("slow", slow_identity("slow"));
  auto server = explicit_server(repo);
  ASSERT_NE(server, nullptr);
  ASSERT_TRUE(server->load_model("slow", {}).ok());
  std::vector<Pending> pending;
  for (int i = 0; i < 5; ++i) {
    pending.push_back(infer_async(*server, identity_request("slow", 10.0f * i)));
  }
  ASSERT_TRUE(server->unload_model("slow").ok());
  auto after = infer_sync(*server, identity_request("slow"));
  ASSERT_FALSE(after.ok());
  EXPECT_TRUE(after.status().code() == StatusCode::kUnavailable ||
              after.status().code() == StatusCode::kNotFound)
      << after.status().to_string();
  for (int i = 0; i < 5; ++i) {
    auto r = pending[i].get();
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    EXPECT_EQ(floats_of(r->outputs[0])[0], 10.0f * i);
  }
  std::this_thread::sleep_for(50ms);  // a second callback would show up here
  for (auto& p : pending) EXPECT_EQ(p.calls->load(), 1);

  // Reload while the old version may still be retiring: serves again.
  ASSERT_TRUE(server->load_model("slow", {}).ok());
  auto again = infer_sync(*server, identity_request("slow", 3.0f));
  ASSERT_TRUE(again.ok()) << again.status().to_string();
  EXPECT_EQ(floats_of(again->outputs[0])[0], 3.0f);
}

TEST(Lifecycle, NoneModeRefusesLoadAndUnload) {
  TempRepo repo;
  repo.add_model("ident", identity_config("ident"));
  auto server = make_server(repo, ModelControlMode::kNone);
  ASSERT_NE(server, nullptr);
  EXPECT_EQ(server->load_model("ident", {}).code(), StatusCode::kUnavailable);
  EXPECT_EQ(server->unload_model("ident").code(), StatusCode::kUnavailable);
  EXPECT_TRUE(infer_sync(*server, identity_request("ident")).ok());
}

TEST(Lifecycle, ShutdownDrainsInFlightRequests) {
  TempRepo repo;
  repo.add_model("slow", slow_identity("slow"));
  auto server = make_server(repo);
  ASSERT_NE(server, nullptr);
  EXPECT_TRUE(server->live());
  EXPECT_TRUE(server->ready());
  std::vector<Pending> pending;
  for (int i = 0; i < 4; ++i) pending.push_back(infer_async(*server, identity_request("slow")));
  EXPECT_TRUE(server->shutdown(5s));
  // Every request was answered by the time shutdown returned.
  for (auto& p : pending) {
    ASSERT_EQ(p.future.wait_for(0s), std::future_status::ready);
    EXPECT_TRUE(p.get().ok()) << p.get().status().to_string();
    EXPECT_EQ(p.calls->load(), 1);
  }
  EXPECT_FALSE(server->live());
  EXPECT_FALSE(server->ready());
  auto r = infer_sync(*server, identity_request("slow"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
}

TEST(Lifecycle, ShutdownTimeoutReportsUndrainedButAnswersEverything) {
  TempRepo repo;
  repo.add_model("slow", identity_config("slow",
                                         "dynamic_batching { "
                                         "max_queue_delay_microseconds: 2000000 }"));
  auto server = make_server(repo);
  ASSERT_NE(server, nullptr);
  Pending p = infer_async(*server, identity_request("slow"));
  EXPECT_FALSE(server->shutdown(20ms));  // still queued when the timeout passed
  // Stopping the scheduler executes what was queued: the request is still answered, once.
  auto r = p.get(1s);
  EXPECT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(p.calls->load(), 1);
}

TEST(Lifecycle, FailedExplicitLoadReportsAndCanBeFixed) {
  TempRepo repo;
  const fs::path dir = repo.add_model("fix", identity_config("fix", "sequence_batching {}\n"));
  auto server = explicit_server(repo);
  ASSERT_NE(server, nullptr);
  Status s = server->load_model("fix", {});
  EXPECT_EQ(s.code(), StatusCode::kUnimplemented);
  EXPECT_NE(s.message().find("sequence_batching"), std::string::npos) << s.message();
  auto index = server->repository_index(false);
  ASSERT_EQ(index.size(), 1u);
  EXPECT_EQ(index[0].state, "UNAVAILABLE");
  EXPECT_NE(index[0].reason.find("sequence_batching"), std::string::npos);
  EXPECT_FALSE(server->ready());

  write_text(dir / "config.pbtxt", identity_config("fix"));
  ASSERT_TRUE(server->load_model("fix", {}).ok());
  EXPECT_TRUE(server->ready());
  EXPECT_TRUE(infer_sync(*server, identity_request("fix")).ok());

  // A failed reload keeps the loaded version serving.
  write_text(dir / "config.pbtxt", identity_config("fix", "optimization {}\n"));
  EXPECT_FALSE(server->load_model("fix", {}).ok());
  EXPECT_TRUE(infer_sync(*server, identity_request("fix")).ok());
}

TEST(Lifecycle, StartupModelsInExplicitMode) {
  TempRepo repo;
  repo.add_model("a", identity_config("a"));
  repo.add_model("b", identity_config("b"));
  ServerOptions options;
  options.model_repositories = {repo.path()};
  options.model_control_mode = ModelControlMode::kExplicit;
  options.startup_models = {"b"};
  options.threads_per_instance = 1;
  auto server = Server::create(options);
  ASSERT_TRUE(server.ok()) << server.status().to_string();
  auto ready = (*server)->model_ready("a", "");
  ASSERT_TRUE(ready.ok());
  EXPECT_FALSE(*ready);
  ready = (*server)->model_ready("b", "");
  ASSERT_TRUE(ready.ok());
  EXPECT_TRUE(*ready);
  // Statistics: a known model that is not loaded is unavailable; an unknown one not found.
  EXPECT_EQ((*server)->statistics("a", "").status().code(), StatusCode::kUnavailable);
  EXPECT_EQ((*server)->statistics("zzz", "").status().code(), StatusCode::kNotFound);

  options.startup_models = {"nosuch"};
  auto failed = Server::create(options);
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.status().code(), StatusCode::kNotFound);
  EXPECT_NE(failed.status().message().find("'nosuch'"), std::string::npos);
}

TEST(Lifecycle, ModelInTwoRepositoriesIsAConflict) {
  TempRepo one, two;
  one.add_model("dup", identity_config("dup"));
  two.add_model("dup", identity_config("dup"));
  one.add_model("solo", identity_config("solo"));
  ServerOptions options;
  options.model_repositories = {one.path(), two.path()};
  options.threads_per_instance = 1;
  auto strict = Server::create(options);
  ASSERT_FALSE(strict.ok());
  EXPECT_NE(strict.status().message().find("'dup'"), std::string::npos);

  options.exit_on_error = false;
  auto server = Server::create(options);
  ASSERT_TRUE(server.ok());
  auto r = infer_sync(**server, identity_request("dup"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(r.status().message().find("more than one"), std::string::npos) << r.status().message();
  EXPECT_TRUE(infer_sync(**server, identity_request("solo")).ok());
  EXPECT_FALSE((*server)->ready());
}

// Lines of `text` that start with `prefix`.
int count_lines(const std::string& text, const std::string& prefix) {
  std::istringstream in(text);
  int n = 0;
  for (std::string line; std::getline(in, line);) n += line.rfind(prefix, 0) == 0;
  return n;
}

// GPU metrics come from NVML when the driver's library is there (the GPU machine), with
// Triton's families and gpu_uuid labels; without it (CI) there are none, and nothing fails.
TEST(Metrics, GpuFamiliesOnlyWithNvml) {
  TempRepo repo;
  repo.add_model("alpha", identity_config("alpha"));
  auto server = make_server(repo);
  ASSERT_NE(server, nullptr);
  const std::string m = server->metrics_text();
  void* nvml = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
  if (nvml == nullptr) {
    EXPECT_EQ(m.find("nv_gpu_"), std::string::npos) << m;
    GTEST_SKIP() << "no NVML here: no GPU metrics, as expected";
  }
  dlclose(nvml);
  for (const char* family : {"nv_gpu_utilization", "nv_gpu_memory_total_bytes",
                             "nv_gpu_memory_used_bytes", "nv_gpu_power_usage"}) {
    EXPECT_EQ(count_lines(m, std::string("# TYPE ") + family + " gauge"), 1) << family;
    EXPECT_GE(count_lines(m, std::string(family) + "{gpu_uuid=\"GPU-"), 1) << m;
  }
}

TEST(Metrics, CountsAndFamiliesDeclaredOnce) {
  TempRepo repo;
  repo.add_model("alpha", identity_config("alpha"));
  repo.add_model("beta", identity_config("beta"));
  auto server = make_server(repo);
  ASSERT_NE(server, nullptr);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(infer_sync(*server, identity_request("alpha")).ok());
  InferRequest two_rows = identity_request("beta");
  two_rows.inputs[0] = fp32("INPUT0", {2, 4}, std::vector<float>(8, 1.0f));
  ASSERT_TRUE(infer_sync(*server, two_rows).ok());
  InferRequest bad = identity_request("beta");
  bad.outputs = {"NOPE"};
  ASSERT_FALSE(infer_sync(*server, bad).ok());

  const std::string m = server->metrics_text();
  EXPECT_EQ(count_lines(m, "nv_inference_request_success{model=\"alpha\",version=\"1\"} 3"), 1)
      << m;
  EXPECT_EQ(count_lines(m, "nv_inference_request_success{model=\"beta\",version=\"1\"} 1"), 1);
  EXPECT_EQ(count_lines(m, "nv_inference_count{model=\"alpha\",version=\"1\"} 3"), 1);
  EXPECT_EQ(count_lines(m, "nv_inference_count{model=\"beta\",version=\"1\"} 2"), 1);
  EXPECT_EQ(count_lines(m, "nv_inference_exec_count{model=\"beta\",version=\"1\"} 1"), 1);
  EXPECT_EQ(count_lines(m,
                        "nv_inference_request_failure{model=\"beta\",version=\"1\","
                        "reason=\"OTHER\"} 1"),
            1);
  EXPECT_EQ(count_lines(m,
                        "kiln_request_duration_seconds_bucket{model=\"alpha\",version=\"1\","
                        "le=\"+Inf\"} 3"),
            1);
  EXPECT_EQ(count_lines(m, "kiln_request_duration_seconds_count{model=\"alpha\",version=\"1\"} 3"),
            1);
  EXPECT_EQ(count_lines(m, "kiln_request_duration_seconds_bucket{"), 2 * 25);
  EXPECT_EQ(count_lines(m, "# TYPE nv_inference_request_success counter"), 1);
  EXPECT_EQ(count_lines(m, "# TYPE kiln_request_duration_seconds histogram"), 1);
  // Every family is declared exactly once, and before its samples.
  std::map<std::string, int> types;
  std::istringstream in(m);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("# TYPE ", 0) == 0) {
      const std::string family = line.substr(7, line.find(' ', 7) - 7);
      EXPECT_EQ(++types[family], 1) << "family declared twice: " << family;
    } else if (!line.empty() && line[0] != '#') {
      const std::string name = line.substr(0, line.find_first_of("{ "));
      bool declared = types.count(name) > 0;
      for (const char* suffix : {"_bucket", "_sum", "_count"}) {
        const std::string s(suffix);
        if (name.size() > s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0) {
          declared = declared || types.count(name.substr(0, name.size() - s.size())) > 0;
        }
      }
      EXPECT_TRUE(declared) << "sample before its # TYPE line: " << line;
    }
  }
  EXPECT_GE(types.size(), 10u);
}

TEST(PollMode, AddedModelLoadsAndRemovedModelUnloads) {
  TempRepo repo;
  repo.add_model("first", identity_config("first"));
  ServerOptions options;
  options.model_repositories = {repo.path()};
  options.model_control_mode = ModelControlMode::kPoll;
  options.repository_poll_secs = 1;
  options.threads_per_instance = 1;
  auto created = Server::create(options);
  ASSERT_TRUE(created.ok()) << created.status().to_string();
  Server& server = **created;
  EXPECT_EQ(server.load_model("first", {}).code(), StatusCode::kUnavailable);

  // Build the model outside the repository and move it in whole, so a poll never sees half.
  TempRepo staging;
  staging.add_model("added", identity_config("added"));
  fs::rename(staging.root() / "added", repo.root() / "added");
  EXPECT_TRUE(wait_until(
      [&] {
        auto ready = server.model_ready("added", "");
        return ready.ok() && *ready;
      },
      5s));
  auto r = infer_sync(server, identity_request("added", 4.0f));
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(floats_of(r->outputs[0]), (std::vector<float>{4, 5, 6, 7}));

  // A changed config.pbtxt is reloaded on the next poll.
  write_text(repo.root() / "added" / "config.pbtxt",
             "name: \"added\"\nbackend: \"identity\"\nmax_batch_size: 2\n"
             "input [ { name: \"INPUT0\" data_type: TYPE_FP32 dims: [ 4 ] } ]\n");
  InferRequest three = identity_request("added");
  three.inputs[0] = fp32("INPUT0", {3, 4}, std::vector<float>(12, 0.0f));
  EXPECT_TRUE(wait_until([&] { return !infer_sync(server, three).ok(); }, 5s));
  auto rejected = infer_sync(server, three);
  ASSERT_FALSE(rejected.ok());
  EXPECT_NE(rejected.status().message().find("max_batch_size 2"), std::string::npos)
      << rejected.status().message();

  fs::remove_all(repo.root() / "added");
  EXPECT_TRUE(wait_until(
      [&] {
        auto ready = server.model_ready("added", "");
        return !ready.ok() && ready.status().code() == StatusCode::kNotFound;
      },
      5s));
  r = infer_sync(server, identity_request("added"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  // The model that stayed is untouched.
  EXPECT_TRUE(infer_sync(server, identity_request("first")).ok());
}

}  // namespace
}  // namespace kiln::server::testing
