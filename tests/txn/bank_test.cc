// The bank: transfer threads move money between accounts in read-write
// transactions (retrying on conflict) while an auditor takes read-only
// snapshots of every account, by range scan and by point reads in the same
// transaction. Money is neither created nor destroyed, so every snapshot
// must add up to the opening total, with no account below zero; a snapshot
// that saw part of a transfer, or two snapshots mixed, would not.
//
// Each scenario runs for STRATA_STRESS_SECONDS (default 0.75 s).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "strata/mvcc_store.h"
#include "strata/status.h"
#include "strata/txn_store.h"
#include "txn_test_support.h"

namespace strata::txn_testing {
namespace {

using Clock = std::chrono::steady_clock;

constexpr int kAccounts = 10;
constexpr int64_t kOpeningBalance = 100;
constexpr int64_t kTotal = kAccounts * kOpeningBalance;
constexpr int kTransferThreads = 3;
constexpr int64_t kMaxTransfer = 30;

std::string AccountKey(int account) { return NumberedKey("acct/", account); }

std::optional<int64_t> ParseBalance(const std::string& text) {
  int64_t balance = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), balance);
  if (error != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return balance;
}

class Bank {
 public:
  explicit Bank(Isolation isolation) : isolation_(isolation) {
    std::vector<Write> opening;
    for (int i = 0; i < kAccounts; ++i) {
      opening.push_back({AccountKey(i), std::to_string(kOpeningBalance)});
    }
    CommitWrites(db_.db, opening);
  }

  void Run(Clock::duration duration) {
    const Clock::time_point deadline = Clock::now() + duration;
    std::vector<std::thread> tellers;
    for (int i = 0; i < kTransferThreads; ++i) {
      tellers.emplace_back([this, i, deadline] { Transfer(/*seed=*/i + 1, deadline); });
    }
    // The auditor runs until the tellers stop, and at least once after the
    // last transfer.
    std::thread auditor([this] {
      std::optional<Timestamp> previous;
      while (tellers_done_.load() < kTransferThreads) {
        Audit(&previous);
        std::this_thread::yield();  // leave the tellers most of the machine
      }
      Audit(&previous);
    });
    for (std::thread& teller : tellers) teller.join();
    auditor.join();
  }

  void Check() {
    std::lock_guard lock(failures_mutex_);
    for (const std::string& failure : failures_) ADD_FAILURE() << failure;
    EXPECT_EQ(failure_count_, 0u) << "broken invariants (first ones above)";
    EXPECT_GT(transfers_.load(), 0u);
    EXPECT_GT(audits_.load(), 0u);
    EXPECT_EQ(db_.db.GetStats().active_txns, 0u);

    // The store's latest state, read without a transaction.
    Result<ScanResult> latest =
        db_.store.Scan(KeyRange::WithPrefix("acct/"), Timestamp::Max(), kAccounts + 1);
    ASSERT_THAT(latest, IsOk());
    ASSERT_EQ(latest->items.size(), static_cast<size_t>(kAccounts));
    int64_t total = 0;
    for (const ScanItem& item : latest->items)
      total += ParseBalance(item.value).value_or(-1'000'000);
    EXPECT_EQ(total, kTotal);
    std::printf("%s: %llu transfers, %llu conflicts retried, %llu audits\n",
                IsolationName(isolation_), static_cast<unsigned long long>(transfers_.load()),
                static_cast<unsigned long long>(conflicts_.load()),
                static_cast<unsigned long long>(audits_.load()));
  }

 private:
  void Fail(std::string message) {
    std::lock_guard lock(failures_mutex_);
    if (failures_.size() < 10) failures_.push_back(std::move(message));
    ++failure_count_;
  }

  void Transfer(uint64_t seed, Clock::time_point deadline) {
    std::mt19937_64 rng(seed);
    while (Clock::now() < deadline) {
      const int from = static_cast<int>(rng() % kAccounts);
      const int to = (from + 1 + static_cast<int>(rng() % (kAccounts - 1))) % kAccounts;
      const int64_t amount = 1 + static_cast<int64_t>(rng() % kMaxTransfer);
      // Retry the same transfer until it commits (or is declined for want
      // of funds): a conflict means another transfer got there first.
      while (Clock::now() < deadline && TryTransfer(from, to, amount) == Outcome::kConflict) {
        ++conflicts_;
      }
    }
    ++tellers_done_;
  }

  enum class Outcome { kDone, kDeclined, kConflict, kFailed };

  Outcome TryTransfer(int from, int to, int64_t amount) {
    Result<Transaction> begun = db_.db.Begin(ReadWrite(isolation_));
    if (!begun.ok()) {
      Fail("Begin failed: " + StatusText(begun.status()));
      return Outcome::kFailed;
    }
    Transaction& txn = *begun;
    std::optional<int64_t> from_balance = ReadBalance(txn, AccountKey(from));
    std::optional<int64_t> to_balance = ReadBalance(txn, AccountKey(to));
    if (!from_balance || !to_balance) return Outcome::kFailed;
    if (*from_balance < amount) return Outcome::kDeclined;  // aborted by the destructor
    // Let the other tellers in between the reads and the writes, so that
    // transfers overlap and conflict even on few cores.
    std::this_thread::yield();
    if (Status s = txn.Put(AccountKey(from), std::to_string(*from_balance - amount)); !s.ok()) {
      Fail("Put failed: " + StatusText(s));
      return Outcome::kFailed;
    }
    if (Status s = txn.Put(AccountKey(to), std::to_string(*to_balance + amount)); !s.ok()) {
      Fail("Put failed: " + StatusText(s));
      return Outcome::kFailed;
    }
    Result<Timestamp> committed = txn.Commit();
    if (committed.ok()) {
      ++transfers_;
      return Outcome::kDone;
    }
    if (committed.status().code() == StatusCode::kConflict) return Outcome::kConflict;
    Fail("Commit failed: " + StatusText(committed.status()));
    return Outcome::kFailed;
  }

  std::optional<int64_t> ReadBalance(Transaction& txn, const std::string& key) {
    Result<ReadResult> read = txn.Get(key);
    if (!read.ok() || !read->found || read->deleted) {
      Fail("account " + key + " unreadable: " + StatusText(read.status()));
      return std::nullopt;
    }
    std::optional<int64_t> balance = ParseBalance(read->value);
    if (!balance) Fail("account " + key + " holds " + read->value);
    return balance;
  }

  // One snapshot of all accounts, two ways. Every other audit reads the
  // past instead: the snapshot of the audit before, which must still add
  // up while transfers commit above it.
  void Audit(std::optional<Timestamp>* previous) {
    const bool in_the_past = previous->has_value() && audits_.load() % 2 == 1;
    Result<Transaction> begun =
        db_.db.Begin(in_the_past ? ReadOnlyAt(**previous, isolation_) : ReadOnly(isolation_));
    if (!begun.ok()) {
      Fail("auditor Begin failed: " + StatusText(begun.status()));
      return;
    }
    Transaction& txn = *begun;
    const std::string at = " at ts " + std::to_string(txn.start_timestamp().value());

    Result<ScanResult> scan = txn.Scan(KeyRange::WithPrefix("acct/"), kAccounts + 1);
    if (!scan.ok() || scan->items.size() != static_cast<size_t>(kAccounts) || scan->more) {
      Fail("the scan did not return every account exactly once" + at);
      return;
    }
    int64_t scanned_total = 0;
    int64_t read_total = 0;
    for (int i = 0; i < kAccounts; ++i) {
      const ScanItem& item = scan->items[i];
      std::optional<int64_t> scanned = ParseBalance(item.value);
      std::optional<int64_t> read = ReadBalance(txn, AccountKey(i));
      if (item.key != AccountKey(i) || !scanned || !read) {
        Fail("unexpected account " + item.key + " = " + item.value + at);
        return;
      }
      if (*scanned != *read || *scanned < 0) {
        Fail(item.key + ": scanned " + item.value + ", read " + std::to_string(*read) + at);
      }
      scanned_total += *scanned;
      read_total += *read;
    }
    if (scanned_total != kTotal || read_total != kTotal) {
      Fail("totals " + std::to_string(scanned_total) + " (scan) and " + std::to_string(read_total) +
           " (reads)" + at + ", expected " + std::to_string(kTotal));
    }
    Result<Timestamp> committed = txn.Commit();
    if (!committed.ok()) Fail("a read-only commit failed: " + StatusText(committed.status()));
    *previous = txn.start_timestamp();
    ++audits_;
  }

  const Isolation isolation_;
  TestDb db_;
  std::atomic<uint64_t> transfers_{0};
  std::atomic<uint64_t> conflicts_{0};
  std::atomic<uint64_t> audits_{0};
  std::atomic<int> tellers_done_{0};
  std::mutex failures_mutex_;
  std::vector<std::string> failures_;  // REQUIRES: failures_mutex_
  uint64_t failure_count_ = 0;         // REQUIRES: failures_mutex_
};

void RunBank(Isolation isolation) {
  Bank bank(isolation);
  bank.Run(StressDuration(0.75));
  bank.Check();
}

TEST(BankTest, TransfersPreserveTheTotalUnderSerializable) { RunBank(Isolation::kSerializable); }

// Each transfer writes every account it read, so first-committer-wins alone
// keeps the books straight: snapshot isolation must pass too.
TEST(BankTest, TransfersPreserveTheTotalUnderSnapshot) { RunBank(Isolation::kSnapshot); }

}  // namespace
}  // namespace strata::txn_testing
