#include "server/cluster_auth.h"

#include <utility>

namespace strata::server {
namespace {

// How long a change waits for the cluster to save it, and for the other
// members to take it (or a token).
constexpr std::chrono::seconds kSaveWait{10};
constexpr std::chrono::seconds kTellWait{1};

}  // namespace

ClusterAuthJournal::ClusterAuthJournal(service::StoreAuthJournal* copy)
    : copy_(copy), writer_([this] { WriteCopies(); }) {}

ClusterAuthJournal::~ClusterAuthJournal() {
  {
    MutexLock lock(mu_);
    stopping_ = true;
  }
  cv_.NotifyAll();
  writer_.join();
}

void ClusterAuthJournal::KeepCopy(std::string encoded) {
  {
    MutexLock lock(mu_);
    pending_ = std::move(encoded);
  }
  cv_.NotifyAll();
}

// Only the newest state matters: one that arrives while another is being
// written replaces any still waiting.
void ClusterAuthJournal::WriteCopies() {
  UniqueLock lock(mu_);
  for (;;) {
    cv_.Wait(lock, [&]() STRATA_REQUIRES(mu_) { return stopping_ || pending_.has_value(); });
    if (!pending_) return;
    std::string encoded = std::move(*pending_);
    pending_.reset();
    lock.unlock();
    // A copy that fails to save is no loss of record: the cluster holds it.
    if (copy_) (void)copy_->Save(encoded);
    lock.lock();
  }
}

Status ClusterAuthJournal::Save(const std::string& encoded, uint64_t replaces, std::string* newer) {
  SharedAuthRecord* front = front_.load(std::memory_order_acquire);
  if (!front) return Status::Unavailable("the cluster member is not running");
  if (Status s = front->SaveAuth(encoded, replaces, newer, kSaveWait); !s.ok()) return s;
  KeepCopy(encoded);
  (void)front->TellAuthState(encoded, kTellWait);
  return Status::Ok();
}

std::optional<std::string> ClusterAuthJournal::Load() {
  return copy_ ? copy_->Load() : std::nullopt;
}

void ClusterAuthJournal::TokenAssigned(const std::string& token, const std::string& user) {
  if (SharedAuthRecord* front = front_.load(std::memory_order_acquire)) {
    (void)front->TellAuthToken(token, user, kTellWait);
  }
}

}  // namespace strata::server
