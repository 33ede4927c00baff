// AuthRecordState: a replicated cluster's users, roles and permissions (an
// encoded AuthState, service/auth_store.h) as replicated state of its Raft
// group, around the key space (`inner`).
//
// A change is a command that saves the new state only over the revision it
// was made on (as a sharded cluster's record: server/shared_auth_record.h),
// so two members changing it at once cannot both win; every member applies
// it in log order and hands it to its AuthStore, so a grant acknowledged by
// one member is in force on every member that applied it. A token
// Authenticate hands out is a command too (etcd proposes its simple tokens
// through Raft as well), so a client may use it on any member.
//
// Snapshots carry the record in a frame of their own ahead of the inner
// state's; a snapshot without the frame (from before it, or one node's
// snapshot a cluster starts from) restores with no record. Tokens are not
// in snapshots: a member restored from one asks its clients to
// authenticate again, as after a restart.
#ifndef STRATA_SERVER_REPLICATED_AUTH_H_
#define STRATA_SERVER_REPLICATED_AUTH_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "replication/raft_host.h"
#include "strata/status.h"

namespace strata::server {

class AuthRecordState final : public replication::ReplicatedState {
 public:
  // The commands' first bytes (the registry of members has 1 and 2, the
  // key space letters).
  static constexpr char kSaveByte = '\x03';
  static constexpr char kTokenByte = '\x04';

  // Told, on the applying thread, of each state saved and each state a
  // snapshot brought, and of each token.
  using StateObserver = std::function<void(const std::string& encoded)>;
  using TokenObserver = std::function<void(const std::string& token, const std::string& user)>;

  explicit AuthRecordState(std::unique_ptr<replication::ReplicatedState> inner)
      : inner_(std::move(inner)) {}
  void set_observers(StateObserver on_state, TokenObserver on_token) {
    on_state_ = std::move(on_state);
    on_token_ = std::move(on_token);
  }

  static std::string SaveCommand(std::string_view encoded, uint64_t replaces);
  static std::string TokenCommand(std::string_view token, std::string_view user);
  // A save's reply: Ok; kConflict with the record's state in *newer (empty:
  // none was ever saved); kInvalidArgument for a command that did not
  // decode.
  static Status DecodeSaveReply(std::string_view reply, std::string* newer);

  // A snapshot of this state: `record` (an encoded AuthState, "" for none)
  // ahead of the inner state's `inner`. A cluster started from one node's
  // snapshot (--restore) starts from that node's users and roles so.
  static std::string SnapshotWith(std::string_view record, std::string_view inner);

  // The state saved last ("" if none) and its revision (1 if none).
  const std::string& record() const { return record_; }
  uint64_t record_revision() const { return record_revision_; }

  Status Restore(std::string_view snapshot) override;
  std::string Apply(raft::Index index, std::string_view command) override;
  void ApplyConfChange(raft::Index index, const raft::ConfChange& change) override {
    inner_->ApplyConfChange(index, change);
  }
  std::string Save() const override;
  std::function<std::string()> SaveLater() override;
  void SaveFinished() override { inner_->SaveFinished(); }

 private:
  std::unique_ptr<replication::ReplicatedState> inner_;
  std::string record_;
  uint64_t record_revision_ = 1;
  StateObserver on_state_;
  TokenObserver on_token_;
};

}  // namespace strata::server

#endif  // STRATA_SERVER_REPLICATED_AUTH_H_
