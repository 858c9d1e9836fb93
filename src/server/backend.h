// A model backend: what turns a model version folder into something that executes batches.
// Backends are a small interface plus one registration table (backend_registry.cc).
#pragma once

#include <memory>
#include <span>
#include <string>

#include "kiln/status.h"
#include "model_config.pb.h"
#include "server/request.h"

namespace kiln::server {

/// Times of one execution, in nanoseconds (Triton's compute_input / infer / output split).
struct ExecutionTimes {
  uint64_t input_ns = 0;
  uint64_t infer_ns = 0;
  uint64_t output_ns = 0;
};

/// One execution context of a model. Used by one scheduler thread at a time.
class BackendInstance {
 public:
  virtual ~BackendInstance() = default;
  /// Executes a batch: sets every request's `response` (a per-request error fails only that
  /// request).
  virtual void execute(std::span<PendingRequest* const> batch, ExecutionTimes* times) = 0;
  /// Whether execute() may run on the thread that submitted the request (a frontend thread)
  /// when this instance is idle and nothing is queued, saving the hand-over to the instance's
  /// own thread. True only for instances whose host work is light and not tied to a thread:
  /// not for CPU compute, whose OpenMP team belongs to the thread that runs it.
  virtual bool runs_inline() const { return false; }
};

/// A loaded model version. Thread-safe: prepare() runs on frontend threads concurrently.
class ModelBackend {
 public:
  virtual ~ModelBackend() = default;
  /// Validates a request's inputs against the configuration, decodes them into
  /// `request->prepared` and sets `rows` and `tokens`. Runs before queueing, so a bad request
  /// never reaches (or fails) a batch.
  virtual Status prepare(PendingRequest* request) const = 0;
  /// A new execution context (instance `index` of the instance group).
  virtual Result<std::unique_ptr<BackendInstance>> create_instance(int index) = 0;
  /// Extra batch budget: the most tokens one execution may take (0 = unlimited).
  virtual int64_t max_batch_tokens() const { return 0; }
};

/// What a backend factory receives.
struct BackendContext {
  std::string model_name;
  int64_t version = 0;
  std::string version_path;  ///< <repository>/<model>/<version>
  int num_threads = 0;       ///< CPU threads per execution (0 = all cores)
};

/// Creates the backend the configuration names (backend/platform, or guessed from the files)
/// and auto-completes missing inputs/outputs and max_batch_size in `config`.
Result<std::unique_ptr<ModelBackend>> create_backend(const BackendContext& context,
                                                     inference::ModelConfig* config);

}  // namespace kiln::server
