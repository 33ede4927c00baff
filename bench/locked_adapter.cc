// A wrapper that serializes every call on one std::mutex: the simplest way
// to share an engine that is not thread-safe between a reader and a writer,
// and the cost strata's lock-free readers are meant to avoid.
#include <mutex>
#include <string>

#include "bench/engine_adapter.h"

namespace strata::bench {
namespace {

class LockedAdapter final : public EngineAdapter {
 public:
  explicit LockedAdapter(EngineAdapter* inner) : inner_(inner) {}

  std::string_view name() const override { return inner_->name(); }
  std::string_view config() const override { return inner_->config(); }
  bool concurrent() const override { return true; }
  bool in_memory() const override { return inner_->in_memory(); }
  bool ordered() const override { return inner_->ordered(); }

  void Put(std::string_view key, uint64_t ts, std::string_view value) override {
    std::lock_guard<std::mutex> lock(mu_);
    inner_->Put(key, ts, value);
  }
  void FlushWrites() override {
    std::lock_guard<std::mutex> lock(mu_);
    inner_->FlushWrites();
  }
  // The returned view points into the engine and may be invalidated by the
  // next Put once the lock is released, so the caller only gets a copy.
  std::optional<std::string_view> Get(std::string_view key, uint64_t read_ts) override {
    std::lock_guard<std::mutex> lock(mu_);
    std::optional<std::string_view> found = inner_->Get(key, read_ts);
    if (!found) return std::nullopt;
    copy_.assign(*found);
    return std::string_view(copy_);
  }
  size_t Scan(std::string_view start, size_t limit, uint64_t read_ts, uint64_t* checksum) override {
    std::lock_guard<std::mutex> lock(mu_);
    return inner_->Scan(start, limit, read_ts, checksum);
  }

 private:
  EngineAdapter* inner_;
  std::mutex mu_;
  std::string copy_;  // the last value read, owned by the reader
};

}  // namespace

std::unique_ptr<EngineAdapter> MakeLockedAdapter(EngineAdapter* inner) {
  return std::make_unique<LockedAdapter>(inner);
}

}  // namespace strata::bench
