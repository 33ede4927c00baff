// Mutex, MutexLock, UniqueLock: std::mutex and its locks, annotated for
// clang's thread-safety analysis (-Wthread-safety, on in the clang builds:
// make test's ASan and TSan stages). A member written `STRATA_GUARDED_BY(mu_)` may
// only be touched with mu_ held, and a function declared `STRATA_REQUIRES(mu_)`
// only called so; the compiler checks both, where a comment could only ask.
// GCC ignores the annotations. (The names carry STRATA_: Abseil, which gRPC
// pulls in, defines the unprefixed ones.)
#ifndef STRATA_BASE_MUTEX_H_
#define STRATA_BASE_MUTEX_H_

#include <condition_variable>
#include <mutex>

#if defined(__clang__)
#define STRATA_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define STRATA_THREAD_ANNOTATION(x)
#endif

#define STRATA_CAPABILITY(x) STRATA_THREAD_ANNOTATION(capability(x))
#define STRATA_SCOPED_CAPABILITY STRATA_THREAD_ANNOTATION(scoped_lockable)
#define STRATA_GUARDED_BY(x) STRATA_THREAD_ANNOTATION(guarded_by(x))
#define STRATA_PT_GUARDED_BY(x) STRATA_THREAD_ANNOTATION(pt_guarded_by(x))
#define STRATA_REQUIRES(...) STRATA_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))
#define STRATA_EXCLUDES(...) STRATA_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))
#define STRATA_ACQUIRE(...) STRATA_THREAD_ANNOTATION(acquire_capability(__VA_ARGS__))
#define STRATA_RELEASE(...) STRATA_THREAD_ANNOTATION(release_capability(__VA_ARGS__))
#define STRATA_TRY_ACQUIRE(...) STRATA_THREAD_ANNOTATION(try_acquire_capability(__VA_ARGS__))
#define STRATA_NO_THREAD_SAFETY_ANALYSIS STRATA_THREAD_ANNOTATION(no_thread_safety_analysis)

namespace strata {

class STRATA_CAPABILITY("mutex") Mutex {
 public:
  void lock() STRATA_ACQUIRE() { mu_.lock(); }
  void unlock() STRATA_RELEASE() { mu_.unlock(); }
  bool try_lock() STRATA_TRY_ACQUIRE(true) { return mu_.try_lock(); }

 private:
  std::mutex mu_;
};

// Holds `mu` for its scope (std::lock_guard).
class STRATA_SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(Mutex& mu) STRATA_ACQUIRE(mu) : mu_(mu) { mu_.lock(); }
  ~MutexLock() STRATA_RELEASE() { mu_.unlock(); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

 private:
  Mutex& mu_;
};

// Holds `mu` for its scope but may let go of it for a while (std::unique_lock),
// and is what CondVar waits with.
class STRATA_SCOPED_CAPABILITY UniqueLock {
 public:
  explicit UniqueLock(Mutex& mu) STRATA_ACQUIRE(mu) : mu_(mu) { mu_.lock(); }
  ~UniqueLock() STRATA_RELEASE() {
    if (held_) mu_.unlock();
  }
  void lock() STRATA_ACQUIRE() {
    mu_.lock();
    held_ = true;
  }
  void unlock() STRATA_RELEASE() {
    held_ = false;
    mu_.unlock();
  }
  UniqueLock(const UniqueLock&) = delete;
  UniqueLock& operator=(const UniqueLock&) = delete;

 private:
  friend class CondVar;
  Mutex& mu_;
  bool held_ = true;
};

// A condition variable over Mutex. Wait releases the lock while asleep and
// holds it again when it returns, so to the analysis the lock is held
// throughout (which is what the code around it may assume).
class CondVar {
 public:
  void Wait(UniqueLock& lock) { cv_.wait(lock.mu_); }
  template <typename Predicate>
  void Wait(UniqueLock& lock, Predicate done) {
    cv_.wait(lock.mu_, std::move(done));
  }
  template <typename Duration>
  std::cv_status WaitFor(UniqueLock& lock, Duration d) {
    return cv_.wait_for(lock.mu_, d);
  }
  template <typename Duration, typename Predicate>
  bool WaitFor(UniqueLock& lock, Duration d, Predicate done) {
    return cv_.wait_for(lock.mu_, d, std::move(done));
  }
  template <typename TimePoint, typename Predicate>
  bool WaitUntil(UniqueLock& lock, TimePoint t, Predicate done) {
    return cv_.wait_until(lock.mu_, t, std::move(done));
  }
  void NotifyOne() { cv_.notify_one(); }
  void NotifyAll() { cv_.notify_all(); }

 private:
  std::condition_variable_any cv_;
};

}  // namespace strata

#endif  // STRATA_BASE_MUTEX_H_
