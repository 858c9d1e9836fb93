// `kiln serve`: the Triton-compatible server. Flags are named as tritonserver's where the
// meaning is the same. Wiring only: the server core and the frontends are libraries.
#include <execinfo.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "commands.h"
#include "core/log.h"
#include "kiln/server.h"
#include "server/grpc/grpc_frontend.h"
#include "server/http/http_frontend.h"

namespace kiln::cli {
namespace {

// Async-signal-safe: backtrace() is warmed up first (it may allocate on its first call), then
// the handler writes the frames with backtrace_symbols_fd and re-raises with the default action.
void crash_handler(int sig) {
  void* frames[64];
  const int n = backtrace(frames, 64);
  const char msg[] = "kiln serve: fatal signal, stack:\n";
  (void)!write(STDERR_FILENO, msg, sizeof msg - 1);
  backtrace_symbols_fd(frames, n, STDERR_FILENO);
  signal(sig, SIG_DFL);
  raise(sig);
}

void install_crash_reporter() {
  void* warm[1];
  (void)backtrace(warm, 1);
  for (int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT}) signal(sig, crash_handler);
}

struct ServeArgs {
  std::vector<std::string> repositories;
  std::string control_mode = "none";
  std::vector<std::string> load_models;
  int poll_secs = 15;
  bool strict_readiness = true;
  bool exit_on_error = true;
  int log_verbose = 0;
  bool allow_http = true, allow_grpc = true, allow_metrics = true;
  std::string http_address = "0.0.0.0", grpc_address = "0.0.0.0";
  int http_port = 8000, grpc_port = 8001, metrics_port = 8002;
  int http_threads = 8;
  int grpc_queues = 0;
  size_t http_max_input_size = size_t{64} << 20;
  int exit_timeout_secs = 30;
  int threads_per_instance = 0;
};

int serve(const ServeArgs& a) {
  core::set_log_verbose(a.log_verbose);
  // A crash leaves its stack on stderr (the server log) before the default action (core dump)
  // runs: enough to find the frame when it happens under load in CI and nowhere else.
  install_crash_reporter();
  // Block the shutdown signals before any thread starts, so only sigwait() below sees them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  server::ServerOptions options;
  options.model_repositories = a.repositories;
  options.model_control_mode = a.control_mode == "poll"       ? server::ModelControlMode::kPoll
                               : a.control_mode == "explicit" ? server::ModelControlMode::kExplicit
                                                              : server::ModelControlMode::kNone;
  options.startup_models = a.load_models;
  options.repository_poll_secs = a.poll_secs;
  options.strict_readiness = a.strict_readiness;
  options.exit_on_error = a.exit_on_error;
  options.threads_per_instance = a.threads_per_instance;
  auto server = server::Server::create(options);
  if (!server.ok()) {
    core::log(core::LogLevel::kError, "server failed to start",
              {{"error", server.status().to_string()}});
    return 1;
  }
  std::unique_ptr<server::http::HttpFrontend> http;
  std::unique_ptr<server::http::MetricsFrontend> metrics;
  std::unique_ptr<server::GrpcFrontend> grpc;
  auto fail = [&](const Status& s, const char* what) {
    core::log(core::LogLevel::kError, what, {{"error", s.to_string()}});
    (*server)->shutdown(std::chrono::milliseconds(0));
    return 1;
  };
  if (a.allow_http) {
    server::http::HttpOptions o;
    o.address = a.http_address;
    o.port = a.http_port;
    o.thread_count = a.http_threads;
    o.max_body_bytes = a.http_max_input_size;
    auto f = server::http::HttpFrontend::start(**server, o);
    if (!f.ok()) return fail(f.status(), "HTTP frontend failed to start");
    http = std::move(f).value();
  }
  if (a.allow_grpc) {
    server::GrpcOptions o;
    o.address = a.grpc_address;
    o.port = a.grpc_port;
    o.completion_queues = a.grpc_queues;
    auto f = server::GrpcFrontend::start(**server, o);
    if (!f.ok()) return fail(f.status(), "gRPC frontend failed to start");
    grpc = std::move(f).value();
  }
  if (a.allow_metrics) {
    server::http::MetricsOptions o;
    o.address = a.http_address;
    o.port = a.metrics_port;
    auto f = server::http::MetricsFrontend::start(**server, o);
    if (!f.ok()) return fail(f.status(), "metrics frontend failed to start");
    metrics = std::move(f).value();
  }
  core::log(core::LogLevel::kInfo, "kiln serve ready",
            {{"http", http ? std::to_string(http->port()) : "off"},
             {"grpc", grpc ? std::to_string(grpc->port()) : "off"},
             {"metrics", metrics ? std::to_string(metrics->port()) : "off"}});

  int sig = 0;
  sigwait(&signals, &sig);
  core::log(core::LogLevel::kInfo, "shutting down",
            {{"signal", sig == SIGINT ? "SIGINT" : "SIGTERM"}});
  // New requests are refused from here on; in-flight ones finish and their answers still go out
  // through the frontends, which stop only afterwards.
  const bool drained = (*server)->shutdown(std::chrono::seconds(a.exit_timeout_secs));
  if (grpc) grpc->stop();
  if (http) http->stop();
  if (metrics) metrics->stop();
  core::log(drained ? core::LogLevel::kInfo : core::LogLevel::kWarning,
            drained ? "stopped; every request answered"
                    : "stopped after --exit-timeout-secs with requests still running");
  // Everything is answered and every frontend stopped: leave without running destructors.
  // gRPC 1.51's ~Server can block ~10 s in its own shutdown after large messages
  // (grpc/grpc#41050), which would make SIGTERM look hung to an orchestrator.
  std::fflush(stderr);
  std::_Exit(0);
}

}  // namespace

void register_serve(CLI::App& app, Runner* runner) {
  auto args = std::make_shared<ServeArgs>();
  CLI::App* cmd = app.add_subcommand("serve", "Serve a Triton model repository (KServe v2)");
  cmd->add_option("--model-repository,--model-store", args->repositories,
                  "Model repository folder (repeatable)")
      ->required();
  cmd->add_option("--model-control-mode", args->control_mode, "none, poll or explicit")
      ->check(CLI::IsMember({"none", "poll", "explicit"}));
  cmd->add_option("--load-model", args->load_models,
                  "Model to load at start in explicit mode (repeatable; * = all)");
  cmd->add_option("--repository-poll-secs", args->poll_secs, "Poll interval (poll mode)")
      ->check(CLI::Range(1, 86400));
  cmd->add_option("--strict-readiness", args->strict_readiness,
                  "Ready only when every model is ready");
  cmd->add_option("--exit-on-error", args->exit_on_error, "Exit when a model fails to load");
  cmd->add_option("--log-verbose", args->log_verbose, "0 = quiet, 1 = each request");
  cmd->add_option("--allow-http", args->allow_http, "Serve HTTP/REST");
  cmd->add_option("--allow-grpc", args->allow_grpc, "Serve gRPC");
  cmd->add_option("--allow-metrics", args->allow_metrics, "Serve Prometheus metrics");
  cmd->add_option("--http-address", args->http_address, "HTTP (and metrics) bind address");
  cmd->add_option("--grpc-address", args->grpc_address, "gRPC bind address");
  cmd->add_option("--http-port", args->http_port, "HTTP port (0 = any free port)");
  cmd->add_option("--grpc-port", args->grpc_port, "gRPC port (0 = any free port)");
  cmd->add_option("--metrics-port", args->metrics_port, "Metrics port (0 = any free port)");
  cmd->add_option("--http-thread-count", args->http_threads, "HTTP io threads")
      ->check(CLI::Range(1, 256));
  cmd->add_option("--grpc-completion-queues", args->grpc_queues,
                  "gRPC completion queues, one thread each (0 = one per 8 CPUs, 2 to 4)")
      ->check(CLI::Range(0, 64));
  cmd->add_option("--http-max-input-size", args->http_max_input_size,
                  "Largest HTTP request body in bytes");
  cmd->add_option("--exit-timeout-secs", args->exit_timeout_secs,
                  "How long shutdown waits for in-flight requests");
  cmd->add_option("--threads-per-instance", args->threads_per_instance,
                  "CPU threads per model instance (0 = cores / instances)");
  cmd->callback([args, runner] { *runner = [args] { return serve(*args); }; });
}

}  // namespace kiln::cli
