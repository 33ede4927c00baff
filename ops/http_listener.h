// HttpListener: the operator's HTTP port (etcd's --listen-metrics-urls):
// GET routes that answer with a body, served by cpp-httplib from Debian.
//
// Bounded: a fixed number of worker threads, each request read within a
// timeout, bodies of requests refused past a small size, and at most a few
// accepted connections waiting for a worker (beyond that the listener stops
// accepting until one is free, so a flood of connections waits in the
// kernel's backlog instead of holding memory and descriptors here).
#ifndef STRATA_OPS_HTTP_LISTENER_H_
#define STRATA_OPS_HTTP_LISTENER_H_

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include "strata/status.h"

namespace httplib {
class Server;
}

namespace strata::ops {

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

struct HttpListenerOptions {
  size_t threads = 4;
  size_t max_waiting_connections = 16;
  // A connection that sends nothing holds a worker this long: short, since
  // scrapers and probes ask at once (and a slow sender must not hold the
  // port for long).
  int read_timeout_seconds = 2;
  size_t max_request_body_bytes = 64 * 1024;
};

class HttpListener final {
 public:
  using Handler = std::function<HttpResponse()>;
  // The query string's parameters, decoded (a repeated one: its first value).
  using Params = std::map<std::string, std::string>;
  using ParamsHandler = std::function<HttpResponse(const Params&)>;

  explicit HttpListener(HttpListenerOptions options = {});
  ~HttpListener();  // stops serving
  HttpListener(const HttpListener&) = delete;
  HttpListener& operator=(const HttpListener&) = delete;

  // Routes are added before Start. `path` is matched exactly.
  void Get(const std::string& path, Handler handler);
  void Get(const std::string& path, ParamsHandler handler);
  // Binds host:port (port 0: any free one) and serves on a thread of its
  // own; the bound port, or kUnavailable naming the address.
  Result<int> Start(const std::string& host, int port);
  void Stop();

 private:
  HttpListenerOptions options_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
};

}  // namespace strata::ops

#endif  // STRATA_OPS_HTTP_LISTENER_H_
