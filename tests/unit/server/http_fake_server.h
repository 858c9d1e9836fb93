// A test double of kiln::server::Server for the HTTP frontend tests: one model, "identity", that
// echoes its inputs as outputs, answering from a worker thread of its own (like the real core,
// never on the caller's thread unless the request is rejected up front). Requests can be held
// back to test clients that leave, and frontends that stop, before the answer arrives.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "kiln/server.h"

namespace kiln::server::testing {

class FakeServer : public Server {
 public:
  FakeServer() : worker_([this] { run(); }) {}
  ~FakeServer() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    worker_.join();
  }

  std::atomic<bool> live_flag{true};
  std::atomic<bool> ready_flag{true};
  std::atomic<int> infer_calls{0};
  std::atomic<int> answered{0};

  /// Holds (true) or releases (false) answers to infer requests.
  void hold(bool on) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      hold_ = on;
    }
    cv_.notify_all();
  }
  /// Requests waiting for an answer.
  size_t queued() {
    std::lock_guard<std::mutex> lock(mu_);
    return queue_.size();
  }
  /// The last request that reached infer().
  InferRequest last_request() {
    std::lock_guard<std::mutex> lock(mu_);
    return last_;
  }
  /// What the last load_model() call received.
  std::pair<std::string, std::string> last_load() {
    std::lock_guard<std::mutex> lock(mu_);
    return last_load_;
  }
  std::string last_unload() {
    std::lock_guard<std::mutex> lock(mu_);
    return last_unload_;
  }

  bool live() const override { return live_flag; }
  bool ready() const override { return ready_flag; }
  ServerMetadata metadata() const override {
    return {"kiln-fake", "9.9.9", {"binary_tensor_data", "statistics", "model_repository"}};
  }
  Result<bool> model_ready(std::string_view name, std::string_view) const override {
    if (name == "identity") return true;
    if (name == "cold") return false;
    return not_found("unknown model '" + std::string(name) + "'");
  }
  Result<ModelMetadata> model_metadata(std::string_view name, std::string_view) const override {
    if (name != "identity") return not_found("unknown model '" + std::string(name) + "'");
    return ModelMetadata{"identity",
                         {"1"},
                         "kiln_fake",
                         {{"x", DataType::kFp32, {-1, 4}}},
                         {{"x", DataType::kFp32, {-1, 4}}}};
  }
  Result<std::string> model_config(std::string_view name, std::string_view,
                                   ConfigFormat) const override {
    if (name != "identity") return not_found("unknown model '" + std::string(name) + "'");
    return std::string(R"({"name":"identity","max_batch_size":8})");
  }

  void infer(InferRequest request, InferCallback done) override {
    ++infer_calls;
    if (request.model_name != "identity") {  // rejected before queueing: caller's thread
      done(not_found("unknown model '" + request.model_name + "'"));
      return;
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      last_ = request;
      queue_.emplace_back(std::move(request), std::move(done));
    }
    cv_.notify_all();
  }

  Result<std::vector<ModelStatistics>> statistics(std::string_view name,
                                                  std::string_view) const override {
    if (!name.empty() && name != "identity") {
      return not_found("unknown model '" + std::string(name) + "'");
    }
    ModelStatistics s;
    s.name = "identity";
    s.version = "1";
    s.inference_count = 5;
    s.execution_count = 2;
    s.success = {5, 1000};
    return std::vector<ModelStatistics>{s};
  }
  std::vector<RepositoryEntry> repository_index(bool ready_only) const override {
    std::vector<RepositoryEntry> all = {{"identity", "1", "READY", ""},
                                        {"cold", "", "UNAVAILABLE", "not loaded"}};
    if (ready_only) all.pop_back();
    return all;
  }
  Status load_model(std::string_view name, const LoadOptions& options) override {
    if (name == "nope") return not_found("no model 'nope' in the repository");
    std::lock_guard<std::mutex> lock(mu_);
    last_load_ = {std::string(name), options.config_json};
    return ok_status();
  }
  Status unload_model(std::string_view name) override {
    std::lock_guard<std::mutex> lock(mu_);
    last_unload_ = std::string(name);
    return ok_status();
  }
  std::string metrics_text() const override {
    return "# TYPE kiln_fake_requests counter\nkiln_fake_requests 3\n";
  }
  bool shutdown(std::chrono::milliseconds) override { return true; }

 private:
  static Result<InferResponse> echo(const InferRequest& r) {
    InferResponse out;
    out.model_name = r.model_name;
    out.model_version = "1";
    out.id = r.id;
    if (r.outputs.empty()) {
      out.outputs = r.inputs;  // shares the inputs' bytes (and their owner)
      return out;
    }
    for (const std::string& name : r.outputs) {
      bool found = false;
      for (const Tensor& t : r.inputs) {
        if (t.name == name) {
          out.outputs.push_back(t);
          found = true;
        }
      }
      if (!found) return invalid_argument("unknown output '" + name + "'");
    }
    return out;
  }

  void run() {
    std::unique_lock<std::mutex> lock(mu_);
    while (true) {
      cv_.wait(lock, [this] { return stopping_ || (!hold_ && !queue_.empty()); });
      if (queue_.empty() || (hold_ && !stopping_)) {
        if (stopping_) return;
        continue;
      }
      auto [request, done] = std::move(queue_.front());
      queue_.pop_front();
      const bool stopping = stopping_;
      lock.unlock();
      // Exactly one callback per request, also for requests still held at destruction.
      done(stopping ? Result<InferResponse>(unavailable("server stopping")) : echo(request));
      ++answered;
      lock.lock();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::pair<InferRequest, InferCallback>> queue_;
  InferRequest last_;
  std::pair<std::string, std::string> last_load_;
  std::string last_unload_;
  bool hold_ = false;
  bool stopping_ = false;
  std::thread worker_;  // last: starts after every other member is ready
};

}  // namespace kiln::server::testing
