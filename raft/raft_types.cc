#include "raft/raft_types.h"

#include <charconv>

namespace strata::raft {

// "v 4", "l 4", "r 4": a kind's letter and the node, as text (entries are
// rare, and a human reading a log dump can tell what they say).
std::string ConfChange::Encode() const {
  const char kind_letter = kind == Kind::kAddVoter ? 'v' : kind == Kind::kAddLearner ? 'l' : 'r';
  return std::string(1, kind_letter) + " " + std::to_string(node);
}

std::optional<ConfChange> ConfChange::Decode(std::string_view data) {
  if (data.size() < 3 || data[1] != ' ') return std::nullopt;
  ConfChange change;
  switch (data[0]) {
    case 'v':
      change.kind = Kind::kAddVoter;
      break;
    case 'l':
      change.kind = Kind::kAddLearner;
      break;
    case 'r':
      change.kind = Kind::kRemove;
      break;
    default:
      return std::nullopt;
  }
  const char* end = data.data() + data.size();
  auto [at, error] = std::from_chars(data.data() + 2, end, change.node);
  if (error != std::errc() || at != end || change.node == kNobody) return std::nullopt;
  return change;
}

}  // namespace strata::raft
