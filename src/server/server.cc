// Server: the core API frontends call. Wiring only: the work is in ModelManager (lifecycle),
// ModelVersion (requests) and the schedulers.
#include "kiln/server.h"

#include <atomic>

#include "core/log.h"
#include "server/gpu_metrics.h"
#include "server/model_config.h"
#include "server/model_manager.h"
#include "server/system_metrics.h"

namespace kiln::server {
namespace {

constexpr const char* kVersion = "0.1.0";

class ServerImpl final : public Server {
 public:
  explicit ServerImpl(const ServerOptions& options) : options_(options), models_(options) {}
  ~ServerImpl() override { shutdown(std::chrono::milliseconds(0)); }

  Status start() { return models_.start(); }

  bool live() const override { return live_.load(); }
  bool ready() const override {
    // Not ready from the moment shutdown starts (Triton: SERVER_EXITING), so load balancers stop
    // routing to a server that answers every new request UNAVAILABLE while it drains.
    return accepting_.load() && live_.load() && (!options_.strict_readiness || models_.all_ready());
  }

  ServerMetadata metadata() const override {
    return {"kiln",
            kVersion,
            {"binary_tensor_data", "parameters", "statistics", "model_repository",
             "model_configuration", "schedule_policy"}};
  }

  Result<bool> model_ready(std::string_view name, std::string_view version) const override {
    auto mv = models_.find(name, version);
    if (mv.ok()) return true;
    if (mv.status().code() == StatusCode::kNotFound && !models_.known(name)) return mv.status();
    return false;
  }

  Result<ModelMetadata> model_metadata(std::string_view name,
                                       std::string_view version) const override {
    KILN_ASSIGN_OR_RETURN(auto mv, models_.find(name, version));
    ModelMetadata m = mv->metadata();
    if (version.empty()) {
      m.versions.clear();
      for (const auto& v : models_.loaded(name)) m.versions.push_back(v->version_string());
    }
    return m;
  }

  Result<std::string> model_config(std::string_view name, std::string_view version,
                                   ConfigFormat format) const override {
    KILN_ASSIGN_OR_RETURN(auto mv, models_.find(name, version));
    if (format == ConfigFormat::kJson) return model_config_to_json(mv->config());
    return mv->config().SerializeAsString();
  }

  void infer(InferRequest request, InferCallback done) override {
    const Clock::time_point arrival = Clock::now();
    if (!accepting_.load()) {
      done(unavailable("server is shutting down"));
      return;
    }
    if (core::log_verbose_enabled(1)) done = logged(request, std::move(done), arrival);
    auto mv = models_.find(request.model_name, request.model_version);
    if (!mv.ok()) {
      done(mv.status());
      return;
    }
    (*mv)->infer(std::move(request), std::move(done), arrival);
  }

  Result<std::vector<ModelStatistics>> statistics(std::string_view name,
                                                  std::string_view version) const override {
    std::vector<ModelStatistics> out;
    if (!name.empty() && !version.empty()) {
      KILN_ASSIGN_OR_RETURN(auto mv, models_.find(name, version));
      out.push_back(mv->stats().snapshot(mv->name(), mv->version_string()));
      return out;
    }
    const auto versions = models_.loaded(name);
    if (!name.empty() && versions.empty()) {
      return models_.known(name)
                 ? Status(unavailable("model '" + std::string(name) + "' is not loaded"))
                 : not_found("unknown model '" + std::string(name) + "'");
    }
    for (const auto& mv : versions) {
      out.push_back(mv->stats().snapshot(mv->name(), mv->version_string()));
    }
    return out;
  }

  std::vector<RepositoryEntry> repository_index(bool ready_only) const override {
    return models_.index(ready_only);
  }

  Status load_model(std::string_view name, const LoadOptions& options) override {
    if (options_.model_control_mode != ModelControlMode::kExplicit) {
      return unavailable(
          "explicit model load / unload is not allowed if polling is enabled or "
          "model control mode is none; start with --model-control-mode=explicit");
    }
    return models_.load(name, options);
  }

  Status unload_model(std::string_view name) override {
    if (options_.model_control_mode != ModelControlMode::kExplicit) {
      return unavailable(
          "explicit model load / unload is not allowed if polling is enabled or "
          "model control mode is none; start with --model-control-mode=explicit");
    }
    return models_.unload(name);
  }

  std::string metrics_text() const override {
    MetricsText text;
    for (const auto& mv : models_.loaded("")) {
      mv->stats().write_metrics(
          "model=\"" + mv->name() + "\",version=\"" + mv->version_string() + "\"", &text);
    }
    system_.write(&text);
    gpu_.write(&text);
    return text.str();
  }

  bool shutdown(std::chrono::milliseconds timeout) override {
    accepting_.store(false);
    const bool drained = models_.shutdown(timeout);
    live_.store(false);
    return drained;
  }

 private:
  // One structured line per answered request (--log-verbose >= 1).
  static InferCallback logged(const InferRequest& request, InferCallback done,
                              Clock::time_point arrival) {
    return [done = std::move(done), model = request.model_name, id = request.id,
            arrival](Result<InferResponse> response) mutable {
      const auto us =
          std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - arrival).count();
      const std::string duration = std::to_string(us);
      const std::string version = response.ok() ? response->model_version : "";
      const std::string status = response.ok() ? "OK" : response.status().to_string();
      core::log(core::LogLevel::kVerbose, "request",
                {{"model", model},
                 {"version", version},
                 {"id", id},
                 {"status", status},
                 {"duration_us", duration}});
      done(std::move(response));
    };
  }

  const ServerOptions options_;
  ModelManager models_;
  mutable SystemMetrics system_;
  mutable GpuMetrics gpu_;
  std::atomic<bool> live_{true};
  std::atomic<bool> accepting_{true};
};

}  // namespace

Result<std::unique_ptr<Server>> Server::create(const ServerOptions& options) {
  auto server = std::make_unique<ServerImpl>(options);
  Status s = server->start();
  if (!s.ok() && options.exit_on_error) return s;
  return std::unique_ptr<Server>(std::move(server));
}

}  // namespace kiln::server
