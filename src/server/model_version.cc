#include "server/model_version.h"

#include <random>
#include <thread>

#include "server/dynamic_batcher.h"
#include "server/model_config.h"
#include "server/tensor_checks.h"

namespace kiln::server {
namespace {

uint64_t ns_between(Clock::time_point a, Clock::time_point b) {
  return b > a ? static_cast<uint64_t>(
                     std::chrono::duration_cast<std::chrono::nanoseconds>(b - a).count())
               : 0;
}

QueuePolicy queue_policy(const inference::ModelQueuePolicy& p) {
  QueuePolicy q;
  q.reject_on_timeout = p.timeout_action() == inference::ModelQueuePolicy::REJECT;
  q.default_timeout_us = p.default_timeout_microseconds();
  q.allow_timeout_override = p.allow_timeout_override();
  q.max_queue_size = static_cast<uint64_t>(std::max<int32_t>(0, p.max_queue_size()));
  return q;
}

BatcherOptions batcher_options(const inference::ModelConfig& c, int64_t max_batch_tokens) {
  BatcherOptions o;
  o.max_batch_rows = std::max<int64_t>(1, c.max_batch_size());
  o.max_batch_tokens = max_batch_tokens;
  o.policies.push_back(QueuePolicy{});
  if (!c.has_dynamic_batching()) return o;
  const auto& db = c.dynamic_batching();
  o.dynamic = true;
  o.preferred_batch_sizes.assign(db.preferred_batch_size().begin(),
                                 db.preferred_batch_size().end());
  o.max_queue_delay_us = db.max_queue_delay_microseconds();
  o.preserve_ordering = db.preserve_ordering();
  o.priority_levels = std::max<uint32_t>(1, static_cast<uint32_t>(db.priority_levels()));
  o.default_priority_level =
      db.default_priority_level() > 0 ? static_cast<uint32_t>(db.default_priority_level()) : 1;
  o.policies.clear();
  for (uint32_t level = 1; level <= o.priority_levels; ++level) {
    auto it = db.priority_queue_policy().find(level);
    o.policies.push_back(queue_policy(
        it != db.priority_queue_policy().end() ? it->second : db.default_queue_policy()));
  }
  return o;
}

// The requests model_warmup describes (or one short text for text models without any).
Result<std::vector<InferRequest>> warmup_requests(const inference::ModelConfig& c) {
  std::vector<InferRequest> out;
  const bool batching = c.max_batch_size() > 0;
  std::mt19937 rng(7);
  for (const auto& w : c.model_warmup()) {
    InferRequest r;
    r.model_name = c.name();
    for (const auto& [name, spec] : w.inputs()) {
      Tensor t;
      t.name = name;
      t.datatype = from_config_type(spec.data_type());
      if (batching) t.shape.push_back(std::max<int64_t>(1, w.batch_size()));
      for (int64_t d : spec.dims()) t.shape.push_back(d);
      const int64_t n = t.element_count();
      if (n < 0) {
        return invalid_argument("model_warmup '" + w.name() + "' input '" + name +
                                "' has a negative dimension");
      }
      std::vector<uint8_t> bytes;
      if (t.datatype == DataType::kBytes) {
        bytes = join_bytes(std::vector<std::string>(static_cast<size_t>(n),
                                                    spec.has_random_data() ? "warm up kiln" : ""));
      } else {
        bytes.resize(static_cast<size_t>(n) * datatype_size(t.datatype), 0);
        if (spec.has_random_data()) {
          for (auto& b : bytes) b = static_cast<uint8_t>(rng() & 0x3f);
        }
      }
      r.inputs.push_back(Tensor::owned(name, t.datatype, t.shape, std::move(bytes)));
    }
    for (uint32_t i = 0; i < std::max<uint32_t>(1, w.count()); ++i) out.push_back(r);
  }
  if (c.model_warmup().empty()) {
    for (const auto& in : c.input()) {
      if (in.name() != "TEXT") continue;
      InferRequest r;
      r.model_name = c.name();
      std::vector<int64_t> shape = {1};
      if (batching) shape.insert(shape.begin(), 1);
      r.inputs.push_back(
          Tensor::owned("TEXT", DataType::kBytes, shape, join_bytes({"kiln warms up."})));
      out.push_back(std::move(r));
    }
  }
  return out;
}

}  // namespace

ModelVersion::ModelVersion(std::string name, int64_t version, inference::ModelConfig config)
    : name_(std::move(name)),
      version_(version),
      version_string_(std::to_string(version)),
      config_(std::move(config)) {}

ModelVersion::~ModelVersion() {
  if (scheduler_) scheduler_->stop();
}

Result<std::shared_ptr<ModelVersion>> ModelVersion::load(const std::string& name, int64_t version,
                                                         const std::string& version_path,
                                                         inference::ModelConfig config,
                                                         int threads_per_instance) {
  if (!config.name().empty() && config.name() != name) {
    return invalid_argument("config.pbtxt names the model '" + config.name() +
                            "' but its folder is '" + name + "'");
  }
  config.set_name(name);
  KILN_RETURN_IF_ERROR(check_supported_fields(config));
  KILN_RETURN_IF_ERROR(validate_model_config(config));
  int instances = 0;
  for (const auto& g : config.instance_group()) instances += g.count() > 0 ? g.count() : 1;
  if (instances == 0) instances = 1;
  int threads = threads_per_instance;
  if (threads <= 0) {
    threads = std::max(1, static_cast<int>(std::thread::hardware_concurrency()) / instances);
  }
  std::shared_ptr<ModelVersion> mv(new ModelVersion(name, version, std::move(config)));
  BackendContext context{name, version, version_path, threads};
  KILN_ASSIGN_OR_RETURN(mv->backend_, create_backend(context, &mv->config_));
  KILN_RETURN_IF_ERROR(validate_model_config(mv->config_));
  std::vector<std::unique_ptr<BackendInstance>> list;
  for (int i = 0; i < instances; ++i) {
    KILN_ASSIGN_OR_RETURN(auto instance, mv->backend_->create_instance(i));
    list.push_back(std::move(instance));
  }
  KILN_RETURN_IF_ERROR(mv->warm_up(list));
  ModelVersion* raw = mv.get();
  mv->scheduler_ = std::make_unique<DynamicBatcher>(
      batcher_options(mv->config_, mv->backend_->max_batch_tokens()), std::move(list),
      [raw](RequestPtr r, const ExecutionTimes& t) { raw->complete(std::move(r), t); },
      [raw](int64_t rows, const ExecutionTimes& t) { raw->stats_.record_execution(rows, t); });
  return mv;
}

Status ModelVersion::warm_up(std::vector<std::unique_ptr<BackendInstance>>& instances) {
  KILN_ASSIGN_OR_RETURN(auto requests, warmup_requests(config_));
  for (auto& instance : instances) {
    for (const InferRequest& req : requests) {
      PendingRequest p;
      p.request = req;
      Status s = backend_->prepare(&p);
      if (!s.ok()) return s.with_context("model_warmup of '" + name_ + "'");
      PendingRequest* batch[] = {&p};
      ExecutionTimes times;
      instance->execute(batch, &times);
      if (!p.response.ok()) {
        return p.response.status().with_context("model_warmup of '" + name_ + "'");
      }
    }
  }
  return ok_status();
}

ModelMetadata ModelVersion::metadata() const {
  ModelMetadata m;
  m.name = name_;
  m.versions = {version_string_};
  m.platform = config_.platform().empty() ? config_.backend() : config_.platform();
  const bool batching = config_.max_batch_size() > 0;
  auto shape = [&](const auto& dims) {
    std::vector<int64_t> s;
    if (batching) s.push_back(-1);
    s.insert(s.end(), dims.begin(), dims.end());
    return s;
  };
  for (const auto& in : config_.input()) {
    m.inputs.push_back({in.name(), from_config_type(in.data_type()), shape(in.dims())});
  }
  for (const auto& out : config_.output()) {
    m.outputs.push_back({out.name(), from_config_type(out.data_type()), shape(out.dims())});
  }
  return m;
}

void ModelVersion::infer(InferRequest request, InferCallback done, Clock::time_point arrival) {
  auto r = std::make_unique<PendingRequest>();
  r->request = std::move(request);
  r->done = std::move(done);
  r->arrival = arrival;
  stats_.pending.fetch_add(1);
  Status s = backend_->prepare(r.get());
  FailureReason reason = FailureReason::kOther;
  if (s.ok()) {
    s = scheduler_->enqueue(r);
    reason = FailureReason::kRejected;
  }
  if (!s.ok()) {
    stats_.record_failure(reason, ns_between(arrival, Clock::now()));
    stats_.pending.fetch_sub(1);
    r->done(s);
  }
}

void ModelVersion::complete(RequestPtr r, const ExecutionTimes& times) {
  const Clock::time_point now = Clock::now();
  if (r->response.ok()) {
    r->response->model_name = name_;
    r->response->model_version = version_string_;
    stats_.record_success(ns_between(r->arrival, now), ns_between(r->enqueued, r->dispatched),
                          times);
  } else {
    const bool ran = r->dispatched != Clock::time_point();
    stats_.record_failure(ran ? FailureReason::kBackend : FailureReason::kRejected,
                          ns_between(r->arrival, now));
  }
  stats_.pending.fetch_sub(1);
  InferCallback done = std::move(r->done);
  Result<InferResponse> response = std::move(r->response);
  r.reset();  // free the inputs before answering
  done(std::move(response));
}

}  // namespace kiln::server
