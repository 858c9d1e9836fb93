// Helpers for the server core tests: temporary model repositories, tensors and a blocking
// infer().
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "kiln/server.h"

namespace kiln::server::testing {

namespace fs = std::filesystem;

/// The tiny random checkpoints of the golden tests.
inline std::string tiny_model(const std::string& name) {
  return std::string(KILN_SOURCE_DIR) + "/tests/golden/models/tiny/" + name;
}

inline void write_text(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream f(path, std::ios::binary);
  f << text;
}

/// A WordPiece vocabulary for the tiny BERT checkpoints (vocab_size 512): the special tokens,
/// a few words and every lower-case letter, so any lower-case ASCII text tokenizes.
inline std::string tiny_vocab() {
  std::string v = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n";
  for (const char* w : {"the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "hello",
                        "world", "kiln", "serves", "models", "a", "short", "text"}) {
    v += std::string(w) + "\n";
  }
  for (char c = 'a'; c <= 'z'; ++c) v += std::string(1, c) + "\n" + "##" + std::string(1, c) + "\n";
  return v;
}

/// A model repository in a fresh temporary folder, removed with the object.
class TempRepo {
 public:
  TempRepo() {
    std::string tmpl = (fs::temp_directory_path() / "kiln_core_XXXXXX").string();
    char* made = ::mkdtemp(tmpl.data());
    EXPECT_NE(made, nullptr);
    root_ = tmpl;
  }
  ~TempRepo() {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }
  TempRepo(const TempRepo&) = delete;
  TempRepo& operator=(const TempRepo&) = delete;

  const fs::path& root() const { return root_; }
  std::string path() const { return root_.string(); }

  /// <repo>/<name>/config.pbtxt (when `config` is non-empty) and empty version folders.
  fs::path add_model(const std::string& name, const std::string& config,
                     const std::vector<int>& versions = {1}) {
    const fs::path dir = root_ / name;
    fs::create_directories(dir);
    if (!config.empty()) write_text(dir / "config.pbtxt", config);
    for (int v : versions) fs::create_directories(dir / std::to_string(v));
    return dir;
  }

  /// An encoder model: each version folder links the tiny checkpoint's config.json and
  /// model.safetensors and gets a vocab.txt (so TEXT inputs work).
  fs::path add_encoder(const std::string& name, const std::string& tiny, const std::string& config,
                       const std::vector<int>& versions = {1}, bool with_vocab = true) {
    const fs::path dir = add_model(name, config, versions);
    for (int v : versions) link_checkpoint(tiny, dir / std::to_string(v), with_vocab);
    return dir;
  }

  static void link_checkpoint(const std::string& tiny, const fs::path& to, bool with_vocab) {
    fs::create_directories(to);
    for (const char* f : {"config.json", "model.safetensors"}) {
      fs::create_symlink(fs::path(tiny_model(tiny)) / f, to / f);
    }
    if (with_vocab) write_text(to / "vocab.txt", tiny_vocab());
  }

 private:
  fs::path root_;
};

/// A server over one repository; fails the test (and returns null) when creation fails.
inline std::unique_ptr<Server> make_server(const TempRepo& repo,
                                           ModelControlMode mode = ModelControlMode::kNone,
                                           bool exit_on_error = true) {
  ServerOptions options;
  options.model_repositories = {repo.path()};
  options.model_control_mode = mode;
  options.exit_on_error = exit_on_error;
  options.threads_per_instance = 1;
  auto server = Server::create(options);
  EXPECT_TRUE(server.ok()) << server.status().to_string();
  if (!server.ok()) return nullptr;
  return std::move(server).value();
}

/// A little-endian FP32 tensor.
inline Tensor fp32(const std::string& name, std::vector<int64_t> shape,
                   const std::vector<float>& values) {
  std::vector<uint8_t> bytes(values.size() * 4);
  std::memcpy(bytes.data(), values.data(), bytes.size());
  return Tensor::owned(name, DataType::kFp32, std::move(shape), std::move(bytes));
}

inline Tensor int64s(const std::string& name, std::vector<int64_t> shape,
                     const std::vector<int64_t>& values) {
  std::vector<uint8_t> bytes(values.size() * 8);
  std::memcpy(bytes.data(), values.data(), bytes.size());
  return Tensor::owned(name, DataType::kInt64, std::move(shape), std::move(bytes));
}

/// A BYTES tensor in Triton's layout (4-byte little-endian length, then the bytes).
inline Tensor bytes_tensor(const std::string& name, std::vector<int64_t> shape,
                           const std::vector<std::string>& elements) {
  std::vector<uint8_t> bytes;
  for (const auto& e : elements) {
    const uint32_t n = static_cast<uint32_t>(e.size());
    for (int i = 0; i < 4; ++i) bytes.push_back(static_cast<uint8_t>(n >> (8 * i)));
    bytes.insert(bytes.end(), e.begin(), e.end());
  }
  return Tensor::owned(name, DataType::kBytes, std::move(shape), std::move(bytes));
}

inline std::vector<float> floats_of(const Tensor& t) {
  std::vector<float> v(t.byte_size / 4);
  std::memcpy(v.data(), t.data, v.size() * 4);
  return v;
}

inline const Tensor* output(const InferResponse& r, const std::string& name) {
  for (const Tensor& t : r.outputs) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

/// An async infer whose answer can be awaited; counts its callback's calls.
struct Pending {
  std::shared_ptr<std::promise<Result<InferResponse>>> promise =
      std::make_shared<std::promise<Result<InferResponse>>>();
  std::shared_future<Result<InferResponse>> future = promise->get_future().share();
  std::shared_ptr<std::atomic<int>> calls = std::make_shared<std::atomic<int>>(0);

  Result<InferResponse> get(std::chrono::milliseconds timeout = std::chrono::seconds(10)) const {
    if (future.wait_for(timeout) != std::future_status::ready) {
      return internal_error("test: no answer within the timeout");
    }
    return future.get();
  }
};

/// Starts an infer; the callback fulfils the returned Pending.
inline Pending infer_async(Server& server, InferRequest request) {
  Pending p;
  server.infer(std::move(request), [promise = p.promise, calls = p.calls](Result<InferResponse> r) {
    if (calls->fetch_add(1) == 0) promise->set_value(std::move(r));
  });
  return p;
}

inline Result<InferResponse> infer_sync(Server& server, InferRequest request) {
  return infer_async(server, std::move(request)).get();
}

/// A request for `model` with one FP32 [1, 4] input INPUT0.
inline InferRequest identity_request(const std::string& model, float base = 0.0f,
                                     const std::string& id = "") {
  InferRequest r;
  r.model_name = model;
  r.id = id;
  r.inputs.push_back(fp32("INPUT0", {1, 4}, {base, base + 1, base + 2, base + 3}));
  return r;
}

/// The identity model of most tests: INPUT0 FP32 [4], batching up to 8, plus `extra` config.
inline std::string identity_config(const std::string& name, const std::string& extra = "") {
  return "name: \"" + name + "\"\nbackend: \"identity\"\nmax_batch_size: 8\n" +
         "input [ { name: \"INPUT0\" data_type: TYPE_FP32 dims: [ 4 ] } ]\n" +
         "output [ { name: \"OUTPUT0\" data_type: TYPE_FP32 dims: [ 4 ] } ]\n" + extra;
}

inline const ModelStatistics* find_stats(const std::vector<ModelStatistics>& all,
                                         const std::string& name) {
  for (const auto& s : all) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

/// Polls `pred` every 20 ms until it holds or `timeout` passes.
template <typename Pred>
bool wait_until(Pred pred, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return pred();
}

}  // namespace kiln::server::testing
