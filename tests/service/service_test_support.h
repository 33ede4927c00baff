// A KvService over an in-memory engine, with synchronous helpers: without a
// log, the pipeline acknowledges inline, so every callback has run when a
// call returns.
#ifndef STRATA_TESTS_SERVICE_SERVICE_TEST_SUPPORT_H_
#define STRATA_TESTS_SERVICE_SERVICE_TEST_SUPPORT_H_

#include <gtest/gtest.h>

#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "service/commit_pipeline.h"
#include "service/kv_service.h"
#include "service/lease_table.h"
#include "strata/mvcc_store.h"

namespace strata::service::testing {

template <typename T>
Reply<T> Sync(const std::function<void(std::function<void(Reply<T>)>)>& call) {
  std::optional<Reply<T>> out;
  call([&](Reply<T> r) { out.emplace(std::move(r)); });
  EXPECT_TRUE(out.has_value()) << "the in-memory pipeline answers inline";
  return out ? std::move(*out) : Reply<T>(ServiceError{ErrorCode::kInternal, "no reply"});
}

// Like Sync, for calls that answer from another thread.
template <typename T>
Reply<T> Await(const std::function<void(std::function<void(Reply<T>)>)>& call) {
  std::mutex mu;
  std::condition_variable cv;
  std::optional<Reply<T>> out;
  call([&](Reply<T> r) {
    std::lock_guard lock(mu);
    out.emplace(std::move(r));
    cv.notify_one();
  });
  std::unique_lock lock(mu);
  cv.wait(lock, [&] { return out.has_value(); });
  return std::move(*out);
}

class MemoryKv {
 public:
  explicit MemoryKv(KvServiceOptions options = {})
      : pipeline(std::nullopt, KvService::kFirstRevision),
        leases(nullptr),
        kv(&store, &pipeline, &leases, options) {
    // Expiries publish from the lease worker's thread.
    pipeline.SetEventSink([this](int64_t revision, std::vector<Event>&& e) {
      std::lock_guard lock(events_mu);
      for (auto& ev : e) events.push_back({revision, std::move(ev)});
    });
    leases.Start(&kv);
  }

  Reply<PutResponse> Put(const std::string& key, const std::string& value, int64_t lease = 0,
                         bool prev_kv = false) {
    PutRequest r;
    r.key = key;
    r.value = value;
    r.lease = lease;
    r.prev_kv = prev_kv;
    return Sync<PutResponse>([&](auto done) { kv.Put(r, done); });
  }
  Reply<PutResponse> Put(const PutRequest& r) {
    return Sync<PutResponse>([&](auto done) { kv.Put(r, done); });
  }
  Reply<DeleteRangeResponse> Delete(const std::string& key, const std::string& end = "",
                                    bool prev_kv = false) {
    DeleteRangeRequest r;
    r.span = {key, end};
    r.prev_kv = prev_kv;
    return Sync<DeleteRangeResponse>([&](auto done) { kv.DeleteRange(r, done); });
  }
  Reply<TxnResponse> Txn(const TxnRequest& r) {
    return Sync<TxnResponse>([&](auto done) { kv.Txn(r, done); });
  }
  Reply<CompactionResponse> Compact(int64_t revision) {
    return Sync<CompactionResponse>([&](auto done) { kv.Compact({revision, true}, done); });
  }
  Reply<RangeResponse> Get(const std::string& key, const std::string& end = "",
                           int64_t revision = 0) {
    RangeRequest r;
    r.span = {key, end};
    r.revision = revision;
    return kv.Range(r);
  }
  // Lease grants and revocations answer from the lease worker's thread.
  Reply<LeaseGrantResult> Grant(int64_t id, int64_t ttl) {
    return Await<LeaseGrantResult>([&](auto done) { leases.Grant(id, ttl, done); });
  }
  Reply<int64_t> Revoke(int64_t id) {
    return Await<int64_t>([&](auto done) { leases.Revoke(id, done); });
  }

  struct PublishedEvent {
    int64_t revision;
    Event event;
  };
  // Declared first, so destroyed last: the lease worker may publish until
  // `leases` is gone. Read `events` only when no lease can expire.
  std::mutex events_mu;
  std::vector<PublishedEvent> events;
  MvccStore store;
  CommitPipeline pipeline;
  LeaseTable leases;
  KvService kv;
};

inline RequestOp PutOp(const std::string& key, const std::string& value) {
  PutRequest p;
  p.key = key;
  p.value = value;
  return {p};
}
inline RequestOp GetOp(const std::string& key, const std::string& end = "") {
  RangeRequest r;
  r.span = {key, end};
  return {r};
}
inline RequestOp DeleteOp(const std::string& key, const std::string& end = "") {
  DeleteRangeRequest d;
  d.span = {key, end};
  return {d};
}
inline Compare Cmp(const std::string& key, CompareTarget target, CompareResult result,
                   int64_t number, const std::string& value = "") {
  Compare c;
  c.span = {key, ""};
  c.target = target;
  c.result = result;
  c.number = number;
  c.value = value;
  return c;
}

}  // namespace strata::service::testing

#endif  // STRATA_TESTS_SERVICE_SERVICE_TEST_SUPPORT_H_
