// Answers the requests of executed batches on a few threads of their own, so that an instance's
// thread goes back to its device as soon as a batch has run. Answering a request (statistics,
// encoding the response, handing it to gRPC or HTTP, whose send may run right there) costs
// microseconds each; done one by one on the instance thread, a batch of 128 kept the GPU idle
// for over a millisecond between batches. Triton likewise sends responses from its frontend's
// threads, not the backend's.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace kiln::server {

class Responder {
 public:
  /// Starts `threads` (>= 1) threads.
  explicit Responder(int threads);
  /// Runs everything posted, then joins the threads.
  ~Responder();
  Responder(const Responder&) = delete;
  Responder& operator=(const Responder&) = delete;

  /// Runs `task` on one of the threads.
  void post(std::function<void()> task);
  /// Returns once every task posted before the call has run.
  void drain();

 private:
  void run();

  std::mutex mu_;
  std::condition_variable cv_, idle_cv_;
  std::deque<std::function<void()>> tasks_;
  int64_t pending_ = 0;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace kiln::server
