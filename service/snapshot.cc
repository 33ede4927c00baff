#include "service/snapshot.h"

#include <openssl/evp.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <optional>
#include <set>

#include "service/auth_store.h"
#include "service/data_dir.h"
#include "service/lease_journal.h"
#include "service/stored_value.h"
#include "storage/coding.h"
#include "strata/store.h"

namespace strata::service {
namespace {

constexpr std::string_view kMagic = "strata-snapshot\n";
constexpr size_t kDigestBytes = 32;
constexpr size_t kKeysPerBatch = 256;

using storage::PutBytes;
using storage::PutVarint;

// The storage layer's bounded decoder, plus the literal this format opens
// with.
class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in), decoder_(in) {}
  bool Literal(std::string_view s) {
    if (in_.substr(0, s.size()) != s) return false;
    in_.remove_prefix(s.size());
    decoder_ = storage::Decoder(in_);
    return true;
  }
  bool Varint(uint64_t* v) { return decoder_.Varint(v); }
  bool Bytes(std::string_view* b) { return decoder_.Bytes(b); }
  bool Byte(char* c) {
    uint8_t b = 0;
    if (!decoder_.Byte(&b)) return false;
    *c = static_cast<char>(b);
    return true;
  }
  bool empty() const { return decoder_.done(); }
  size_t remaining() const { return decoder_.rest().size(); }

 private:
  std::string_view in_;
  storage::Decoder decoder_;
};

}  // namespace

struct SnapshotEncoder::Digest {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  Digest() { EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr); }
  ~Digest() { EVP_MD_CTX_free(ctx); }
};

SnapshotEncoder::SnapshotEncoder() : digest_(std::make_unique<Digest>()) {}
SnapshotEncoder::~SnapshotEncoder() = default;

std::string SnapshotEncoder::Emit(std::string bytes) {
  EVP_DigestUpdate(digest_->ctx, bytes.data(), bytes.size());
  bytes_ += bytes.size();
  return bytes;
}

std::string SnapshotEncoder::Header(uint64_t format, int64_t revision,
                                    const std::vector<std::pair<int64_t, int64_t>>& leases,
                                    std::string_view auth_state) {
  std::string out(kMagic);
  PutVarint(&out, format);
  PutVarint(&out, static_cast<uint64_t>(revision));
  out.push_back('L');
  PutVarint(&out, leases.size());
  for (const auto& [id, ttl] : leases) {
    PutVarint(&out, static_cast<uint64_t>(id));
    PutVarint(&out, static_cast<uint64_t>(ttl));
  }
  out.push_back('A');
  PutBytes(&out, auth_state);
  return Emit(std::move(out));
}

std::string SnapshotEncoder::Key(std::string_view key, std::span<const ExportedVersion> versions,
                                 int64_t revision) {
  const auto at = static_cast<uint64_t>(revision);
  size_t n = 0;
  for (const auto& v : versions) n += v.timestamp <= at;
  if (n == 0) return {};  // nothing of it at the snapshot's revision
  std::string record(1, 'K');
  PutBytes(&record, key);
  PutVarint(&record, n);
  for (const auto& v : versions) {
    if (v.timestamp > at) continue;
    PutVarint(&record, v.timestamp);
    record.push_back(v.deleted ? 0 : 1);
    if (!v.deleted) PutBytes(&record, v.value);
  }
  return Emit(std::move(record));
}

std::string SnapshotEncoder::End(int64_t compact_revision) {
  std::string record(1, 'E');
  PutVarint(&record, static_cast<uint64_t>(std::max<int64_t>(0, compact_revision)));
  // etcdctl accepts a snapshot only if its size is 32 past a multiple of
  // 512 (etcd's page-sized database plus its SHA-256): pad to that.
  const uint64_t at = bytes_ + record.size();
  for (uint64_t varint_len = 1; varint_len <= 2; ++varint_len) {
    const uint64_t pad = (512 - (at + 1 + varint_len) % 512) % 512;
    if ((pad < 128) != (varint_len == 1)) continue;
    record.push_back('P');
    PutVarint(&record, pad);
    record.append(pad, '\0');
    break;
  }
  std::string out = Emit(std::move(record));
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(digest_->ctx, digest, &len);
  out.append(reinterpret_cast<const char*>(digest), len);
  bytes_ += len;
  return out;
}

SnapshotWriter::SnapshotWriter(const MvccStore* store,
                               std::vector<std::pair<int64_t, int64_t>> leases,
                               std::string auth_state, int64_t revision,
                               std::function<int64_t()> compact_revision)
    : store_(store), revision_(revision), compact_revision_(std::move(compact_revision)) {
  header_ = encoder_.Header(kNodeSnapshotFormat, revision, leases, auth_state);
}

std::string SnapshotWriter::Next(size_t chunk_bytes) {
  std::string out;
  if (finished_) return out;
  out = std::move(header_);
  header_.clear();
  while (!keys_done_ && out.size() < chunk_bytes) {
    keys_done_ = store_->ExportKeys(
        &cursor_, kKeysPerBatch, [] {},
        [&](std::string_view key, uint64_t, std::span<const ExportedVersion> versions) {
          out += encoder_.Key(key, versions, revision_);
        });
  }
  if (keys_done_ && out.size() < chunk_bytes) {
    out += encoder_.End(compact_revision_());
    finished_ = true;
  }
  return out;
}

namespace {

struct Version {
  uint64_t timestamp = 0;
  bool deleted = false;
  std::string_view value;
};

// What a snapshot holds besides its keys.
struct Contents {
  uint64_t revision = 0;
  std::vector<std::pair<int64_t, int64_t>> leases;
  std::string_view auth_state;
  uint64_t compact = 0;
  uint64_t keys = 0;
  bool cluster = false;  // format 3
};

// Walks a checksummed snapshot body: its header into *c, then each key's
// versions to `on_key` (may be empty, to check the structure only), then
// the end. The error says what is wrong.
Result<Contents> Walk(std::string_view body,
                      const std::function<Status(std::string_view, const std::vector<Version>&,
                                                 size_t done)>& on_key) {
  auto damaged = [](const std::string& why) { return Status::InvalidArgument(why); };
  Reader in(body);
  Contents c;
  uint64_t format = 0, leases = 0;
  if (!in.Literal(kMagic) || !in.Varint(&format) || format < 1 || format > kClusterSnapshotFormat ||
      !in.Varint(&c.revision)) {
    return damaged("unknown format");
  }
  c.cluster = format == kClusterSnapshotFormat;
  char tag = 0;
  if (!in.Byte(&tag) || tag != 'L' || !in.Varint(&leases) || leases > body.size()) {
    return damaged("no lease section");
  }
  for (uint64_t i = 0; i < leases; ++i) {
    uint64_t id = 0, ttl = 0;
    if (!in.Varint(&id) || !in.Varint(&ttl)) return damaged("a lease is cut");
    c.leases.emplace_back(static_cast<int64_t>(id), static_cast<int64_t>(ttl));
  }
  if (format >= 2 && (!in.Byte(&tag) || tag != 'A' || !in.Bytes(&c.auth_state))) {
    return damaged("no auth section");
  }
  std::vector<Version> versions;
  for (;;) {
    if (!in.Byte(&tag)) return damaged("it ends early");
    if (tag == 'E') {
      if (!in.Varint(&c.compact)) return damaged("the end is cut");
      break;
    }
    if (tag != 'K') return damaged("an unknown section");
    std::string_view key;
    uint64_t n = 0;
    if (!in.Bytes(&key) || !in.Varint(&n) || n > in.remaining()) return damaged("a key is cut");
    versions.resize(n);
    for (auto& v : versions) {
      char kind = 0;
      if (!in.Varint(&v.timestamp) || !in.Byte(&kind) || kind > 1 ||
          (kind == 1 && !in.Bytes(&v.value))) {
        return damaged("a version is cut");
      }
      v.deleted = kind == 0;
      if (kind == 0) v.value = {};
      if (v.timestamp == 0 || v.timestamp > c.revision) {
        return damaged("a version outside the snapshot");
      }
    }
    ++c.keys;
    if (on_key) {
      if (Status s = on_key(key, versions, body.size() - in.remaining()); !s.ok()) return s;
    }
  }
  if (!in.empty()) {
    std::string_view padding;
    if (!in.Byte(&tag) || tag != 'P' || !in.Bytes(&padding) || !in.empty()) {
      return damaged("bytes after its end");
    }
  }
  return c;
}

// The snapshot without its checksum, once the checksum matches.
Result<std::string_view> CheckedBody(std::string_view data) {
  if (data.size() < kMagic.size() + kDigestBytes || data.compare(0, kMagic.size(), kMagic) != 0) {
    return Status::InvalidArgument("it does not start as one");
  }
  const std::string_view body(data.data(), data.size() - kDigestBytes);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(body.data(), body.size(), digest, &len, EVP_sha256(), nullptr);
  if (len != kDigestBytes ||
      std::string_view(reinterpret_cast<const char*>(digest), len) != data.substr(body.size())) {
    return Status::InvalidArgument("its checksum does not match (cut short or damaged)");
  }
  return body;
}

}  // namespace

namespace {

// One node's snapshot, whole and checked: its body and what its walk found.
Result<std::pair<std::string_view, Contents>> CheckedNodeSnapshot(std::string_view snapshot) {
  auto damaged = [](const Status& why) {
    return Status::InvalidArgument("not a whole strata snapshot: " + why.message());
  };
  Result<std::string_view> body = CheckedBody(snapshot);
  if (!body.ok()) return damaged(body.status());
  Result<Contents> checked = Walk(*body, nullptr);
  if (!checked.ok()) return damaged(checked.status());
  if (checked->cluster) {
    return Status::InvalidArgument("a cluster's snapshot is restored into a cluster");
  }
  return std::pair<std::string_view, Contents>{*body, *checked};
}

}  // namespace

Result<RestoreReport> CheckNodeSnapshot(std::string_view snapshot) {
  Result<std::pair<std::string_view, Contents>> checked = CheckedNodeSnapshot(snapshot);
  if (!checked.ok()) return checked.status();
  const Contents& c = checked->second;
  RestoreReport report;
  report.revision = static_cast<int64_t>(c.revision);
  report.compact_revision = static_cast<int64_t>(c.compact);
  report.keys = c.keys;
  report.leases = c.leases.size();
  report.auth_state.assign(c.auth_state);
  return report;
}

Result<RestoreReport> RestoreNodeSnapshot(std::string_view snapshot, MvccStore* store,
                                          std::vector<std::pair<int64_t, int64_t>>* leases) {
  Result<std::pair<std::string_view, Contents>> checked = CheckedNodeSnapshot(snapshot);
  if (!checked.ok()) return checked.status();
  const std::string_view body = checked->first;
  RestoreReport report;
  Result<Contents> walked =
      Walk(body, [&](std::string_view key, const std::vector<Version>& versions, size_t) {
        for (const Version& v : versions) {
          auto w = v.deleted ? store->Delete(key, Timestamp(v.timestamp))
                             : store->Put(key, v.value, Timestamp(v.timestamp));
          if (!w.ok()) return w.status();
          ++report.versions;
        }
        ++report.keys;
        return Status::Ok();
      });
  if (!walked.ok()) return walked.status();
  store->RestoreMaxTimestamp(Timestamp(walked->revision));
  if (walked->compact > 0) store->Compact(Timestamp(walked->compact));
  report.revision = static_cast<int64_t>(walked->revision);
  report.compact_revision = static_cast<int64_t>(walked->compact);
  report.leases = walked->leases.size();
  if (leases != nullptr) *leases = walked->leases;
  report.auth_state.assign(walked->auth_state);
  return report;
}

namespace {

// A snapshot checked whole for a restore, and what the restore does with
// it.
struct RestorePlan {
  std::string_view body;
  Contents contents;
  bool into_member = false;  // options.keep: a member's (or a shard's) keys
  bool translate = false;    // one node's snapshot into a member
  bool untranslate = false;  // a cluster's snapshot into one node
  std::optional<AuthState> auth;
  uint64_t revision = 0;
};

// Checks `data` (named `name` in errors) and `options` before anything is
// written anywhere.
Result<RestorePlan> PlanRestore(std::string_view data, const std::string& name,
                                const RestoreOptions& options) {
  auto damaged = [&](const std::string& why) {
    return Status::InvalidArgument(name + " is not a whole strata snapshot: " + why);
  };
  Result<std::string_view> checked_body = CheckedBody(data);
  if (!checked_body.ok()) return damaged(checked_body.status().message());
  RestorePlan plan;
  plan.body = *checked_body;
  // The whole structure first (cheap next to the writes): nothing lands
  // anywhere from a file that cannot be restored.
  auto checked = Walk(plan.body, nullptr);
  if (!checked.ok()) return damaged(checked.status().message());
  plan.contents = std::move(checked.value());
  const Contents& c = plan.contents;
  // One node's snapshot into a member (translate), or a cluster's into one
  // node (untranslate): as the other keeps the same things.
  plan.into_member = options.keep != nullptr;
  plan.translate = plan.into_member && !c.cluster;
  plan.untranslate = !plan.into_member && c.cluster;
  if (plan.untranslate && (!options.cluster_layout || !options.cluster_layout->etcd_key_of ||
                           !options.cluster_layout->lease_of_record)) {
    return Status::InvalidArgument(
        name + " is a cluster's snapshot: restoring it into one node needs the cluster's layout");
  }
  if (plan.translate && !options.cluster_layout) {
    return Status::InvalidArgument(name +
                                   " is one node's snapshot: restoring it into a member of a "
                                   "cluster needs the cluster's layout");
  }
  if (!c.auth_state.empty()) {
    plan.auth = AuthState::Decode(c.auth_state);
    if (!plan.auth) return damaged("its users and roles cannot be decoded");
  }
  plan.revision =
      options.as_of_revision > 0 ? static_cast<uint64_t>(options.as_of_revision) : c.revision;
  if (plan.revision > c.revision) {
    return Status::InvalidArgument("revision " + std::to_string(plan.revision) +
                                   " is newer than the snapshot (revision " +
                                   std::to_string(c.revision) + ")");
  }
  if (plan.revision < c.compact) {
    return Status::InvalidArgument("revision " + std::to_string(plan.revision) +
                                   " is below the snapshot's compaction (" +
                                   std::to_string(c.compact) + "): its history is gone");
  }
  return plan;
}

// Writes what `plan` restores into `mvcc` (keys, a member's lease and
// users' records, the revision, the compaction); `ttls` gets the leases a
// node keeps in its lease journal.
Result<RestoreReport> WriteRestore(const RestorePlan& plan, size_t total_bytes,
                                   const RestoreOptions& options, MvccStore& mvcc,
                                   std::map<int64_t, int64_t>* ttls) {
  const Contents& c = plan.contents;
  const uint64_t revision = plan.revision;
  RestoreReport report;
  report.revision = static_cast<int64_t>(revision);
  std::set<int64_t> held_leases;           // leases keys hold at `revision`
  std::map<int64_t, int64_t> record_ttls;  // untranslate: the cluster's lease records
  size_t reported = 0;
  auto written =
      Walk(plan.body,
           [&](std::string_view stored_key, const std::vector<Version>& versions,
               size_t done) -> Status {
             std::string_view key = stored_key;  // etcd's key, where there is one
             std::optional<std::string> etcd_key;
             if (plan.untranslate) {
               if (std::optional<int64_t> lease = options.cluster_layout->lease_of_record(key)) {
                 // One version, at the snapshot.
                 if (!versions.empty() && !versions.back().deleted &&
                     versions.back().timestamp <= revision) {
                   record_ttls[*lease] =
                       std::strtoll(std::string(versions.back().value).c_str(), nullptr, 10);
                 }
                 return Status::Ok();
               }
               etcd_key = options.cluster_layout->etcd_key_of(key);
               if (!etcd_key) return Status::Ok();  // the cluster's own bookkeeping
               key = *etcd_key;
             }
             const std::string engine_key =
                 plan.translate ? options.cluster_layout->key(key) : std::string(key);
             // Another member's key is still looked at: its lease's records may
             // be this member's.
             const bool mine = !plan.into_member || options.keep(engine_key);
             const Version* last = nullptr;
             for (const auto& v : versions) {
               if (v.timestamp > revision) continue;
               last = &v;
               if (!mine) continue;
               auto w = v.deleted ? mvcc.Delete(engine_key, Timestamp(v.timestamp))
                                  : mvcc.Put(engine_key, v.value, Timestamp(v.timestamp));
               if (!w.ok()) return w.status();
               ++report.versions;
             }
             if (last == nullptr) return Status::Ok();
             if (mine) ++report.keys;
             // (A cluster's leases are keys: its 'L' section is empty.)
             if (!last->deleted && (!c.cluster || plan.untranslate)) {
               auto kv = StoredToKeyValue(key, Timestamp(last->timestamp), last->value);
               if (kv && kv->lease != 0) {
                 held_leases.insert(kv->lease);
                 if (plan.translate) {
                   const std::string attached = options.cluster_layout->attachment(kv->lease, key);
                   if (options.keep(attached)) {
                     auto w = mvcc.Put(attached, "", Timestamp(last->timestamp));
                     if (!w.ok()) return w.status();
                   }
                 }
               }
             }
             if (options.progress && done - reported >= (size_t{4} << 20)) {
               reported = done;
               options.progress(done, total_bytes);
             }
             return Status::Ok();
           });
  if (!written.ok()) return written.status();
  // A node's leases: those of its 'L' section (restoring a cluster's into
  // one node: its lease records), and those its keys held at the revision
  // but that were gone by the snapshot, granted again. (Into a member, a
  // cluster's leases are keys, restored with the rest.)
  if (!c.cluster || plan.untranslate) {
    if (plan.untranslate) {
      *ttls = record_ttls;
    } else {
      ttls->insert(c.leases.begin(), c.leases.end());
    }
    const size_t granted = ttls->size();
    for (int64_t id : held_leases) ttls->emplace(id, kRegrantedLeaseTtl);
    report.leases = ttls->size();
    report.leases_regranted = ttls->size() - granted;
  }
  if (plan.translate) {
    // The leases and the users as the cluster's records, at the revision.
    for (const auto& [id, ttl] : *ttls) {
      const std::string record = options.cluster_layout->lease_record(id);
      if (!options.keep(record)) continue;
      auto w = mvcc.Put(record, std::to_string(ttl), Timestamp(revision));
      if (!w.ok()) return w.status();
    }
    if (plan.auth && options.keep(options.cluster_layout->auth_record)) {
      auto w = mvcc.Put(options.cluster_layout->auth_record, c.auth_state, Timestamp(revision));
      if (!w.ok()) return w.status();
    }
  }
  // The revision itself survives even if its last write was compacted away.
  mvcc.RestoreMaxTimestamp(Timestamp(revision));
  if (c.compact > 0) {
    mvcc.Compact(Timestamp(c.compact));
    report.compact_revision = static_cast<int64_t>(c.compact);
  }
  if (plan.auth) report.users = plan.auth->users.size();
  report.auth_state.assign(c.auth_state);
  return report;
}

}  // namespace

Result<RestoreReport> RestoreSnapshot(const std::string& snapshot_file, const std::string& data_dir,
                                      const RestoreOptions& options) {
  std::ifstream file(snapshot_file, std::ios::binary);
  if (!file) return Status::NotFound("cannot open " + snapshot_file);
  const std::string data((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  Result<RestorePlan> plan = PlanRestore(data, snapshot_file, options);
  if (!plan.ok()) return plan.status();
  std::error_code ec;
  if (std::filesystem::exists(KvStoreDir(data_dir), ec)) {
    return Status::PreconditionFailed(data_dir + " already holds a store; restore into a new one");
  }
  std::filesystem::create_directories(data_dir, ec);
  if (ec) return Status::Unavailable("cannot create " + data_dir + ": " + ec.message());

  StoreOpenOptions store_options;
  store_options.durability.sync = SyncMode::kNone;  // one Sync at the end
  store_options.engine.max_key_bytes = size_t{64} << 20;
  auto store = Store::Open(KvStoreDir(data_dir), store_options);
  if (!store.ok()) return store.status();
  std::map<int64_t, int64_t> ttls;
  Result<RestoreReport> report =
      WriteRestore(*plan, data.size(), options, store.value()->mvcc(), &ttls);
  if (!report.ok()) return report.status();
  if (Status s = store.value()->Checkpoint(); !s.ok()) return s;
  if (Status s = store.value()->Sync(); !s.ok()) return s;

  if (!plan->into_member) {
    auto journal = StoreLeaseJournal::Open(LeaseStoreDir(data_dir), StoreOpenOptions{});
    if (!journal.ok()) return journal.status();
    for (const auto& [id, ttl] : ttls) {
      if (Status s = journal.value()->Record(id, ttl); !s.ok()) return s;
    }
    if (Status s = journal.value()->Sync(); !s.ok()) return s;
  }
  if (plan->auth) {
    // A cluster member's copy of the users and roles (server/cluster_auth.h)
    // is kept where one node keeps them.
    if (Status s = KeepAuthCopy(data_dir, plan->contents.auth_state); !s.ok()) return s;
  }
  if (options.progress) options.progress(data.size(), data.size());
  return *report;
}

Status KeepAuthCopy(const std::string& data_dir, std::string_view auth_state) {
  auto auth_journal = StoreAuthJournal::Open(AuthStoreDir(data_dir), StoreOpenOptions{});
  if (!auth_journal.ok()) return auth_journal.status();
  return auth_journal.value()->Save(std::string(auth_state));
}

Result<RestoreReport> RestoreMemberSnapshot(std::string_view snapshot, const std::string& name,
                                            const RestoreOptions& options, MvccStore* store) {
  if (!options.keep) {
    return Status::InvalidArgument("restoring a member's keys in memory needs which ones (keep)");
  }
  Result<RestorePlan> plan = PlanRestore(snapshot, name, options);
  if (!plan.ok()) return plan.status();
  std::map<int64_t, int64_t> ttls;  // a member's leases are its records
  return WriteRestore(*plan, snapshot.size(), options, *store, &ttls);
}

}  // namespace strata::service
