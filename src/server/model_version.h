// One loaded version of a model: its effective configuration, backend, scheduler and
// statistics. Thread-safe; held by shared_ptr so an unload or reload never pulls a version out
// from under a request that already found it.
#pragma once

#include <memory>
#include <string>

#include "kiln/server.h"
#include "model_config.pb.h"
#include "server/backend.h"
#include "server/scheduler.h"
#include "server/stats.h"

namespace kiln::server {

class ModelVersion {
 public:
  /// Creates the backend and its instances, warms them up and starts the scheduler.
  /// `config` is the model's configuration (auto-completed here).
  static Result<std::shared_ptr<ModelVersion>> load(const std::string& name, int64_t version,
                                                    const std::string& version_path,
                                                    inference::ModelConfig config,
                                                    int threads_per_instance);
  ~ModelVersion();

  const std::string& name() const { return name_; }
  int64_t version() const { return version_; }
  const std::string& version_string() const { return version_string_; }
  /// The effective configuration (auto-completed, name set).
  const inference::ModelConfig& config() const { return config_; }
  /// Inputs and outputs as the metadata endpoint shows them.
  ModelMetadata metadata() const;

  /// Prepares and queues a request; `done` runs exactly once.
  void infer(InferRequest request, InferCallback done, Clock::time_point arrival);

  /// Requests queued or executing.
  int64_t in_flight() const { return scheduler_->in_flight(); }
  /// Finishes everything queued and stops the instance threads.
  void stop() { scheduler_->stop(); }
  const ModelStats& stats() const { return stats_; }

 private:
  ModelVersion(std::string name, int64_t version, inference::ModelConfig config);
  Status warm_up(std::vector<std::unique_ptr<BackendInstance>>& instances);
  void complete(RequestPtr request, const ExecutionTimes& times);

  const std::string name_;
  const int64_t version_;
  const std::string version_string_;
  inference::ModelConfig config_;
  std::unique_ptr<ModelBackend> backend_;
  std::unique_ptr<Scheduler> scheduler_;
  ModelStats stats_;
};

}  // namespace kiln::server
