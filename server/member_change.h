// Membership changes as etcd's Cluster service asks for them (MemberAdd,
// MemberRemove, MemberPromote) in a replicated cluster:
//  - the bytes a member that does not lead hands the leader (a leader
//    query, answered by the leader without a log entry of its own: the
//    Raft change it proposes is the entry);
//  - the leader's check of a change against the group's members, giving
//    the Raft change to propose or etcd's error (same code, same text);
//  - the leader's answer as bytes: the members once the change is applied
//    there (etcd's responses list them), or the error.
// A member's number is its etcd member id, derived from its peer URL and
// the cluster token (server/etcd_ids.h), so the member added knows its
// own from its flags; the Raft change carries the peer URL (its context)
// for every replica's registry (replication/incarnations.h).
#ifndef STRATA_SERVER_MEMBER_CHANGE_H_
#define STRATA_SERVER_MEMBER_CHANGE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "raft/raft.h"
#include "service/service_error.h"

namespace strata::server {

struct MemberChange {
  enum class Kind : char { kAdd = 'a', kAddLearner = 'l', kRemove = 'r', kPromote = 'p' };
  Kind kind = Kind::kAdd;
  uint64_t id = 0;       // the member (an added one's, derived from peer_url)
  std::string peer_url;  // kAdd, kAddLearner

  bool operator==(const MemberChange&) const = default;
};

// A member of the group as a member knows it: a name and client URLs once
// the member published them, empty before (etcd shows an added member so
// until it starts).
struct MemberInfo {
  uint64_t id = 0;
  std::string name;
  std::string peer_url;
  std::vector<std::string> client_urls;
  bool learner = false;

  bool operator==(const MemberInfo&) const = default;
};

// Leader queries that begin with this byte are membership changes (lease
// queries begin with a letter of their own, service/replica_leases.h).
inline constexpr char kMemberChangeByte = 'm';
std::string EncodeMemberChange(const MemberChange& change);
std::optional<MemberChange> DecodeMemberChange(std::string_view bytes);

// etcd allows one learner at a time; a learner is promoted once it holds
// at least this share of the leader's log (etcd's readiness check).
inline constexpr size_t kMaxLearners = 1;
inline constexpr double kPromotableShare = 0.9;

// On the leader: the Raft change that does `change`, or etcd's error for
// it (a peer URL a member has, a member not found, a promotion of a voter
// or of a learner that is behind, a second learner), with etcd's strict
// reconfiguration check (its default): a voter added, removed or promoted
// must leave a majority of voters that answered the leader within an
// election timeout ("not enough started members"), so a change never
// costs the cluster its majority.
service::Reply<raft::ConfChange> PlanMemberChange(const MemberChange& change,
                                                  const raft::Raft& leader);

// The host:port of a peer URL (http:// or https://, a port, no path, at
// most kMaxPeerUrlBytes), or nullopt: etcd's "given member URLs are
// invalid".
inline constexpr size_t kMaxPeerUrlBytes = 1024;
std::optional<std::string> PeerHostPort(std::string_view url);

// The leader's answer: the members once the change is applied, or the
// error's code and text; an answer that does not decode is an internal
// error.
std::string EncodeMemberChangeDone(const std::vector<MemberInfo>& members);
std::string EncodeMemberChangeError(const service::ServiceError& error);
service::Reply<std::vector<MemberInfo>> DecodeMemberChangeAnswer(std::string_view answer);

}  // namespace strata::server

#endif  // STRATA_SERVER_MEMBER_CHANGE_H_
