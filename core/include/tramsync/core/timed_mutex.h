// A mutex whose lock can wait a bounded time: what the writers of a file
// (db::WriteTxn) and the sync service's single writer queue on.
//
// std::timed_mutex would do, but libstdc++'s try_lock_for waits in
// pthread_mutex_clocklock, which GCC 12's ThreadSanitizer does not intercept:
// under TSan every timed lock looked like the unlock of an unlocked mutex, and
// the sync tests could not run there. This one is a mutex, a flag and a
// condition variable, all of which TSan sees. Meets the standard's
// TimedLockable requirements for the calls TramSync makes (use it with
// std::unique_lock). Thread-safe.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>

namespace tramsync {

class TimedMutex {
 public:
  TimedMutex() = default;
  TimedMutex(const TimedMutex&) = delete;
  TimedMutex& operator=(const TimedMutex&) = delete;

  void lock() {
    std::unique_lock<std::mutex> g(mu_);
    free_.wait(g, [this] { return !held_; });
    held_ = true;
  }
  bool try_lock() {
    std::lock_guard<std::mutex> g(mu_);
    if (held_) return false;
    held_ = true;
    return true;
  }
  // Waits on the steady clock: a wall clock set back or forward changes nothing.
  template <class Rep, class Period>
  bool try_lock_for(const std::chrono::duration<Rep, Period>& wait) {
    std::unique_lock<std::mutex> g(mu_);
    if (!free_.wait_for(g, wait, [this] { return !held_; })) return false;
    held_ = true;
    return true;
  }
  // REQUIRES: the caller holds the lock.
  void unlock() {
    {
      std::lock_guard<std::mutex> g(mu_);
      held_ = false;
    }
    free_.notify_one();
  }

 private:
  std::mutex mu_;
  std::condition_variable free_;
  bool held_ = false;  // GUARDED_BY(mu_)
};

}  // namespace tramsync
