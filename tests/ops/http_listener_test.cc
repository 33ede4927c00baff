// HttpListener: routes answer, unknown paths get 404, a busy port frees
// up, and Stop returns even with connections open.
#include "ops/http_listener.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>

namespace strata::ops {
namespace {

TEST(HttpListenerTest, ServesRoutesAnd404sTheRest) {
  HttpListener l;
  std::atomic<int> calls{0};
  l.Get("/a", [&] {
    ++calls;
    return HttpResponse{201, "text/plain", "hello"};
  });
  auto port = l.Start("127.0.0.1", 0);
  ASSERT_TRUE(port.ok());
  httplib::Client c("127.0.0.1", port.value());
  auto r = c.Get("/a");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 201);
  EXPECT_EQ(r->body, "hello");
  auto missing = c.Get("/b");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
  EXPECT_EQ(calls.load(), 1);
  l.Stop();
  EXPECT_FALSE(httplib::Client("127.0.0.1", port.value()).Get("/a")) << "stopped";
}

TEST(HttpListenerTest, APortInUseIsRefusedWithTheAddress) {
  HttpListener first;
  auto port = first.Start("127.0.0.1", 0);
  ASSERT_TRUE(port.ok());
  HttpListener second;
  auto again = second.Start("127.0.0.1", port.value());
  ASSERT_FALSE(again.ok());
  EXPECT_NE(again.status().message().find("127.0.0.1:" + std::to_string(port.value())),
            std::string::npos);
}

TEST(HttpListenerTest, StopsRightAfterStartingAndWithAnIdleConnectionOpen) {
  for (int i = 0; i < 20; ++i) {
    HttpListener l;
    ASSERT_TRUE(l.Start("127.0.0.1", 0).ok());
  }
  HttpListener l;
  l.Get("/x", [] { return HttpResponse{}; });
  auto port = l.Start("127.0.0.1", 0);
  ASSERT_TRUE(port.ok());
  httplib::Client idle("127.0.0.1", port.value());
  idle.set_keep_alive(true);
  ASSERT_TRUE(idle.Get("/x"));
  l.Stop();  // returns: the keep-alive connection is cut
}

}  // namespace
}  // namespace strata::ops
