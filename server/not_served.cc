#include "server/not_served.h"

#include <utility>

namespace strata::server {

namespace {

class NotServed final : public grpc::CallbackGenericService {
 public:
  explicit NotServed(std::string what) : what_(std::move(what)) {}

  grpc::ServerGenericBidiReactor* CreateReactor(grpc::GenericCallbackServerContext* ctx) override {
    class Reactor final : public grpc::ServerGenericBidiReactor {
     public:
      explicit Reactor(const std::string& text) {
        Finish(grpc::Status(grpc::StatusCode::UNIMPLEMENTED, text));
      }
      void OnDone() override { delete this; }
    };
    return new Reactor("strata: " + ctx->method() + " is not served by " + what_);
  }

 private:
  const std::string what_;
};

}  // namespace

std::unique_ptr<grpc::CallbackGenericService> MakeNotServedService(std::string what) {
  return std::make_unique<NotServed>(std::move(what));
}

}  // namespace strata::server
