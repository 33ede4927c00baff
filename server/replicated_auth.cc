#include "server/replicated_auth.h"

#include <charconv>
#include <optional>
#include <utility>

#include "service/auth_store.h"

namespace strata::server {
namespace {

// Replies: saved, or the record's state after kConflictByte.
constexpr char kSavedByte = '+';
constexpr char kConflictByte = '!';
constexpr char kMalformedByte = '-';

// The frame ahead of the inner state's snapshot: the magic, the record's
// length in decimal, a space, the record.
constexpr std::string_view kFrameMagic = "strata-auth-record/1\n";

// A decimal number ending at a space, taken off the front of `in`.
std::optional<uint64_t> TakeNumber(std::string_view* in) {
  uint64_t n = 0;
  const char* end = in->data() + in->size();
  auto [at, error] = std::from_chars(in->data(), end, n);
  if (error != std::errc() || at == end || *at != ' ') return std::nullopt;
  in->remove_prefix(static_cast<size_t>(at - in->data()) + 1);
  return n;
}

// The revision an encoded state carries; nullopt if it does not decode.
std::optional<uint64_t> RevisionOf(std::string_view encoded) {
  std::optional<service::AuthState> state = service::AuthState::Decode(encoded);
  if (!state) return std::nullopt;
  return state->revision;
}

}  // namespace

std::string AuthRecordState::SaveCommand(std::string_view encoded, uint64_t replaces) {
  std::string command(1, kSaveByte);
  command += std::to_string(replaces);
  command += ' ';
  command += encoded;
  return command;
}

std::string AuthRecordState::TokenCommand(std::string_view token, std::string_view user) {
  // A token is the server's own letters and digits: never a newline.
  std::string command(1, kTokenByte);
  command += token;
  command += '\n';
  command += user;
  return command;
}

Status AuthRecordState::DecodeSaveReply(std::string_view reply, std::string* newer) {
  if (reply.size() == 1 && reply[0] == kSavedByte) return Status::Ok();
  if (!reply.empty() && reply[0] == kConflictByte) {
    newer->assign(reply.substr(1));
    return Status(StatusCode::kConflict, "the users and roles changed meanwhile");
  }
  return Status::InvalidArgument("a change of users and roles that the cluster could not read");
}

std::string AuthRecordState::Apply(raft::Index index, std::string_view command) {
  if (command.empty() || (command[0] != kSaveByte && command[0] != kTokenByte)) {
    return inner_->Apply(index, command);
  }
  std::string_view rest = command.substr(1);
  if (command[0] == kTokenByte) {
    const size_t newline = rest.find('\n');
    if (newline == std::string_view::npos) return std::string(1, kMalformedByte);
    if (on_token_)
      on_token_(std::string(rest.substr(0, newline)), std::string(rest.substr(newline + 1)));
    return std::string(1, kSavedByte);
  }
  const std::optional<uint64_t> replaces = TakeNumber(&rest);
  const std::optional<uint64_t> revision = RevisionOf(rest);
  if (!replaces || !revision) return std::string(1, kMalformedByte);
  // Only over the state it was made on: the proposer makes it again over
  // the newer one.
  if (*replaces != record_revision_) return kConflictByte + record_;
  record_.assign(rest);
  record_revision_ = *revision;
  if (on_state_) on_state_(record_);
  return std::string(1, kSavedByte);
}

std::string AuthRecordState::SnapshotWith(std::string_view record, std::string_view inner) {
  std::string out(kFrameMagic);
  out += std::to_string(record.size());
  out += ' ';
  out += record;
  out += inner;
  return out;
}

std::string AuthRecordState::Save() const { return SnapshotWith(record_, inner_->Save()); }

std::function<std::string()> AuthRecordState::SaveLater() {
  return [record = record_, inner = inner_->SaveLater()] { return SnapshotWith(record, inner()); };
}

Status AuthRecordState::Restore(std::string_view snapshot) {
  std::string record;
  uint64_t revision = 1;
  if (snapshot.substr(0, kFrameMagic.size()) == kFrameMagic) {
    snapshot.remove_prefix(kFrameMagic.size());
    const std::optional<uint64_t> length = TakeNumber(&snapshot);
    if (!length || *length > snapshot.size()) {
      return Status::InvalidArgument("a snapshot's users and roles are cut short");
    }
    record.assign(snapshot.substr(0, *length));
    snapshot.remove_prefix(*length);
    if (!record.empty()) {
      const std::optional<uint64_t> decoded = RevisionOf(record);
      if (!decoded) return Status::InvalidArgument("a snapshot's users and roles do not decode");
      revision = *decoded;
    }
  }
  if (Status restored = inner_->Restore(snapshot); !restored.ok()) return restored;
  record_ = std::move(record);
  record_revision_ = revision;
  if (on_state_ && !record_.empty()) on_state_(record_);
  return Status::Ok();
}

}  // namespace strata::server
