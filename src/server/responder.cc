#include "server/responder.h"

#include <algorithm>

#include "core/thread_name.h"

namespace kiln::server {

Responder::Responder(int threads) {
  for (int i = 0; i < std::max(threads, 1); ++i)
    threads_.emplace_back([this] {
      core::set_thread_name("kiln-respond");
      run();
    });
}

Responder::~Responder() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
}

void Responder::post(std::function<void()> task) {
  {
    std::lock_guard lock(mu_);
    tasks_.push_back(std::move(task));
    ++pending_;
  }
  cv_.notify_one();
}

void Responder::drain() {
  std::unique_lock lock(mu_);
  idle_cv_.wait(lock, [this] { return pending_ == 0; });
}

void Responder::run() {
  std::unique_lock lock(mu_);
  for (;;) {
    cv_.wait(lock, [this] { return stopping_ || !tasks_.empty(); });
    if (tasks_.empty()) return;  // stopping, and everything has been taken
    std::function<void()> task = std::move(tasks_.front());
    tasks_.pop_front();
    lock.unlock();
    task();
    task = nullptr;  // whatever the task holds goes before it counts as done
    lock.lock();
    if (--pending_ == 0) idle_cv_.notify_all();
  }
}

}  // namespace kiln::server
