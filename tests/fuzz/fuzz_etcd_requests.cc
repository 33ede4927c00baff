// libFuzzer target: the etcd API's request handlers below protobuf parsing.
//
// Each input is a sequence of etcd requests (the first byte of each picks
// Range, Put, DeleteRange, Txn or Compact; the rest is that request's
// protobuf bytes, as a client could send them), converted as the gRPC front
// end converts them and run against one in-memory KvService that lives for
// the whole run. Beyond the sanitizers: every request is answered (the
// in-memory pipeline answers inline), and the store's revision never goes
// back.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>

#include "rpc.pb.h"
#include "server/proto_convert.h"
#include "service/commit_pipeline.h"
#include "service/kv_service.h"
#include "service/lease_table.h"
#include "strata/mvcc_store.h"

namespace {

using namespace strata;  // NOLINT: a harness

struct World {
  MvccStore store;
  service::CommitPipeline pipeline{std::nullopt, service::KvService::kFirstRevision};
  service::LeaseTable leases{nullptr};
  service::KvService kv{&store, &pipeline, &leases, {}};
  World() { leases.Start(&kv); }
};

template <typename T, typename Call>
void MustAnswer(Call call) {
  bool answered = false;
  call([&](service::Reply<T>) { answered = true; });
  if (!answered) std::abort();  // a request without a reply
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static World* w = new World();  // lives for the run, as a server's state
  size_t at = 0;
  while (at + 2 <= size) {
    const uint8_t kind = data[at] % 5;
    const size_t len = std::min<size_t>(data[at + 1], size - at - 2);
    const auto* bytes = data + at + 2;
    at += 2 + len;
    const int64_t before = w->kv.current_revision();
    switch (kind) {
      case 0: {
        etcdserverpb::RangeRequest r;
        if (!r.ParseFromArray(bytes, static_cast<int>(len)) || r.key().empty()) break;
        (void)w->kv.Range(server::FromProto(r));
        break;
      }
      case 1: {
        etcdserverpb::PutRequest r;
        if (!r.ParseFromArray(bytes, static_cast<int>(len))) break;
        MustAnswer<service::PutResponse>([&](auto done) { w->kv.Put(server::FromProto(r), done); });
        break;
      }
      case 2: {
        etcdserverpb::DeleteRangeRequest r;
        if (!r.ParseFromArray(bytes, static_cast<int>(len))) break;
        MustAnswer<service::DeleteRangeResponse>(
            [&](auto done) { w->kv.DeleteRange(server::FromProto(r), done); });
        break;
      }
      case 3: {
        etcdserverpb::TxnRequest r;
        if (!r.ParseFromArray(bytes, static_cast<int>(len))) break;
        MustAnswer<service::TxnResponse>([&](auto done) { w->kv.Txn(server::FromProto(r), done); });
        break;
      }
      case 4: {
        etcdserverpb::CompactionRequest r;
        if (!r.ParseFromArray(bytes, static_cast<int>(len))) break;
        MustAnswer<service::CompactionResponse>([&](auto done) {
          w->kv.Compact({r.revision(), r.physical()}, done);
        });
        break;
      }
    }
    if (w->kv.current_revision() < before) std::abort();  // a revision went back
  }
  return 0;
}
