#include "server/member_change.h"

#include <charconv>

#include "rpc.pb.h"

namespace strata::server {

using service::ErrorCode;
using service::ServiceError;

// As text: the byte, the kind's letter, the id in hex, a space and the
// peer URL (empty but for an addition).
std::string EncodeMemberChange(const MemberChange& change) {
  char id[17];
  auto [end, error] = std::to_chars(id, id + sizeof id, change.id, 16);
  (void)error;  // 16 hex digits always fit
  return std::string{kMemberChangeByte, static_cast<char>(change.kind)} + std::string(id, end) +
         " " + change.peer_url;
}

std::optional<MemberChange> DecodeMemberChange(std::string_view bytes) {
  if (bytes.size() < 2 || bytes[0] != kMemberChangeByte) return std::nullopt;
  MemberChange change;
  change.kind = static_cast<MemberChange::Kind>(bytes[1]);
  switch (change.kind) {
    case MemberChange::Kind::kAdd:
    case MemberChange::Kind::kAddLearner:
    case MemberChange::Kind::kRemove:
    case MemberChange::Kind::kPromote:
      break;
    default:
      return std::nullopt;
  }
  const char* end = bytes.data() + bytes.size();
  auto [at, error] = std::from_chars(bytes.data() + 2, end, change.id, 16);
  if (error != std::errc() || at == end || *at != ' ' || change.id == 0) return std::nullopt;
  change.peer_url.assign(at + 1, end);
  return change;
}

namespace {

ServiceError NotEnoughStarted() {
  return {ErrorCode::kFailedPrecondition,
          "etcdserver: re-configuration failed due to not enough started members"};
}

}  // namespace

service::Reply<raft::ConfChange> PlanMemberChange(const MemberChange& change,
                                                  const raft::Raft& leader) {
  const bool voter = leader.voters().count(change.id) != 0;
  const bool learner = leader.learners().count(change.id) != 0;
  switch (change.kind) {
    case MemberChange::Kind::kAdd:
    case MemberChange::Kind::kAddLearner: {
      // The id derives from the peer URL: one taken is a URL taken.
      if (voter || learner) {
        return ServiceError{ErrorCode::kFailedPrecondition, "etcdserver: Peer URLs already exists"};
      }
      const bool as_learner = change.kind == MemberChange::Kind::kAddLearner;
      if (as_learner && leader.learners().size() >= kMaxLearners) {
        return ServiceError{ErrorCode::kFailedPrecondition,
                            "etcdserver: too many learner members in cluster"};
      }
      // A voter that has not started yet counts against the majority.
      if (!as_learner &&
          !leader.ActiveMajorityAfter({raft::ConfChange::Kind::kAddVoter, change.id})) {
        return NotEnoughStarted();
      }
      return raft::ConfChange{
          as_learner ? raft::ConfChange::Kind::kAddLearner : raft::ConfChange::Kind::kAddVoter,
          change.id, change.peer_url};
    }
    case MemberChange::Kind::kRemove:
      if (!voter && !learner) {
        return ServiceError{ErrorCode::kNotFound, "etcdserver: member not found"};
      }
      if (voter && !leader.ActiveMajorityAfter({raft::ConfChange::Kind::kRemove, change.id})) {
        return NotEnoughStarted();
      }
      return raft::ConfChange{raft::ConfChange::Kind::kRemove, change.id, ""};
    case MemberChange::Kind::kPromote:
      if (!voter && !learner) {
        return ServiceError{ErrorCode::kNotFound, "etcdserver: member not found"};
      }
      if (!learner) {
        return ServiceError{ErrorCode::kFailedPrecondition,
                            "etcdserver: can only promote a learner member"};
      }
      if (static_cast<double>(leader.MatchOf(change.id)) <
          kPromotableShare * static_cast<double>(leader.log().last_index())) {
        return ServiceError{ErrorCode::kFailedPrecondition,
                            "etcdserver: can only promote a learner member which is in sync with "
                            "leader"};
      }
      if (!leader.ActiveMajorityAfter({raft::ConfChange::Kind::kAddVoter, change.id})) {
        return NotEnoughStarted();
      }
      return raft::ConfChange{raft::ConfChange::Kind::kAddVoter, change.id, ""};
  }
  return ServiceError{ErrorCode::kInternal, "strata: a membership change of no known kind"};
}

std::optional<std::string> PeerHostPort(std::string_view url) {
  if (url.size() > kMaxPeerUrlBytes) return std::nullopt;
  for (std::string_view scheme : {"http://", "https://"}) {
    if (url.substr(0, scheme.size()) != scheme) continue;
    std::string_view host_port = url.substr(scheme.size());
    while (!host_port.empty() && host_port.back() == '/') host_port.remove_suffix(1);
    const size_t colon = host_port.rfind(':');
    if (colon == 0 || colon == std::string_view::npos || colon + 1 == host_port.size() ||
        host_port.find('/') != std::string_view::npos) {
      return std::nullopt;
    }
    for (char c : host_port.substr(colon + 1)) {
      if (c < '0' || c > '9') return std::nullopt;
    }
    return std::string(host_port);
  }
  return std::nullopt;
}

namespace {

// A done answer begins so, an error with its code (1 to 16).
constexpr char kDoneByte = '+';

ServiceError Unreadable() {
  return {ErrorCode::kInternal, "strata: a membership answer this member cannot read"};
}

}  // namespace

// The members as etcd's own message says them.
std::string EncodeMemberChangeDone(const std::vector<MemberInfo>& members) {
  etcdserverpb::MemberListResponse list;
  for (const MemberInfo& member : members) {
    etcdserverpb::Member* out = list.add_members();
    out->set_id(member.id);
    out->set_name(member.name);
    if (!member.peer_url.empty()) out->add_peerurls(member.peer_url);
    for (const std::string& url : member.client_urls) out->add_clienturls(url);
    out->set_islearner(member.learner);
  }
  return kDoneByte + list.SerializeAsString();
}

std::string EncodeMemberChangeError(const ServiceError& error) {
  std::string out(1, static_cast<char>(error.code));
  out += error.message;
  return out;
}

service::Reply<std::vector<MemberInfo>> DecodeMemberChangeAnswer(std::string_view answer) {
  if (answer.empty()) return Unreadable();
  if (answer.front() == kDoneByte) {
    etcdserverpb::MemberListResponse list;
    if (!list.ParseFromArray(answer.data() + 1, static_cast<int>(answer.size() - 1))) {
      return Unreadable();
    }
    std::vector<MemberInfo> members;
    for (const etcdserverpb::Member& in : list.members()) {
      MemberInfo member;
      member.id = in.id();
      member.name = in.name();
      if (in.peerurls_size() > 0) member.peer_url = in.peerurls(0);
      member.client_urls.assign(in.clienturls().begin(), in.clienturls().end());
      member.learner = in.islearner();
      members.push_back(std::move(member));
    }
    return members;
  }
  const auto code = static_cast<int>(static_cast<unsigned char>(answer[0]));
  if (code < static_cast<int>(ErrorCode::kCanceled) ||
      code > static_cast<int>(ErrorCode::kUnauthenticated)) {
    return Unreadable();
  }
  return ServiceError{static_cast<ErrorCode>(code), std::string(answer.substr(1))};
}

}  // namespace strata::server
