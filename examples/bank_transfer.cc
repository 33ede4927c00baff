// Serializable transfers between accounts in a durable store, from several
// threads, retried on conflict; the total never changes, before or after a
// reopen (recovery from the directory's log).
#include <cstdio>
#include <filesystem>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "strata/store.h"
#include "strata/txn_store.h"

namespace {

constexpr int kAccounts = 8;
constexpr int kStartBalance = 100;

std::string Account(int i) { return "account/" + std::to_string(i); }

// One transfer, retried until it commits (first committer wins; the loser
// sees kConflict and tries again from a fresh snapshot).
void Transfer(strata::TxnStore& db, int from, int to, int amount) {
  for (;;) {
    strata::TxnOptions serializable;
    serializable.isolation = strata::Isolation::kSerializable;
    auto txn = db.Begin(serializable);
    if (!txn.ok()) continue;
    auto a = txn->Get(Account(from));
    auto b = txn->Get(Account(to));
    if (!a.ok() || !b.ok()) continue;
    const int balance_a = std::stoi(a->value), balance_b = std::stoi(b->value);
    if (balance_a < amount) return txn->Abort();  // not enough: nothing to do
    (void)txn->Put(Account(from), std::to_string(balance_a - amount));
    (void)txn->Put(Account(to), std::to_string(balance_b + amount));
    if (txn->Commit().ok()) return;
  }
}

int Total(strata::Store& store) {
  int total = 0;
  for (int i = 0; i < kAccounts; ++i) total += std::stoi(store.mvcc().Get(Account(i))->value);
  return total;
}

}  // namespace

int main() {
  const auto dir = std::filesystem::temp_directory_path() / "strata-bank-example";
  std::filesystem::remove_all(dir);
  {
    auto store = strata::Store::Open(dir.string(), {});
    if (!store.ok()) return 1;
    strata::TxnStore& db = (*store)->db();
    auto setup = db.Begin();
    for (int i = 0; i < kAccounts; ++i) (void)setup->Put(Account(i), std::to_string(kStartBalance));
    if (!setup->Commit().ok()) return 1;
    std::vector<std::thread> tellers;
    for (int t = 0; t < 4; ++t) {
      tellers.emplace_back([&db, t] {
        std::mt19937 rng(t);
        for (int n = 0; n < 200; ++n) {
          const int from = static_cast<int>(rng() % kAccounts),
                    to = static_cast<int>(rng() % kAccounts);
          if (from != to) Transfer(db, from, to, static_cast<int>(rng() % 30));
        }
      });
    }
    for (auto& t : tellers) t.join();
    if (Total(**store) != kAccounts * kStartBalance) return 1;
  }
  auto reopened = strata::Store::Open(dir.string(), {});
  const bool ok = reopened.ok() && Total(**reopened) == kAccounts * kStartBalance;
  reopened = strata::Status::Ok();  // close before removing the directory
  std::filesystem::remove_all(dir);
  std::puts(ok ? "bank_transfer: ok" : "bank_transfer: FAILED");
  return ok ? 0 : 1;
}
