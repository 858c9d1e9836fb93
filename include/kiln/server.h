// The server core: the one API that every frontend (HTTP, gRPC, an embedding application)
// talks to. It owns the model repository, the loaded models, their schedulers and statistics.
//
// Thread-safety: every Server method may be called from any thread at any time, concurrently.
// infer() never blocks on model execution; its callback runs exactly once, on a server thread
// or (for errors found before queueing) on the calling thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "kiln/status.h"

namespace kiln::server {

/// KServe v2 tensor datatypes.
enum class DataType {
  kInvalid,
  kBool,
  kUint8,
  kUint16,
  kUint32,
  kUint64,
  kInt8,
  kInt16,
  kInt32,
  kInt64,
  kFp16,
  kBf16,
  kFp32,
  kFp64,
  kBytes,
};

/// The protocol name of a datatype, e.g. "FP32".
std::string_view datatype_name(DataType type);
/// Parses a protocol name ("FP32", "BYTES"); kInvalid when unknown.
DataType datatype_from_name(std::string_view name);
/// Bytes per element; 0 for BYTES (variable size).
size_t datatype_size(DataType type);

/// A tensor: name, datatype, shape and its row-major contents. The bytes are either owned
/// (`owner` holds them) or a view into a frontend's buffer that `owner` keeps alive. BYTES
/// tensors use Triton's binary layout: each element is a 4-byte little-endian length followed by
/// that many bytes.
struct Tensor {
  std::string name;
  DataType datatype = DataType::kInvalid;
  std::vector<int64_t> shape;
  const uint8_t* data = nullptr;
  size_t byte_size = 0;
  std::shared_ptr<const void> owner;

  /// A tensor that owns `bytes`.
  static Tensor owned(std::string name, DataType type, std::vector<int64_t> shape,
                      std::vector<uint8_t> bytes);
  /// Product of the shape (1 for a scalar shape {}); -1 when a dimension is negative.
  int64_t element_count() const;
};

/// A request or response parameter value (KServe v2 "parameters").
using Parameter = std::variant<bool, int64_t, double, std::string>;
using Parameters = std::map<std::string, Parameter, std::less<>>;

/// One inference request, as every frontend builds it.
struct InferRequest {
  std::string model_name;
  std::string model_version;  ///< "" = the highest ready version
  std::string id;             ///< echoed in the response
  std::vector<Tensor> inputs;
  std::vector<std::string> outputs;  ///< requested output names; empty = all outputs
  uint32_t priority = 0;             ///< 0 = the model's default priority level
  uint64_t timeout_us = 0;           ///< queue timeout; 0 = the model's default
  Parameters parameters;             ///< other (non-reserved) request parameters
};

/// The answer to one InferRequest.
struct InferResponse {
  std::string model_name;
  std::string model_version;
  std::string id;
  std::vector<Tensor> outputs;
  Parameters parameters;
};

/// Called exactly once per request with the response or the error that ended it.
using InferCallback = std::function<void(Result<InferResponse>)>;

/// Name, datatype and shape of a model input or output (-1 marks a variable dimension).
struct TensorMetadata {
  std::string name;
  DataType datatype = DataType::kInvalid;
  std::vector<int64_t> shape;
};

/// GET /v2/models/{m}: what a client needs to call the model.
struct ModelMetadata {
  std::string name;
  std::vector<std::string> versions;
  std::string platform;
  std::vector<TensorMetadata> inputs;
  std::vector<TensorMetadata> outputs;
};

/// GET /v2.
struct ServerMetadata {
  std::string name;
  std::string version;
  std::vector<std::string> extensions;
};

/// One row of the repository index.
struct RepositoryEntry {
  std::string name;
  std::string version;  ///< empty for a model that has never been loaded
  std::string state;    ///< READY, UNAVAILABLE, LOADING, UNLOADING
  std::string reason;
};

/// A count and the total nanoseconds it took (Triton's StatisticDuration).
struct Duration {
  uint64_t count = 0;
  uint64_t ns = 0;
};

/// Statistics of executions that ran `batch_size` requests' worth of rows at once.
struct BatchStatistics {
  uint64_t batch_size = 0;
  Duration compute_input;
  Duration compute_infer;
  Duration compute_output;
};

/// Triton's per model-version statistics, every field perf_analyzer reads.
struct ModelStatistics {
  std::string name;
  std::string version;
  uint64_t last_inference_ms = 0;  ///< milliseconds since the epoch
  uint64_t inference_count = 0;    ///< batch rows inferred
  uint64_t execution_count = 0;    ///< model executions (one per formed batch)
  Duration success;
  Duration fail;
  Duration queue;
  Duration compute_input;
  Duration compute_infer;
  Duration compute_output;
  Duration cache_hit;
  Duration cache_miss;
  std::vector<BatchStatistics> batch_stats;
};

/// How the set of loaded models is controlled (tritonserver --model-control-mode).
enum class ModelControlMode { kNone, kPoll, kExplicit };

/// Everything Server::create needs.
struct ServerOptions {
  std::vector<std::string> model_repositories;
  ModelControlMode model_control_mode = ModelControlMode::kNone;
  /// Models loaded at start in explicit mode ("*" = all).
  std::vector<std::string> startup_models;
  int repository_poll_secs = 15;
  /// Ready only when every model loaded (true) or as soon as the server runs (false).
  bool strict_readiness = true;
  /// Fail create() when a model fails to load.
  bool exit_on_error = true;
  /// CPU threads each model instance may use per execution; 0 = cores / instances.
  int threads_per_instance = 0;
};

/// Load-time overrides from the repository load API.
struct LoadOptions {
  /// A complete model configuration as JSON (Triton's "config" load parameter), replacing
  /// config.pbtxt; empty = use the repository's file.
  std::string config_json;
};

/// Serialization of a model configuration.
enum class ConfigFormat { kJson, kProtoBinary };

/// The server core. See the header comment for the thread-safety contract.
class Server {
 public:
  virtual ~Server() = default;

  /// Scans the repositories and loads the models the control mode says to load.
  static Result<std::unique_ptr<Server>> create(const ServerOptions& options);

  /// True until shutdown starts.
  virtual bool live() const = 0;
  /// Live and (with strict readiness) every loaded model ready.
  virtual bool ready() const = 0;
  /// Name, version and supported protocol extensions.
  virtual ServerMetadata metadata() const = 0;

  /// Whether the model version can serve requests; NotFound for an unknown model.
  virtual Result<bool> model_ready(std::string_view name, std::string_view version) const = 0;
  /// Inputs and outputs of a ready model version.
  virtual Result<ModelMetadata> model_metadata(std::string_view name,
                                               std::string_view version) const = 0;
  /// The effective (auto-completed) configuration of a ready model version.
  virtual Result<std::string> model_config(std::string_view name, std::string_view version,
                                           ConfigFormat format) const = 0;

  /// Validates and queues a request; `done` receives the response or the error.
  virtual void infer(InferRequest request, InferCallback done) = 0;

  /// Statistics of one model version, all versions of a model (empty version) or all models
  /// (empty name).
  virtual Result<std::vector<ModelStatistics>> statistics(std::string_view name,
                                                          std::string_view version) const = 0;

  /// Every model in the repositories (or only the ready ones) with its state.
  virtual std::vector<RepositoryEntry> repository_index(bool ready_only) const = 0;
  /// Loads or reloads a model (explicit mode only). In-flight requests of an old version finish
  /// on it.
  virtual Status load_model(std::string_view name, const LoadOptions& options) = 0;
  /// Unloads a model (explicit mode only) once its in-flight requests have finished.
  virtual Status unload_model(std::string_view name) = 0;

  /// Prometheus text exposition of all metrics.
  virtual std::string metrics_text() const = 0;

  /// Stops accepting requests (infer() answers UNAVAILABLE), waits up to `timeout` for in-flight
  /// requests to finish and unloads every model. Returns false when requests were still running.
  virtual bool shutdown(std::chrono::milliseconds timeout) = 0;
};

}  // namespace kiln::server
