// A request inside the server: the frontend's InferRequest plus what scheduling needs.
#pragma once

#include <any>
#include <chrono>
#include <cstdint>
#include <memory>

#include "kiln/server.h"

namespace kiln::server {

using Clock = std::chrono::steady_clock;

/// Owned by exactly one place at a time (server -> queue -> batch -> completion), so its
/// callback runs exactly once.
struct PendingRequest {
  InferRequest request;
  InferCallback done;
  Clock::time_point arrival;                              ///< when Server::infer received it
  Clock::time_point enqueued;                             ///< when it entered the scheduler's queue
  Clock::time_point dispatched;                           ///< when its batch started executing
  Clock::time_point deadline = Clock::time_point::max();  ///< queue timeout
  uint32_t priority_level = 1;                            ///< 1 = highest
  int64_t rows = 1;       ///< batch rows (the first dimension, when batching)
  int64_t tokens = 0;     ///< tokens, for the text backends' token budget
  uint64_t sequence = 0;  ///< arrival order, for preserve_ordering
  std::any prepared;      ///< the backend's validated, decoded inputs
  Result<InferResponse> response = Status(StatusCode::kInternal, "not executed");
};

using RequestPtr = std::unique_ptr<PendingRequest>;

}  // namespace kiln::server
