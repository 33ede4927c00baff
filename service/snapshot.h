// Snapshots: the whole key-value model at one revision, as one byte stream
// (what Maintenance.Snapshot sends and `etcdctl snapshot save` writes to a
// file), and its restore into a new data directory (`strata-ctl snapshot
// restore`).
//
// Format (integers are LEB128 varints):
//   "strata-snapshot\n", format version, revision R
//     (2: one node's; 1 had no 'A'. 3: a cluster's, below)
//   'L' lease count, (id, ttl) per lease
//   'A' the users, roles and permissions (service/auth_store.h's
//       AuthState::Encode; empty when there are none), as etcd's snapshots
//       carry its auth
//   'K' key, version count, per version: timestamp, kind (0 delete, 1 put),
//       for a put the stored bytes (service/stored_value.h); every version
//       at or below R the engine still holds, oldest first; repeated per key
//   'E' the compaction revision when the stream ended
//   'P' padding length, zeros: makes the size 32 past a multiple of 512,
//       which etcdctl checks before it keeps a snapshot
//   the SHA-256 of everything before it (32 bytes), as etcd ends its
//   snapshots, so a cut or damaged file is refused on restore.
// One node's stream is produced a batch of keys at a time (each batch a
// consistent cut taken under the engine's writer lock for a moment, so
// writers go on); versions above R are left out, so the whole is the store
// at revision R. Compaction running meanwhile may drop history below its
// new revision from later batches; the compaction revision is therefore
// written last, and restore compacts to it, so no read of a restored store
// can see a revision whose history is partial.
//
// A cluster's (format 3) holds every shard's keys as the engine stores
// them (etcd's keys, and the cluster's own: leases and their attachments,
// the users' record), each with its one version at the cluster snapshot R,
// in key order; 'L' is empty (leases are keys) and 'E' is R (no history
// below R is carried). Each member restores the keys its shard owns in the
// cluster it is restored into (RestoreOptions::keep), which may have
// another size than the one saved.
#ifndef STRATA_SERVICE_SNAPSHOT_H_
#define STRATA_SERVICE_SNAPSHOT_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "strata/mvcc_store.h"
#include "strata/status.h"

namespace strata::service {

inline constexpr uint64_t kNodeSnapshotFormat = 2;
inline constexpr uint64_t kClusterSnapshotFormat = 3;

// The stream's pieces in order, with its running checksum: what a node's
// SnapshotWriter and a cluster member's snapshot (server/) both write.
class SnapshotEncoder final {
 public:
  SnapshotEncoder();
  ~SnapshotEncoder();
  SnapshotEncoder(const SnapshotEncoder&) = delete;
  SnapshotEncoder& operator=(const SnapshotEncoder&) = delete;

  std::string Header(uint64_t format, int64_t revision,
                     const std::vector<std::pair<int64_t, int64_t>>& leases,
                     std::string_view auth_state);
  // One key's versions at or below `revision` (empty if it has none).
  std::string Key(std::string_view key, std::span<const ExportedVersion> versions,
                  int64_t revision);
  // The compaction revision, the padding and the checksum: the last piece.
  std::string End(int64_t compact_revision);
  uint64_t bytes() const { return bytes_; }

 private:
  std::string Emit(std::string bytes);

  uint64_t bytes_ = 0;
  struct Digest;
  std::unique_ptr<Digest> digest_;
};

// One node's snapshot.
class SnapshotWriter final {
 public:
  SnapshotWriter(const MvccStore* store, std::vector<std::pair<int64_t, int64_t>> leases,
                 std::string auth_state, int64_t revision,
                 std::function<int64_t()> compact_revision);
  SnapshotWriter(const SnapshotWriter&) = delete;
  SnapshotWriter& operator=(const SnapshotWriter&) = delete;

  // The next piece of the stream, about `chunk_bytes` long (one key's
  // versions are never split, so a piece may be longer); empty once the
  // whole stream, trailer included, was returned.
  std::string Next(size_t chunk_bytes);
  int64_t revision() const { return revision_; }
  uint64_t bytes_written() const { return encoder_.bytes(); }

 private:
  const MvccStore* store_;
  const int64_t revision_;
  std::function<int64_t()> compact_revision_;
  SnapshotEncoder encoder_;
  std::string header_;  // format, revision and leases, not yet returned
  std::string cursor_;  // the next key to export
  bool keys_done_ = false;
  bool finished_ = false;
};

struct RestoreOptions {
  // 0: the snapshot's revision. Else the store as it was at this revision
  // (point-in-time): at or above the snapshot's compaction (below it the
  // history is gone) and at most the snapshot's revision.
  int64_t as_of_revision = 0;
  // Called now and then (and once at the end) with the bytes of the
  // snapshot restored so far and its size.
  std::function<void(uint64_t done, uint64_t total)> progress;
  // Restoring a member of a cluster: the keys its shard owns (a cluster's
  // snapshot needs it).
  std::function<bool(std::string_view engine_key)> keep;
  // With `keep`, one node's snapshot is restored into a member as the
  // cluster keeps the same things (service/cluster_kv.h, cluster_leases.h,
  // cluster_record.h): an etcd key under its engine key, each lease as
  // its record (the TTL in decimal) and its keys' attachments (empty
  // values), the users and roles as their record; the member writes those
  // `keep` gives it. Revisions stay the node's.
  // Without `keep`, a cluster's snapshot is restored into one node the
  // other way: each etcd key (etcd_key_of) under its own name, each lease
  // record (lease_of_record) into the node's leases; the cluster's other
  // keys (attachments, the users' record: the users come from 'A') are
  // left out. Revisions stay the cluster's: the node's next write is
  // numbered above the snapshot's.
  struct ClusterLayout {
    std::function<std::string(std::string_view etcd_key)> key;
    std::function<std::string(int64_t lease)> lease_record;
    std::function<std::string(int64_t lease, std::string_view etcd_key)> attachment;
    std::string auth_record;
    std::function<std::optional<std::string>(std::string_view engine_key)> etcd_key_of;
    std::function<std::optional<int64_t>(std::string_view engine_key)> lease_of_record;
  };
  std::optional<ClusterLayout> cluster_layout;
};

struct RestoreReport {
  int64_t revision = 0;
  int64_t compact_revision = 0;
  uint64_t keys = 0;
  uint64_t versions = 0;
  uint64_t leases = 0;
  // Point-in-time: leases that keys held at the revision but that were
  // gone by the snapshot; granted again for kRegrantedLeaseTtl seconds so
  // those keys expire unless their owners keep them alive.
  uint64_t leases_regranted = 0;
  uint64_t users = 0;  // users restored (with their roles)
  // RestoreNodeSnapshot: the users and roles the snapshot carries
  // (AuthState::Encode; empty when none), for the caller to keep.
  std::string auth_state;
};

inline constexpr int64_t kRegrantedLeaseTtl = 60;

// Restores `snapshot_file` into `data_dir`, which must not hold a store yet
// (kPreconditionFailed otherwise). kInvalidArgument if the file is not a
// whole strata snapshot (the checksum names a cut or damaged file), the
// revision asked for is outside what it holds, or a snapshot of one kind
// is restored into the other without cluster_layout. Nothing is written to
// `data_dir` before the whole file was checked.
Result<RestoreReport> RestoreSnapshot(const std::string& snapshot_file, const std::string& data_dir,
                                      const RestoreOptions& options);

// The same for a member (`options.keep` must be set: the keys its shard, or
// one of its shards, owns) into `store`, an empty engine in memory: the
// state a replicated shard's group starts from (server/shard_restore.h).
// `snapshot` is the file's bytes, `name` names it in errors. Its users and
// roles are in the report's auth_state (and as the cluster's record, if
// kept).
Result<RestoreReport> RestoreMemberSnapshot(std::string_view snapshot, const std::string& name,
                                            const RestoreOptions& options, MvccStore* store);

// Keeps `auth_state` (AuthState::Encode) as the users and roles of the
// member or node whose data directory is `data_dir`, as a restore does.
Status KeepAuthCopy(const std::string& data_dir, std::string_view auth_state);

// Restores one node's snapshot (all of it, whole and checked) into `store`,
// an empty engine in memory: a replica that takes its leader's state.
// `leases` (if not null) gets the snapshot's leases. kInvalidArgument if
// the bytes are not a whole node snapshot.
Result<RestoreReport> RestoreNodeSnapshot(std::string_view snapshot, MvccStore* store,
                                          std::vector<std::pair<int64_t, int64_t>>* leases);
// The same checks without restoring: the report's figures but `versions`
// (the revisions, keys, leases and users and roles the snapshot holds).
Result<RestoreReport> CheckNodeSnapshot(std::string_view snapshot);

}  // namespace strata::service

#endif  // STRATA_SERVICE_SNAPSHOT_H_
