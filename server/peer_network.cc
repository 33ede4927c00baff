#include "server/peer_network.h"

#include <algorithm>
#include <utility>
#include <vector>

namespace strata::server {

// One peer: its queue and the thread that writes it to the peer's stream.
struct PeerNetwork::Link {
  std::string peer;
  std::string address;
  Mutex mu;
  CondVar changed;
  std::deque<peerpb::Message> queue STRATA_GUARDED_BY(mu);
  bool stopping STRATA_GUARDED_BY(mu) = false;
  grpc::ClientContext* call STRATA_GUARDED_BY(mu) = nullptr;  // the open stream, to cancel
  uint64_t sent STRATA_GUARDED_BY(mu) = 0;
  uint64_t dropped STRATA_GUARDED_BY(mu) = 0;
  uint64_t reconnects STRATA_GUARDED_BY(mu) = 0;
  std::thread thread;
};

PeerNetwork::PeerNetwork(std::string self, PeerNetworkOptions options, OnMessage on_message)
    : self_(std::move(self)), options_(options), on_message_(std::move(on_message)) {}

PeerNetwork::~PeerNetwork() {
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
  for (Link* link : links) link->thread.join();
}

void PeerNetwork::AddPeer(const std::string& peer, const std::string& address) {
  MutexLock lock(mu_);
  if (links_.count(peer) != 0) return;
  auto link = std::make_unique<Link>();
  link->peer = peer;
  link->address = address;
  Link* raw = link.get();
  links_.emplace(peer, std::move(link));
  raw->thread = std::thread([this, raw] { RunLink(raw); });
}

bool PeerNetwork::Send(const std::string& peer, peerpb::Message message) {
  Link* link = nullptr;
  {
    MutexLock lock(mu_);
    auto it = links_.find(peer);
    if (it == links_.end()) return false;
    link = it->second.get();
  }
  {
    MutexLock lock(link->mu);
    if (link->queue.size() >= options_.max_queued) {
      ++link->dropped;
      return false;
    }
    link->queue.push_back(std::move(message));
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
      {
        UniqueLock lock(link->mu);
        link->changed.Wait(lock, [&]() STRATA_REQUIRES(link->mu) {
          return link->stopping || !link->queue.empty();
        });
        if (link->stopping) break;
        size_t bytes = 0;
        while (!link->queue.empty() &&
               static_cast<size_t>(batch.messages_size()) < options_.max_batch) {
          const size_t size = link->queue.front().ByteSizeLong();
          if (batch.messages_size() > 0 && bytes + size > options_.max_batch_bytes) break;
          bytes += size;
          *batch.add_messages() = std::move(link->queue.front());
          link->queue.pop_front();
        }
      }
      healthy = writer->Write(batch);
      MutexLock lock(link->mu);
      if (healthy) {
        link->sent += static_cast<uint64_t>(batch.messages_size());
        backoff = options_.min_backoff;
      }
    }
    writer->WritesDone();
    (void)writer->Finish();
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

grpc::Status PeerNetwork::Service::Deliver(grpc::ServerContext*,
                                           grpc::ServerReader<peerpb::Batch>* reader,
                                           peerpb::Delivered*) {
  peerpb::Batch batch;
  while (reader->Read(&batch)) {
    for (peerpb::Message& message : *batch.mutable_messages()) {
      network_->received_.fetch_add(1, std::memory_order_relaxed);
      network_->on_message_(batch.from(), std::move(message));
    }
  }
  return grpc::Status::OK;
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
