// Runs fn(task, worker) for tasks [0, n) on up to `threads` std::threads taking tasks from a shared
// counter. Each task writes only its own outputs, so the result does not depend on the schedule.
#pragma once
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace te::cpu {

inline int resolve_threads(int requested) {
  if (requested > 0) return requested;
  const unsigned hw = std::thread::hardware_concurrency();
  return hw == 0 ? 1 : int(hw);
}

template <typename F>
void parallel_for(int64_t n, int threads, F&& fn) {
  const int workers = int(std::min<int64_t>(std::max(threads, 1), n));
  if (workers <= 1) {
    for (int64_t t = 0; t < n; ++t) fn(t, 0);
    return;
  }
  std::atomic<int64_t> next{0};
  std::exception_ptr error;
  std::mutex error_lock;
  auto work = [&](int worker) {
    try {
      for (int64_t t = next++; t < n; t = next++) fn(t, worker);
    } catch (...) {
      std::lock_guard<std::mutex> g(error_lock);
      if (!error) error = std::current_exception();
      next = n;
    }
  };
  std::vector<std::thread> pool;
  pool.reserve(workers - 1);
  for (int w = 1; w < workers; ++w) pool.emplace_back(work, w);
  work(0);
  for (auto& t : pool) t.join();
  if (error) std::rethrow_exception(error);
}

}  // namespace te::cpu
