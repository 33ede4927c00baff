#include "server/peer_network.h"

#include <unistd.h>

#include <algorithm>
#include <utility>
#include <vector>

#include "base/thread_name.h"

namespace strata::server {

namespace {

using Clock = std::chrono::steady_clock;

}  // namespace

// One peer: its queue and the thread that writes it to the peer's stream.
struct PeerNetwork::Link {
  // A message on its way, and whether the process dies once it is written
  // (faults only).
  struct Outgoing {
    peerpb::Message message;
    bool crash_after = false;
    bool again = false;  // queued again after a write that failed
  };

  std::string peer;
  std::string address;
  Mutex mu;
  CondVar changed;
  std::deque<Outgoing> queue STRATA_GUARDED_BY(mu);
  // Faults only: messages sent late, and messages held until a file exists.
  std::multimap<Clock::time_point, Outgoing> later STRATA_GUARDED_BY(mu);
  std::vector<std::pair<std::string, Outgoing>> held STRATA_GUARDED_BY(mu);
  bool stopping STRATA_GUARDED_BY(mu) = false;
  grpc::ClientContext* call STRATA_GUARDED_BY(mu) = nullptr;  // the open stream, to cancel
  uint64_t sent STRATA_GUARDED_BY(mu) = 0;
  uint64_t dropped STRATA_GUARDED_BY(mu) = 0;
  uint64_t reconnects STRATA_GUARDED_BY(mu) = 0;
  std::thread thread;

  // Waits until there is something to write (true) or the link stops
  // (false). With faults it also moves what is due from `later` and
  // `held` to the queue, looking every few milliseconds, and writes
  // nothing once a crash has begun.
  bool WaitForMessages(UniqueLock& lock, PeerFaults* faults) STRATA_REQUIRES(mu) {
    if (faults == nullptr) {
      changed.Wait(lock, [&]() STRATA_REQUIRES(mu) { return stopping || !queue.empty(); });
      return !stopping;
    }
    for (;;) {
      const Clock::time_point now = Clock::now();
      while (!later.empty() && later.begin()->first <= now) {
        queue.push_back(std::move(later.begin()->second));
        later.erase(later.begin());
      }
      for (auto it = held.begin(); it != held.end();) {
        if (::access(it->first.c_str(), F_OK) == 0) {
          queue.push_back(std::move(it->second));
          it = held.erase(it);
        } else {
          ++it;
        }
      }
      if (stopping) return false;
      if (!queue.empty() && !faults->frozen()) return true;
      changed.WaitFor(lock, std::chrono::milliseconds(5),
                      [&]() STRATA_REQUIRES(mu) { return stopping; });
    }
  }
};

PeerNetwork::PeerNetwork(std::string self, PeerNetworkOptions options, OnMessage on_message)
    : self_(std::move(self)), options_(options), on_message_(std::move(on_message)) {}

PeerNetwork::~PeerNetwork() { StopLinks(); }

void PeerNetwork::StopLinks() {
  std::vector<Link*> links;
  {
    MutexLock lock(mu_);
    for (auto& [peer, link] : links_) links.push_back(link.get());
  }
  for (Link* link : links) {
    {
      MutexLock lock(link->mu);
      link->stopping = true;
      if (link->call != nullptr) link->call->TryCancel();
    }
    link->changed.NotifyAll();
  }
  for (Link* link : links) {
    if (link->thread.joinable()) link->thread.join();
  }
}

void PeerNetwork::AddPeer(const std::string& peer, const std::string& address) {
  MutexLock lock(mu_);
  if (links_.count(peer) != 0) return;
  auto link = std::make_unique<Link>();
  link->peer = peer;
  link->address = options_.faults ? options_.faults->Route(address) : address;
  Link* raw = link.get();
  links_.emplace(peer, std::move(link));
  raw->thread = std::thread([this, raw] {
    NameThisThread("strata-peer>" + raw->peer);
    RunLink(raw);
  });
}

void PeerNetwork::RemovePeer(const std::string& peer) {
  Link* link = nullptr;
  {
    MutexLock lock(mu_);
    removed_.insert(peer);
    auto it = links_.find(peer);
    if (it == links_.end()) return;
    link = it->second.get();
  }
  {
    MutexLock lock(link->mu);
    if (link->stopping) return;
    link->stopping = true;
    link->queue.clear();
    link->later.clear();
    link->held.clear();
    if (link->call != nullptr) link->call->TryCancel();
  }
  link->changed.NotifyAll();
  // Joined when the network is destroyed, with the others: the link stays
  // in links_ (Send may hold it).
}

bool PeerNetwork::Send(const std::string& peer, peerpb::Message message) {
  Link* link = nullptr;
  {
    MutexLock lock(mu_);
    auto it = links_.find(peer);
    if (it == links_.end()) return false;
    link = it->second.get();
  }
  PeerFaultPlan plan;
  if (options_.faults) plan = options_.faults->Plan(peer, message);
  {
    MutexLock lock(link->mu);
    if (link->stopping) return false;  // removed
    if (link->queue.size() + link->later.size() + link->held.size() >= options_.max_queued) {
      ++link->dropped;
      return false;
    }
    const Clock::time_point now = Clock::now();
    for (std::chrono::milliseconds copy : plan.copies) {
      link->later.emplace(now + plan.delay + copy, Link::Outgoing{message, false});
    }
    Link::Outgoing outgoing{std::move(message), plan.crash_after};
    if (!plan.hold_until.empty()) {
      link->held.emplace_back(plan.hold_until, std::move(outgoing));
    } else if (plan.delay.count() > 0) {
      link->later.emplace(now + plan.delay, std::move(outgoing));
    } else {
      link->queue.push_back(std::move(outgoing));
    }
  }
  link->changed.NotifyOne();
  return true;
}

void PeerNetwork::RunLink(Link* link) {
  std::chrono::milliseconds backoff = options_.min_backoff;
  for (;;) {
    auto channel = grpc::CreateChannel(link->address, options_.credentials
                                                          ? options_.credentials
                                                          : grpc::InsecureChannelCredentials());
    auto stub = peerpb::Peer::NewStub(channel);
    grpc::ClientContext context;
    peerpb::Delivered delivered;
    {
      MutexLock lock(link->mu);
      if (link->stopping) return;
      link->call = &context;
    }
    std::unique_ptr<grpc::ClientWriter<peerpb::Batch>> writer = stub->Deliver(&context, &delivered);
    bool healthy = true;
    while (healthy) {
      peerpb::Batch batch;
      batch.set_from(self_);
      batch.set_replication_factor(options_.replication_factor);
      std::string crash_after;  // the kind of a message planned crash_after
      std::vector<bool> again;  // whether each message of the batch was queued again
      {
        UniqueLock lock(link->mu);
        if (!link->WaitForMessages(lock, options_.faults.get())) break;
        size_t bytes = 0;
        while (!link->queue.empty() &&
               static_cast<size_t>(batch.messages_size()) < options_.max_batch) {
          const size_t size = link->queue.front().message.ByteSizeLong();
          if (batch.messages_size() > 0 && bytes + size > options_.max_batch_bytes) break;
          bytes += size;
          if (link->queue.front().crash_after) {
            crash_after = PeerFaults::KindOf(link->queue.front().message);
          }
          again.push_back(link->queue.front().again);
          *batch.add_messages() = std::move(link->queue.front().message);
          link->queue.pop_front();
          if (!crash_after.empty()) break;  // nothing after it leaves
        }
      }
      if (!crash_after.empty()) options_.faults->SetFrozen(true);
      healthy = writer->Write(batch);
      if (!crash_after.empty()) {
        if (healthy) options_.faults->CrashAfterWrite(link->peer, crash_after);
        options_.faults->SetFrozen(false);  // not written: no crash, as before
      }
      MutexLock lock(link->mu);
      if (healthy) {
        link->sent += static_cast<uint64_t>(batch.messages_size());
        backoff = options_.min_backoff;
      } else if (crash_after.empty()) {
        // A stream idle since its peer restarted fails on its first write.
        // Raft batches go out once more on the next stream (Raft takes a
        // batch twice alike): a PreVote lost so costs its campaign a whole
        // election timeout (a failover's tail, seen under the benchmark).
        // Nothing else: a forwarded write must not be applied twice.
        for (int i = batch.messages_size() - 1; i >= 0; --i) {
          if (again[static_cast<size_t>(i)] || !batch.messages(i).has_raft_batch()) continue;
          link->queue.push_front(
              Link::Outgoing{std::move(*batch.mutable_messages(i)), false, true});
        }
      }
    }
    writer->WritesDone();
    const grpc::Status ended = writer->Finish();
    if (ended.error_code() == grpc::StatusCode::FAILED_PRECONDITION &&
        ended.error_message() == kRemovedRefusal && on_removed_) {
      on_removed_(link->peer);
    }
    if (ended.error_code() == grpc::StatusCode::FAILED_PRECONDITION &&
        std::string_view(ended.error_message()).starts_with(kFactorRefusal)) {
      LogOnce("to " + link->peer,
              "member '" + link->peer + "' refuses this member: " + ended.error_message());
    }
    UniqueLock lock(link->mu);
    link->call = nullptr;
    if (link->stopping) return;
    ++link->reconnects;
    // Wait before reopening, unless stopped meanwhile.
    link->changed.WaitFor(lock, backoff,
                          [&]() STRATA_REQUIRES(link->mu) { return link->stopping; });
    if (link->stopping) return;
    backoff = std::min(backoff * 2, options_.max_backoff);
  }
}

grpc::Status PeerNetwork::Service::Join(grpc::ServerContext*, const peerpb::JoinRequest* request,
                                        peerpb::JoinReply* reply) {
  if (!network_->on_join_) {
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                        "this member takes no joining members (a replicated shards' cluster's "
                        "members do)");
  }
  return network_->on_join_(*request, reply);
}

grpc::Status PeerNetwork::Service::Deliver(grpc::ServerContext*,
                                           grpc::ServerReader<peerpb::Batch>* reader,
                                           peerpb::Delivered*) {
  peerpb::Batch batch;
  PeerFaults* faults = network_->options_.faults.get();
  std::string from;
  while (reader->Read(&batch)) {
    // Each batch: a stream opened before its sender was removed is cut too.
    if (network_->IsRemoved(batch.from())) {
      return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                          std::string(PeerNetwork::kRemovedRefusal));
    }
    if (grpc::Status refused = network_->CheckFactor(batch); !refused.ok()) return refused;
    from = batch.from();
    // A member about to be killed by a fault hears nothing more: it acts
    // on nothing that arrives after the message it dies after.
    if (faults != nullptr && faults->frozen()) continue;
    for (peerpb::Message& message : *batch.mutable_messages()) {
      network_->received_.fetch_add(1, std::memory_order_relaxed);
      network_->on_message_(batch.from(), std::move(message));
    }
  }
  if (!from.empty() && network_->on_stream_end_) network_->on_stream_end_(from);
  return grpc::Status::OK;
}

grpc::Status PeerNetwork::CheckFactor(const peerpb::Batch& batch) {
  const uint32_t own = options_.replication_factor;
  const uint32_t theirs = batch.replication_factor();
  if (own == 0 || theirs == 0 || own == theirs) return grpc::Status::OK;
  const std::string why = std::string(kFactorRefusal) + ": member '" + batch.from() +
                          "' has replication factor " + std::to_string(theirs) + ", member '" +
                          self_ + "' " + std::to_string(own) +
                          " (every member needs the same: it places the shards)";
  LogOnce("from " + batch.from(), "refused member '" + batch.from() + "': " + why);
  return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, why);
}

void PeerNetwork::LogOnce(const std::string& about, const std::string& line) {
  if (!options_.log) return;
  {
    MutexLock lock(mu_);
    std::string& last = last_logged_[about];
    if (last == line) return;
    last = line;
  }
  options_.log(line);
}

bool PeerNetwork::IsRemoved(const std::string& peer) const {
  MutexLock lock(mu_);
  return removed_.count(peer) != 0;
}

PeerNetworkStats PeerNetwork::Stats() const {
  PeerNetworkStats stats;
  stats.received = received_.load(std::memory_order_relaxed);
  MutexLock lock(mu_);
  for (const auto& [peer, link] : links_) {
    MutexLock link_lock(link->mu);
    stats.sent += link->sent;
    stats.dropped += link->dropped;
    stats.reconnects += link->reconnects;
  }
  return stats;
}

}  // namespace strata::server
