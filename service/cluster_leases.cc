#include "service/cluster_leases.h"

#include <algorithm>
#include <cstdlib>
#include <utility>

#include "cluster/peer_messages.h"
#include "service/cluster_kv.h"
#include "service/lease_rules.h"
#include "service/stored_value.h"

namespace strata::service {
namespace {

constexpr char kRecordTag[] = {'\0', 'L'};
constexpr char kAttachmentTag[] = {'\0', 'A'};
constexpr size_t kIdBytes = 8;

void AppendId(std::string* out, int64_t id) {
  const auto u = static_cast<uint64_t>(id);
  for (int shift = 56; shift >= 0; shift -= 8) out->push_back(static_cast<char>(u >> shift));
}

// The lease id a record or attachment key names (after its two tag bytes).
int64_t IdOf(std::string_view key) {
  uint64_t u = 0;
  for (size_t i = 2; i < 2 + kIdBytes && i < key.size(); ++i) {
    u = (u << 8) | static_cast<uint8_t>(key[i]);
  }
  return static_cast<int64_t>(u);
}

KeyRange PrefixRange(const char (&tag)[2], std::optional<int64_t> id) {
  std::string prefix(tag, 2);
  if (id) AppendId(&prefix, *id);
  return KeyRange::WithPrefix(prefix);
}

}  // namespace

std::string ClusterLeases::RecordKey(int64_t id) {
  std::string key(kRecordTag, 2);
  AppendId(&key, id);
  return key;
}

std::optional<int64_t> ClusterLeases::LeaseOfRecordKey(std::string_view key) {
  if (key.size() != 2 + kIdBytes || key.substr(0, 2) != std::string_view(kRecordTag, 2)) {
    return std::nullopt;
  }
  return IdOf(key);
}

std::string ClusterLeases::AttachmentKey(int64_t id, std::string_view etcd_key) {
  std::string key(kAttachmentTag, 2);
  AppendId(&key, id);
  key.append(etcd_key);
  return key;
}

ClusterLeases::ClusterLeases(cluster::Member* member, ClusterLeasesOptions options)
    : member_(member), options_(options) {
  member_->timers().Every(options_.expiry_check, [this, alive = alive_] {
    if (*alive) ExpireDue();
  });
  member_->timers().Every(options_.discover_interval, [this, alive = alive_] {
    if (*alive) Discover();
  });
  // A member that starts learns the leases it homes at once.
  member_->timers().After(std::chrono::milliseconds(0), [this, alive = alive_] {
    if (*alive) Discover();
  });
}

ClusterLeases::~ClusterLeases() { *alive_ = false; }

void ClusterLeases::Grant(int64_t id, int64_t ttl, Done<LeaseGrantResult> done) {
  Reply<int64_t> granted = GrantedTtl(ttl, options_.limits);
  if (!granted.ok()) return done(granted.error());
  ttl = granted.value();
  // Whether the id is taken is the home's to say.
  if (id == 0) id = ChooseLeaseId(&rng_, [](int64_t) { return false; });
  ForwardChange(id, "grant", std::to_string(ttl), [id, ttl, done](Reply<int64_t> revision) {
    if (!revision.ok()) return done(revision.error());
    done(LeaseGrantResult{id, ttl, revision.value()});
  });
}

void ClusterLeases::GrantHere(int64_t id, int64_t ttl, Done<int64_t> done) {
  // Kept here: those homed and those being granted (a lease revoked
  // elsewhere stays counted until the next look at the records).
  if (granting_.count(id)) return done(etcd_errors::LeaseExist());
  if (auto full = RoomForGrant(homed_.size() + granting_.size(), options_.limits)) {
    return done(*full);
  }
  cluster::Coordinator& coordinator = member_->coordinator();
  auto begun = coordinator.Begin(Isolation::kSerializable, false, std::nullopt);
  if (!begun.ok()) return done(ClusterError(begun.status()));
  granting_.insert(id);
  const uint64_t txn = begun->id;
  auto finish = [this, id, ttl, done, alive = alive_](Reply<int64_t> revision) {
    if (!*alive) return;
    granting_.erase(id);
    if (revision.ok()) {
      // The countdown starts now, as on one node.
      homed_[id] =
          Home{ttl, member_->timers().now() + std::chrono::seconds(ttl), false, ShardOf(id)};
    }
    done(std::move(revision));
  };
  coordinator.Get(txn, RecordKey(id), [this, txn, id, ttl, finish](Result<ReadResult> r) {
    cluster::Coordinator& coordinator = member_->coordinator();
    if (!r.ok()) {
      (void)coordinator.Abort(txn);
      return finish(ClusterError(r.status()));
    }
    if (r->found && !r->deleted) {
      (void)coordinator.Abort(txn);
      return finish(etcd_errors::LeaseExist());
    }
    if (Status s = coordinator.Write(txn, RecordKey(id), std::to_string(ttl)); !s.ok()) {
      (void)coordinator.Abort(txn);
      return finish(ClusterError(s));
    }
    coordinator.Commit(txn, [finish](Result<Timestamp> c) {
      if (c.ok()) return finish(RevisionOf(*c));
      // A conflict here is another grant of the same id: it exists now.
      if (c.status().code() == StatusCode::kConflict) return finish(etcd_errors::LeaseExist());
      finish(ClusterError(c.status()));
    });
  });
}

void ClusterLeases::Revoke(int64_t id, Done<int64_t> done) {
  ForwardChange(id, "revoke", "", std::move(done));
}

void ClusterLeases::RevokeHere(int64_t id, Done<int64_t> done) {
  End(
      id,
      [this, id, done, alive = alive_](Reply<int64_t> r) {
        if (!*alive) return;
        if (r.ok() || r.error().message == etcd_errors::LeaseNotFound().message) {
          homed_.erase(id);
        }
        done(std::move(r));
      },
      0);
}

void ClusterLeases::End(int64_t id, Done<int64_t> done, int attempt) {
  cluster::Coordinator& coordinator = member_->coordinator();
  auto begun = coordinator.Begin(Isolation::kSerializable, false, std::nullopt);
  if (!begun.ok()) return done(ClusterError(begun.status()));
  const uint64_t txn = begun->id;
  struct Ending {
    size_t waiting = 1;
    bool found = false;
    bool more = false;
    std::optional<ServiceError> error;
  };
  auto ending = std::make_shared<Ending>();
  auto finish = [this, txn, id, done, attempt, ending, alive = alive_] {
    if (!*alive || --ending->waiting > 0) return;
    cluster::Coordinator& coordinator = member_->coordinator();
    if (ending->error || !ending->found) {
      (void)coordinator.Abort(txn);
      return done(ending->error ? *ending->error : etcd_errors::LeaseNotFound());
    }
    // The record goes with the last attachments (a lease with more
    // attachments than one read takes ends in several transactions).
    if (!ending->more) (void)coordinator.Write(txn, RecordKey(id), std::nullopt);
    coordinator.Commit(txn, [this, id, done, attempt, ending, alive](Result<Timestamp> c) {
      if (!*alive) return;
      if (!c.ok()) {
        if (c.status().code() == StatusCode::kConflict && attempt + 1 < options_.max_attempts) {
          return End(id, done, attempt + 1);
        }
        return done(ClusterError(c.status()));
      }
      if (ending->more) return End(id, done, 0);
      done(RevisionOf(*c));
    });
  };
  // Every read below holds `waiting` up, as does this setup until its end.
  ++ending->waiting;
  coordinator.Get(txn, RecordKey(id), [ending, finish](Result<ReadResult> r) {
    if (!r.ok()) {
      ending->error = ClusterError(r.status());
    } else {
      ending->found = r->found && !r->deleted;
    }
    finish();
  });
  ++ending->waiting;
  coordinator.Scan(txn, PrefixRange(kAttachmentTag, id), cluster::kMaxRawLimit,
                   [this, txn, id, ending, finish, alive = alive_](Result<ScanResult> attached) {
                     if (!*alive) return;
                     if (!attached.ok()) {
                       ending->error = ClusterError(attached.status());
                       return finish();
                     }
                     ending->more = attached->more;
                     cluster::Coordinator& coordinator = member_->coordinator();
                     for (const ScanItem& item : attached->items) {
                       const std::string etcd_key = item.key.substr(2 + kIdBytes);
                       (void)coordinator.Write(txn, item.key, std::nullopt);
                       // The key goes only if it still names this lease.
                       ++ending->waiting;
                       const std::string key = ClusterKv::EngineKey(etcd_key);
                       coordinator.Get(
                           txn, key, [this, txn, id, key, ending, finish](Result<ReadResult> r) {
                             if (!r.ok()) {
                               ending->error = ClusterError(r.status());
                             } else if (r->found && !r->deleted) {
                               auto sv = DecodeStoredValue(r->value);
                               if (sv && sv->lease == id) {
                                 (void)member_->coordinator().Write(txn, key, std::nullopt);
                               }
                             }
                             finish();
                           });
                     }
                     finish();
                   });
  finish();
}

namespace {

// A forwarded grant's or revocation's answer: "ok REVISION" or
// "error CODE MESSAGE" (a ServiceError).
std::string EncodeRevision(const Reply<int64_t>& reply) {
  if (reply.ok()) return "ok " + std::to_string(reply.value());
  return "error " + std::to_string(static_cast<int>(reply.error().code)) + " " +
         reply.error().message;
}

Reply<int64_t> DecodeRevision(const std::string& answer) {
  if (answer.starts_with("ok ")) return std::strtoll(answer.c_str() + 3, nullptr, 10);
  char* rest = nullptr;
  if (answer.starts_with("error ")) {
    const long code = std::strtol(answer.c_str() + 6, &rest, 10);
    if (*rest == ' ') return ServiceError{static_cast<ErrorCode>(code), std::string(rest + 1)};
  }
  return ServiceError{ErrorCode::kInternal,
                      "strata: a lease's home member answered in a way this member cannot read"};
}

}  // namespace

void ClusterLeases::Forward(int64_t id, const std::string& verb, Done<std::string> done,
                            const std::string& argument) {
  std::string request = verb + " " + std::to_string(id);
  if (!argument.empty()) request += " " + argument;
  member_->router().Forward(RecordKey(id), std::move(request),
                            [done = std::move(done)](Result<std::string> r) {
                              if (!r.ok()) return done(ClusterError(r.status()));
                              done(std::move(*r));
                            });
}

void ClusterLeases::ForwardChange(int64_t id, const std::string& verb, const std::string& argument,
                                  Done<int64_t> done) {
  Forward(
      id, verb,
      [done = std::move(done)](Reply<std::string> r) {
        if (!r.ok()) return done(r.error());
        done(DecodeRevision(r.value()));
      },
      argument);
}

void ClusterLeases::KeepAlive(int64_t id, Done<int64_t> done) {
  Forward(id, "renew", [done = std::move(done)](Reply<std::string> r) {
    if (!r.ok()) return done(r.error());
    done(std::strtoll(r.value().c_str(), nullptr, 10));
  });
}

void ClusterLeases::TimeToLive(int64_t id, bool with_keys, Done<LeaseTimeToLiveResult> done) {
  Forward(id, "ttl", [this, id, with_keys, done, alive = alive_](Reply<std::string> r) {
    if (!*alive) return;
    if (!r.ok()) return done(r.error());
    LeaseTimeToLiveResult result;
    result.id = id;
    char* rest = nullptr;
    result.ttl = std::strtoll(r.value().c_str(), &rest, 10);
    result.granted_ttl = std::strtoll(rest, nullptr, 10);
    if (!with_keys || result.ttl < 0) return done(std::move(result));
    // The keys: attachments whose key still names this lease.
    member_->router().Scan(PrefixRange(kAttachmentTag, id), Timestamp::Max(), cluster::kMaxRawLimit,
                           [this, id, result, done, alive](Result<ScanResult> attached) mutable {
                             if (!*alive) return;
                             if (!attached.ok()) return done(ClusterError(attached.status()));
                             std::vector<std::string> keys;
                             for (const ScanItem& item : attached->items) {
                               keys.push_back(ClusterKv::EngineKey(item.key.substr(2 + kIdBytes)));
                             }
                             cluster::Coordinator& coordinator = member_->coordinator();
                             const Timestamp snapshot = coordinator.HoldSnapshot();
                             coordinator.ReadKeys(
                                 keys, snapshot,
                                 [this, id, keys, result, done, snapshot,
                                  alive](Result<std::vector<ReadResult>> reads) mutable {
                                   if (!*alive) return;
                                   member_->coordinator().ReleaseSnapshot(snapshot);
                                   if (!reads.ok()) return done(ClusterError(reads.status()));
                                   for (size_t i = 0; i < keys.size(); ++i) {
                                     const ReadResult& r = (*reads)[i];
                                     if (!r.found || r.deleted) continue;
                                     auto sv = DecodeStoredValue(r.value);
                                     if (sv && sv->lease == id)
                                       result.keys.push_back(keys[i].substr(1));
                                   }
                                   done(std::move(result));
                                 });
                           });
  });
}

void ClusterLeases::Leases(Done<std::vector<int64_t>> done) {
  member_->router().Scan(PrefixRange(kRecordTag, std::nullopt), Timestamp::Max(),
                         cluster::kMaxRawLimit, [done = std::move(done)](Result<ScanResult> r) {
                           if (!r.ok()) return done(ClusterError(r.status()));
                           std::vector<int64_t> ids;
                           for (const ScanItem& item : r->items) {
                             ids.push_back(IdOf(item.key));
                           }
                           done(std::move(ids));
                         });
}

std::optional<ClusterLeases::Home*> ClusterLeases::Renew(int64_t id) {
  const auto now = member_->timers().now();
  auto it = homed_.find(id);
  if (it == homed_.end()) {
    const cluster::ShardId shard = ShardOf(id);
    const cluster::ShardServer* server = LedHere(shard);
    if (server == nullptr) return std::nullopt;
    Result<ReadResult> record = server->store().Get(RecordKey(id), Timestamp::Max());
    if (!record.ok() || !record->found || record->deleted) return std::nullopt;
    it = homed_
             .emplace(id, Home{std::strtoll(record->value.c_str(), nullptr, 10), now, false, shard})
             .first;
  }
  if (it->second.expiring) return std::nullopt;  // ending: no longer renewable
  it->second.deadline = now + std::chrono::seconds(it->second.ttl);
  return &it->second;
}

void ClusterLeases::ServeForward(const std::string& request,
                                 std::function<void(cluster::PeerReply)> respond) {
  const size_t space = request.find(' ');
  const std::string verb = request.substr(0, space);
  char* rest = nullptr;
  const int64_t id =
      space == std::string::npos ? 0 : std::strtoll(request.c_str() + space + 1, &rest, 10);
  auto answer_revision = [respond](Reply<int64_t> reply) {
    respond(cluster::ForwardReply{EncodeRevision(reply)});
  };
  if (verb == "grant" && rest != nullptr && *rest == ' ') {
    return GrantHere(id, std::strtoll(rest + 1, nullptr, 10), answer_revision);
  }
  if (verb == "revoke") return RevokeHere(id, answer_revision);
  respond(ServeQuestion(verb, id));
}

cluster::PeerReply ClusterLeases::ServeQuestion(const std::string& verb, int64_t id) {
  if (verb == "renew") {
    auto home = Renew(id);
    return cluster::ForwardReply{home ? std::to_string((*home)->ttl) : "0"};
  }
  if (verb == "ttl") {
    auto it = homed_.find(id);
    if (it == homed_.end()) {
      auto learned = Renew(id);  // a lease granted elsewhere starts counting now
      if (!learned) return cluster::ForwardReply{"-1 0"};
      it = homed_.find(id);
    }
    // Expired and being revoked: gone, as far as a client can tell.
    if (it->second.expiring) return cluster::ForwardReply{"-1 0"};
    const auto left =
        std::chrono::ceil<std::chrono::seconds>(it->second.deadline - member_->timers().now());
    return cluster::ForwardReply{std::to_string(std::max<int64_t>(0, left.count())) + " " +
                                 std::to_string(it->second.ttl)};
  }
  return cluster::PeerError{Status::InvalidArgument("no such lease request: " + verb)};
}

void ClusterLeases::ExpireDue() {
  const auto now = member_->timers().now();
  std::vector<int64_t> due;
  for (auto& [id, home] : homed_) {
    // A shard led elsewhere now: its leader counts (Discover forgets it).
    if (!home.expiring && home.deadline <= now && LedHere(home.shard)) due.push_back(id);
  }
  for (int64_t id : due) {
    homed_[id].expiring = true;
    // Ended (or already gone): RevokeHere forgets it; else try again later.
    RevokeHere(id, [this, id, alive = alive_](Reply<int64_t> r) {
      if (!*alive || r.ok()) return;
      if (auto it = homed_.find(id); it != homed_.end()) it->second.expiring = false;
    });
  }
}

void ClusterLeases::Discover() {
  // The shards led here, and no others: a member that stopped leading one
  // forgets its leases (whose countdowns its new leader keeps), and one
  // that became its leader learns them from a first pass.
  std::map<cluster::ShardId, Discovery> led;
  for (cluster::ShardId shard : member_->ShardsServed()) {
    if (LedHere(shard) == nullptr) continue;
    auto it = discovery_.find(shard);
    led[shard] = it == discovery_.end() ? Discovery{} : it->second;
  }
  discovery_ = std::move(led);
  for (auto it = homed_.begin(); it != homed_.end();) {
    if (!it->second.expiring && discovery_.count(it->second.shard) == 0) {
      it = homed_.erase(it);
    } else {
      ++it;
    }
  }
  for (auto& [shard, discovery] : discovery_) DiscoverShard(*LedHere(shard), discovery);
}

void ClusterLeases::DiscoverShard(const cluster::ShardServer& server, Discovery& discovery) {
  const cluster::ShardId shard = server.shard();
  // One page of the shard's records a look, on from where the last one
  // stopped, so a look costs the same however many leases there are. The
  // first pass after a start (or after becoming the shard's leader) reads
  // page after page at once: until it ends, some leases have no countdown.
  KeyRange range = PrefixRange(kRecordTag, std::nullopt);
  const uint64_t first = discovery.from;
  if (first != 0) range.start = RecordKey(static_cast<int64_t>(first));
  Result<ScanResult> records = server.store().Scan(range, Timestamp::Max(), options_.discover_page);
  if (!records.ok()) return;
  const bool more = records->more && !records->items.empty();
  const uint64_t last =
      more ? static_cast<uint64_t>(IdOf(records->items.back().key)) : ~uint64_t{0};
  const auto now = member_->timers().now();
  std::set<int64_t> present;
  for (const ScanItem& item : records->items) {
    const int64_t id = IdOf(item.key);
    present.insert(id);
    if (homed_.count(id) == 0 && granting_.count(id) == 0) {
      const int64_t ttl = std::strtoll(item.value.c_str(), nullptr, 10);
      homed_.emplace(id, Home{ttl, now + std::chrono::seconds(ttl), false, shard});
    }
  }
  // Records gone from the part of the key space this page covered (a
  // restore, or an End that ran before a restart): nothing left to expire.
  for (auto it = homed_.lower_bound(static_cast<int64_t>(first));
       it != homed_.end() && static_cast<uint64_t>(it->first) <= last;) {
    if (!it->second.expiring && it->second.shard == shard && present.count(it->first) == 0) {
      it = homed_.erase(it);
    } else {
      ++it;
    }
  }
  discovery.from = more ? last + 1 : 0;
  if (!more) {
    discovery.first_pass_done = true;
  } else if (!discovery.first_pass_done) {
    member_->timers().After(std::chrono::milliseconds(1), [this, shard, alive = alive_] {
      if (!*alive) return;
      auto it = discovery_.find(shard);
      const cluster::ShardServer* led = LedHere(shard);
      if (it != discovery_.end() && led != nullptr) DiscoverShard(*led, it->second);
    });
  }
}

}  // namespace strata::service
