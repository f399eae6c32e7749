#include "forgeline/parallel.hpp"

#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#if defined(__unix__) || defined(__APPLE__)
#include <pthread.h>
#define FL_HAVE_PTHREAD_ATFORK 1
#endif

namespace forgeline {

namespace {

int env_threads(const char* name) {
  const char* v = std::getenv(name);
  if (!v || !*v) return 0;
  char* end = nullptr;
  long n = std::strtol(v, &end, 10);
  if (end == v || n <= 0) return 0;
  return static_cast<int>(std::min<long>(n, 1024));
}

// One parallel region. Shared by the caller and the helpers that join it; helpers hold a
// shared_ptr so a helper that arrives late (after the caller returned) touches only memory
// that is still alive, and it never calls body because every chunk is already claimed.
struct Job {
  const std::function<void(index_t)>* body = nullptr;
  index_t n_chunks = 0;
  std::atomic<index_t> next{0};
  std::atomic<index_t> done{0};
  std::atomic<bool> failed{false};
  std::exception_ptr error;
  std::mutex mu;
  std::condition_variable cv;

  void work() {
    for (;;) {
      const index_t k = next.fetch_add(1, std::memory_order_relaxed);
      if (k >= n_chunks) return;
      if (!failed.load(std::memory_order_relaxed)) {
        try {
          (*body)(k);
        } catch (...) {
          std::lock_guard<std::mutex> lock(mu);
          if (!error) error = std::current_exception();
          failed.store(true);
        }
      }
      if (done.fetch_add(1, std::memory_order_acq_rel) + 1 == n_chunks) {
        std::lock_guard<std::mutex> lock(mu);
        cv.notify_all();
      }
    }
  }
};

thread_local bool t_in_worker = false;

class Pool {
 public:
  ~Pool() { shutdown(); }

  void submit(const std::shared_ptr<Job>& job, int helpers) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      ensure_workers(helpers);
      for (int i = 0; i < helpers; ++i) queue_.push_back(job);
    }
    if (helpers == 1) cv_.notify_one(); else cv_.notify_all();
  }

  // After fork() only the forking thread exists in the child; forget the dead workers
  // without joining them (their std::thread objects are leaked on purpose).
  void forget_after_fork() {
    new (&mu_) std::mutex();
    new (&cv_) std::condition_variable();
    for (auto& t : workers_) new (&t) std::thread();
    workers_.clear();
    queue_.clear();
    stop_ = false;
  }

 private:
  void ensure_workers(int wanted) {
    while (static_cast<int>(workers_.size()) < wanted) workers_.emplace_back([this] { loop(); });
  }

  void loop() {
    t_in_worker = true;
    for (;;) {
      std::shared_ptr<Job> job;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
        if (stop_ && queue_.empty()) return;
        job = std::move(queue_.front());
        queue_.pop_front();
      }
      job->work();
    }
  }

  void shutdown() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& t : workers_)
      if (t.joinable()) t.join();
    workers_.clear();
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<Job>> queue_;
  std::vector<std::thread> workers_;
  bool stop_ = false;
};

Pool& pool() {
  // Leaked on purpose: joining threads from a static destructor at interpreter exit can
  // deadlock, and the OS reclaims the threads anyway.
  static Pool* p = [] {
    auto* created = new Pool();
#ifdef FL_HAVE_PTHREAD_ATFORK
    pthread_atfork(nullptr, nullptr, [] { pool().forget_after_fork(); });
#endif
    return created;
  }();
  return *p;
}

}  // namespace

int default_num_threads() {
  if (int n = env_threads("FORGELINE_NUM_THREADS")) return n;
  if (int n = env_threads("OMP_NUM_THREADS")) return n;
  unsigned hc = std::thread::hardware_concurrency();
  return hc == 0 ? 1 : static_cast<int>(hc);
}

namespace detail {

void run_chunks(index_t n_chunks, int n_threads, const std::function<void(index_t)>& body) {
  if (t_in_worker || n_threads <= 1 || n_chunks <= 1) {
    for (index_t k = 0; k < n_chunks; ++k) body(k);
    return;
  }
  auto job = std::make_shared<Job>();
  job->body = &body;
  job->n_chunks = n_chunks;
  const int helpers = static_cast<int>(std::min<index_t>(n_threads, n_chunks)) - 1;
  pool().submit(job, helpers);
  job->work();  // the caller works too, so progress never depends on a free worker
  {
    std::unique_lock<std::mutex> lock(job->mu);
    job->cv.wait(lock, [&] { return job->done.load() == n_chunks; });
  }
  if (job->error) std::rethrow_exception(job->error);
}

}  // namespace detail
}  // namespace forgeline
