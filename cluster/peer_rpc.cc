#include "cluster/peer_rpc.h"

#include <algorithm>

namespace strata::cluster {

void PeerRpc::Call(std::string dest, std::optional<ShardId> shard, PeerRequest request,
                   Timestamp hlc, const CallOptions& options, Clock::time_point now,
                   Callback done) {
  const uint64_t call_id = next_call_id_++;
  std::vector<std::string> dests{std::move(dest)};
  for (const std::string& other : options.also_to) {
    if (other != dests.front()) dests.push_back(other);
  }
  PendingCall call{std::move(dests),
                   shard,
                   std::move(request),
                   hlc,
                   {},
                   now + options.first_retry,
                   now + options.give_up_after,
                   options.first_retry,
                   options.max_retry,
                   std::move(done)};
  const uint64_t msg_id = transport_->Send(call.dests[0], call.shard, call.request, call.hlc);
  call.msg_ids.push_back(msg_id);
  call_by_msg_id_[msg_id] = call_id;
  due_.emplace(std::min(call.next_send, call.deadline), call_id);
  calls_.emplace(call_id, std::move(call));
}

void PeerRpc::Forget(uint64_t call_id) {
  auto it = calls_.find(call_id);
  if (it == calls_.end()) return;
  for (uint64_t msg_id : it->second.msg_ids) call_by_msg_id_.erase(msg_id);
  calls_.erase(it);
}

bool PeerRpc::OnReply(uint64_t in_reply_to, const PeerReply& reply) {
  auto by_msg = call_by_msg_id_.find(in_reply_to);
  if (by_msg == call_by_msg_id_.end()) return false;
  auto it = calls_.find(by_msg->second);
  Callback done = std::move(it->second.done);
  copies_sent_ = it->second.msg_ids.size();
  Forget(it->first);
  done(&reply);  // may start new calls
  return true;
}

std::optional<PeerRpc::Copy> PeerRpc::CopyOf(uint64_t msg_id) const {
  auto by_msg = call_by_msg_id_.find(msg_id);
  if (by_msg == call_by_msg_id_.end()) return std::nullopt;
  const PendingCall& call = calls_.at(by_msg->second);
  const auto copy = static_cast<size_t>(
      std::find(call.msg_ids.begin(), call.msg_ids.end(), msg_id) - call.msg_ids.begin());
  return Copy{&call.dests[copy % call.dests.size()], call.shard, call.dests.size() > 1};
}

PeerRpc::Clock::time_point PeerRpc::RunTimers(Clock::time_point now) {
  while (!due_.empty() && due_.top().first <= now) {
    const uint64_t call_id = due_.top().second;
    due_.pop();
    auto it = calls_.find(call_id);
    if (it == calls_.end()) continue;  // answered since
    PendingCall& call = it->second;
    if (call.deadline <= now) {
      Callback done = std::move(call.done);
      copies_sent_ = call.msg_ids.size();
      Forget(call_id);
      ++gave_up_;
      done(nullptr);
      continue;
    }
    if (call.next_send > now) {  // an older entry for this call
      due_.emplace(std::min(call.next_send, call.deadline), call_id);
      continue;
    }
    const std::string& dest = call.dests[call.msg_ids.size() % call.dests.size()];
    const uint64_t msg_id = transport_->Send(dest, call.shard, call.request, call.hlc);
    ++resends_;
    call.msg_ids.push_back(msg_id);
    call_by_msg_id_[msg_id] = call_id;
    call.retry = std::min(call.retry * 2, call.max_retry);
    call.next_send = now + call.retry;
    due_.emplace(std::min(call.next_send, call.deadline), call_id);
  }
  return due_.empty() ? Clock::time_point::max() : due_.top().first;
}

}  // namespace strata::cluster
