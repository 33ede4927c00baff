#include "cluster/forwarded_calls.h"

namespace strata::cluster {

namespace {

size_t BytesOf(const PeerReply& reply) {
  if (const auto* forwarded = std::get_if<ForwardReply>(&reply)) return forwarded->reply.size();
  if (const auto* error = std::get_if<PeerError>(&reply)) return error->status.message().size();
  return 0;
}

}  // namespace

void ForwardedCalls::Serve(std::string_view from, uint64_t id, uint64_t now_ms, Respond respond,
                           const Run& run) {
  if (id == 0) return run(std::move(respond));
  Expire(now_ms);
  Key key{std::string(from), id};
  if (auto it = calls_.find(key); it != calls_.end()) {
    ++duplicates_;
    Call& call = it->second;
    if (!call.answered) return call.waiting.push_back(std::move(respond));
    if (call.answer) return respond(*call.answer);
    // kIoError, not kUnavailable: it may have made a change, so no caller
    // may take it as "not served here, try another replica".
    return respond(PeerError{Status::IoError(
        "the answer to this forwarded request was dropped for space; it ran once, and its "
        "outcome is unknown here")});
  }
  if (FirstSentMillis(id) < start_ms_) {
    return respond(PeerError{Status::IoError(
        "a forwarded request first sent before this member restarted: it may have run before, "
        "so it is not run again; its outcome is unknown")});
  }
  if (FirstSentMillis(id) + static_cast<uint64_t>(options_.max_copy_age.count()) < now_ms) {
    return respond(PeerError{Status::Unavailable("a forwarded request arrived more than " +
                                                 std::to_string(options_.max_copy_age.count()) +
                                                 " ms after it was first sent; it was not run")});
  }
  calls_.emplace(key, Call{});
  by_age_.emplace_back(now_ms, key);
  // `run` may answer before it returns: the entry exists by then.
  run([this, key, respond = std::move(respond)](PeerReply reply) mutable {
    respond(reply);
    Answer(key, std::move(reply));
  });
}

void ForwardedCalls::Answer(const Key& key, PeerReply reply) {
  auto it = calls_.find(key);
  if (it == calls_.end() || it->second.answered) return;
  Call& call = it->second;
  call.answered = true;
  std::vector<Respond> waiting = std::move(call.waiting);
  call.waiting.clear();
  call.answer_bytes = BytesOf(reply);
  kept_bytes_ += call.answer_bytes;
  answered_.push_back(key);
  for (Respond& respond : waiting) respond(reply);
  call.answer = std::move(reply);  // `call` is still valid: responders do not reenter Serve
  DropAnswersOverBound();
}

void ForwardedCalls::Expire(uint64_t now_ms) {
  const auto retention = static_cast<uint64_t>(options_.retention.count());
  while (!by_age_.empty() && by_age_.front().first + retention < now_ms) {
    Key key = std::move(by_age_.front().second);
    by_age_.pop_front();
    auto it = calls_.find(key);
    if (it == calls_.end()) continue;
    if (!it->second.answered) {
      // Still running: remembered until it answers, and for a while after.
      by_age_.emplace_back(now_ms, std::move(key));
      continue;
    }
    kept_bytes_ -= it->second.answer ? it->second.answer_bytes : 0;
    calls_.erase(it);
  }
  // Keys of expired calls leave answered_ lazily: drop them from its front.
  while (!answered_.empty() && !calls_.contains(answered_.front())) answered_.pop_front();
}

void ForwardedCalls::DropAnswersOverBound() {
  while (kept_bytes_ > options_.max_kept_bytes && !answered_.empty()) {
    auto it = calls_.find(answered_.front());
    answered_.pop_front();
    if (it == calls_.end() || !it->second.answer) continue;
    kept_bytes_ -= it->second.answer_bytes;
    it->second.answer.reset();
  }
}

}  // namespace strata::cluster
