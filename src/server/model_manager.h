// The set of loaded models and their lifecycle: load, reload, unload, repository polling.
// Thread-safe. Loads and unloads are serialized; lookups never wait for a load.
#pragma once

#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "kiln/server.h"
#include "server/model_version.h"
#include "server/repository.h"

namespace kiln::server {

class ModelManager {
 public:
  explicit ModelManager(const ServerOptions& options);
  ~ModelManager();

  /// Loads what the control mode says to load at start; the first error when exit_on_error.
  Status start();
  /// Loads (or reloads) every version the model's policy selects. Old versions keep serving
  /// the requests they already have and are unloaded when those finish.
  Status load(std::string_view name, const LoadOptions& options);
  /// Removes the model; in-flight requests finish first (in the background).
  Status unload(std::string_view name);
  /// Rescans the repositories and loads, reloads or unloads what changed (poll mode).
  void poll_once();

  /// A ready version: `version` "" = highest loaded.
  Result<std::shared_ptr<ModelVersion>> find(std::string_view name, std::string_view version) const;
  /// Every loaded version of `name` ("" = all models).
  std::vector<std::shared_ptr<ModelVersion>> loaded(std::string_view name) const;
  /// Whether the model exists in the repositories or is loaded.
  bool known(std::string_view name) const;
  std::vector<RepositoryEntry> index(bool ready_only) const;
  /// True when every model that should be loaded is.
  bool all_ready() const;

  /// Stops polling; waits (up to timeout) for in-flight requests; stops every scheduler.
  bool shutdown(std::chrono::milliseconds timeout);

 private:
  struct Entry {
    std::map<int64_t, std::shared_ptr<ModelVersion>> versions;
    std::string state = "UNAVAILABLE";
    std::string reason;
    std::string fingerprint;
  };
  Status load_locked(const ModelDirectory& dir, const LoadOptions& options);
  void retire(std::vector<std::shared_ptr<ModelVersion>> old);
  void reap_loop();
  Result<ModelDirectory> find_dir(std::string_view name) const;

  const ServerOptions options_;
  std::mutex control_mu_;  // serializes load/unload/poll
  mutable std::mutex mu_;  // guards models_
  std::map<std::string, Entry, std::less<>> models_;

  std::mutex reap_mu_;
  std::condition_variable reap_cv_;
  std::vector<std::shared_ptr<ModelVersion>> retiring_;
  bool stopping_ = false;
  std::thread reaper_;
  std::thread poller_;
};

}  // namespace kiln::server
