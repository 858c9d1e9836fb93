// The scheduler interface: how queued requests reach a model's instances. The dynamic batcher
// is one implementation; a sequence batcher or an ensemble scheduler would be others.
#pragma once

#include <functional>

#include "kiln/status.h"
#include "server/backend.h"
#include "server/request.h"

namespace kiln::server {

/// Receives each request once it has an answer (response set), with the compute times of the
/// execution that produced it (zero when it never ran). Called without scheduler locks held.
using CompletionFn = std::function<void(RequestPtr, const ExecutionTimes&)>;

/// Told about every execution: how many batch rows it ran and how long it took.
using ExecutionFn = std::function<void(int64_t rows, const ExecutionTimes&)>;

/// Thread-safe.
class Scheduler {
 public:
  virtual ~Scheduler() = default;
  /// Takes the request into the queue. On rejection (queue full, stopping) returns the error
  /// and leaves `request` with the caller.
  virtual Status enqueue(RequestPtr& request) = 0;
  /// Requests queued or executing.
  virtual int64_t in_flight() const = 0;
  /// Executes everything queued, then stops the instance threads. Idempotent.
  virtual void stop() = 0;
};

}  // namespace kiln::server
