#include "ops/http_listener.h"

#include <httplib.h>

#include <chrono>
#include <deque>
#include <vector>

#include "base/mutex.h"
#include "base/thread_name.h"

namespace strata::ops {
namespace {

// cpp-httplib's own pool queues accepted connections without a bound; this
// one makes the accepting thread wait once `max_waiting` are queued.
class BoundedPool final : public httplib::TaskQueue {
 public:
  BoundedPool(size_t threads, size_t max_waiting) : max_waiting_(max_waiting) {
    for (size_t i = 0; i < threads; ++i) workers_.emplace_back([this] { Work(); });
  }
  void enqueue(std::function<void()> fn) override {
    {
      UniqueLock lock(mu_);
      room_.Wait(lock, [&]() STRATA_REQUIRES(mu_) { return jobs_.size() < max_waiting_ || stop_; });
      jobs_.push_back(std::move(fn));
    }
    work_.NotifyOne();
  }
  void shutdown() override {
    {
      MutexLock lock(mu_);
      stop_ = true;
    }
    work_.NotifyAll();
    room_.NotifyAll();
    for (auto& t : workers_) t.join();
  }

 private:
  void Work() {
    for (;;) {
      std::function<void()> fn;
      {
        UniqueLock lock(mu_);
        work_.Wait(lock, [&]() STRATA_REQUIRES(mu_) { return !jobs_.empty() || stop_; });
        // Jobs left at a stop still run: each closes its connection.
        if (jobs_.empty()) return;
        fn = std::move(jobs_.front());
        jobs_.pop_front();
      }
      room_.NotifyOne();
      fn();
    }
  }

  const size_t max_waiting_;
  Mutex mu_;
  CondVar work_, room_;
  std::deque<std::function<void()>> jobs_ STRATA_GUARDED_BY(mu_);
  bool stop_ STRATA_GUARDED_BY(mu_) = false;
  std::vector<std::thread> workers_;
};

}  // namespace

HttpListener::HttpListener(HttpListenerOptions options)
    : options_(options), server_(std::make_unique<httplib::Server>()) {
  server_->new_task_queue = [o = options_] {
    return new BoundedPool(o.threads, o.max_waiting_connections);
  };
  server_->set_read_timeout(options_.read_timeout_seconds, 0);
  server_->set_write_timeout(options_.read_timeout_seconds, 0);
  server_->set_payload_max_length(options_.max_request_body_bytes);
  server_->set_keep_alive_max_count(20);
  // cpp-httplib's default also sets SO_REUSEPORT, which lets a second
  // server bind the same port and take half the scrapes: only SO_REUSEADDR.
  server_->set_socket_options([](socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
}

HttpListener::~HttpListener() { Stop(); }

void HttpListener::Get(const std::string& path, Handler handler) {
  server_->Get(path,
               [handler = std::move(handler)](const httplib::Request&, httplib::Response& res) {
                 HttpResponse r = handler();
                 res.status = r.status;
                 res.set_content(std::move(r.body), r.content_type.c_str());
               });
}

void HttpListener::Get(const std::string& path, ParamsHandler handler) {
  server_->Get(path,
               [handler = std::move(handler)](const httplib::Request& req, httplib::Response& res) {
                 Params params;
                 for (const auto& [name, value] : req.params) params.emplace(name, value);
                 HttpResponse r = handler(params);
                 res.status = r.status;
                 res.set_content(std::move(r.body), r.content_type.c_str());
               });
}

Result<int> HttpListener::Start(const std::string& host, int port) {
  int bound = port;
  if (port == 0) {
    bound = server_->bind_to_any_port(host);
    if (bound < 0) bound = 0;
  } else if (!server_->bind_to_port(host, port)) {
    bound = 0;
  }
  if (bound <= 0) {
    return Status::Unavailable("cannot listen on " + host + ":" + std::to_string(port) +
                               " (is the port in use?)");
  }
  thread_ = std::thread([this] {
    NameThisThread("strata-http");
    server_->listen_after_bind();
  });
  // Until the loop runs, stop() would find nothing to stop (and Stop then
  // wait forever for the thread): wait for it here.
  for (int i = 0; i < 5000 && !server_->is_running(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return bound;
}

void HttpListener::Stop() {
  if (!thread_.joinable()) return;
  server_->stop();
  thread_.join();
}

}  // namespace strata::ops
