#include "service/cluster_record.h"

#include <utility>

#include "cluster/node_list.h"
#include "service/auth_store.h"

namespace strata::service {
namespace {

// The revision an encoded auth state holds; a fresh state's when there is
// none.
std::optional<uint64_t> AuthRevision(const std::optional<std::string>& encoded) {
  if (!encoded) return AuthState{}.revision;
  auto state = AuthState::Decode(*encoded);
  if (!state) return std::nullopt;
  return state->revision;
}

// A member list's; 1 (the first members', from their flags) when none was
// saved.
std::optional<uint64_t> NodesRevision(const std::optional<std::string>& encoded) {
  if (!encoded) return 1;
  auto list = cluster::NodeList::Decode(*encoded);
  if (!list.ok()) return std::nullopt;
  return list->revision();
}

std::optional<std::string> Present(const ReadResult& r) {
  if (!r.found || r.deleted) return std::nullopt;
  return r.value;
}

}  // namespace

const std::string& ClusterRecord::AuthKey() {
  static const std::string key("\0auth", 5);
  return key;
}

const std::string& ClusterRecord::NodesKey() {
  static const std::string key("\0nodes", 6);
  return key;
}

std::unique_ptr<ClusterRecord> ClusterRecord::Auth(cluster::Coordinator* coordinator) {
  return std::make_unique<ClusterRecord>(coordinator, AuthKey(), "auth state", AuthRevision);
}

std::unique_ptr<ClusterRecord> ClusterRecord::Nodes(cluster::Coordinator* coordinator) {
  return std::make_unique<ClusterRecord>(coordinator, NodesKey(), "member list", NodesRevision);
}

void ClusterRecord::Load(std::function<void(Status, std::string)> done) {
  auto begun = coordinator_->Begin(Isolation::kSnapshot, /*read_only=*/true, std::nullopt);
  if (!begun.ok()) return done(begun.status(), {});
  const uint64_t txn = begun->id;
  coordinator_->Get(txn, key_, [this, txn, done, alive = alive_](Result<ReadResult> r) {
    if (!*alive) return;
    (void)coordinator_->Abort(txn);
    if (!r.ok()) return done(r.status(), {});
    done(Status::Ok(), Present(*r).value_or(""));
  });
}

void ClusterRecord::Save(std::string encoded, uint64_t replaces, std::function<void(Saved)> done) {
  auto begun = coordinator_->Begin(Isolation::kSerializable, /*read_only=*/false, std::nullopt);
  if (!begun.ok()) return done({begun.status(), {}});
  const uint64_t txn = begun->id;
  coordinator_->Get(
      txn, key_,
      [this, txn, replaces, done, encoded = std::move(encoded),
       alive = alive_](Result<ReadResult> r) mutable {
        if (!*alive) return;
        if (!r.ok()) {
          (void)coordinator_->Abort(txn);
          return done({r.status(), {}});
        }
        std::optional<std::string> held = Present(*r);
        const std::optional<uint64_t> held_revision = revision_of_(held);
        if (!held_revision) {
          (void)coordinator_->Abort(txn);
          return done(
              {Status::IoError("the cluster's " + what_ + " record cannot be decoded"), {}});
        }
        if (*held_revision != replaces) {
          (void)coordinator_->Abort(txn);
          return done({Status(StatusCode::kConflict, "the " + what_ + " changed"),
                       std::move(held).value_or("")});
        }
        if (Status s = coordinator_->Write(txn, key_, std::move(encoded)); !s.ok()) {
          (void)coordinator_->Abort(txn);
          return done({s, {}});
        }
        coordinator_->Commit(txn, [this, done, alive](Result<Timestamp> c) {
          if (!*alive) return;
          if (c.ok()) return done({Status::Ok(), {}});
          if (c.status().code() != StatusCode::kConflict) return done({c.status(), {}});
          // Lost to a change committed at once: say what it holds now (nothing
          // new if the record did not move: the save may then be made again).
          Load([this, done](Status s, std::string now) {
            if (!s.ok()) return done({s, {}});
            done({Status(StatusCode::kConflict, "the " + what_ + " changed"), std::move(now)});
          });
        });
      });
}

}  // namespace strata::service
