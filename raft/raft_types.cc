#include "raft/raft_types.h"

#include <charconv>

namespace strata::raft {

// "v 4", "l 4", "r 4": a kind's letter and the node, as text (entries are
// rare, and a human reading a log dump can tell what they say), then, if
// there is a context, a space and the context's bytes.
std::string ConfChange::Encode() const {
  const char kind_letter = kind == Kind::kAddVoter ? 'v' : kind == Kind::kAddLearner ? 'l' : 'r';
  std::string out = std::string(1, kind_letter) + " " + std::to_string(node);
  if (!context.empty()) out += " " + context;
  return out;
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
  if (error != std::errc() || change.node == kNobody) return std::nullopt;
  if (at != end) {
    if (*at != ' ' || at + 1 == end) return std::nullopt;
    change.context.assign(at + 1, end);
  }
  return change;
}

}  // namespace strata::raft
