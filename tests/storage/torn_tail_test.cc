// A crash in the middle of a write leaves a torn tail: the last record only
// partly on disk, or followed by whatever the file held before. Recovery
// must drop exactly the incomplete part: the store comes back with a prefix
// of the acknowledged writes (all of them up to some record, none after),
// says so in RecoveryReport::torn_tail, and keeps working, so that the
// dropped bytes never resurface as "corruption in the middle" later.
//
// The crashes are simulated by cutting a copy of a cleanly closed log at
// every byte of its last records (and at random places before), and for
// real by SIGKILLing a writing child process.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "storage_test_support.h"
#include "strata/store.h"

namespace strata::storage_testing {
namespace {

std::string KeyOf(uint64_t i) { return NumberedKey("key-", i); }
std::string ValueOf(uint64_t i) { return NumberedKey("value-", i); }

// How the bytes from the cut on look after the simulated crash.
enum class Tail {
  kTruncated,  // the file ends at the cut
  kZeros,      // preallocated space: zeros up to the segment's full size
  kGarbage,    // a recycled or scribbled block: random bytes
};

const char* TailName(Tail tail) {
  switch (tail) {
    case Tail::kTruncated:
      return "truncated";
    case Tail::kZeros:
      return "zeros";
    case Tail::kGarbage:
      return "garbage";
  }
  return "?";
}

// A cleanly closed store whose log holds `writes` acknowledged raw puts
// (KeyOf(i) = ValueOf(i) at timestamp i + 1, one record each), with at
// least a few records in the last segment.
struct WrittenLog {
  TempDir dir;
  uint64_t writes = 0;
  std::vector<WalSegmentInfo> segments;

  const WalSegmentInfo& last() const { return segments.back(); }
  // Writes whose record lies in a segment before the last one.
  uint64_t WritesBeforeLastSegment() const {
    uint64_t count = 0;
    for (uint64_t i = 0; i < writes; ++i) {
      bool in_last = false;
      for (const WalRecordInfo& r : last().records) in_last = in_last || r.Mentions(KeyOf(i));
      if (!in_last) ++count;
    }
    return count;
  }
  // The writes whose record in the last segment satisfies `kept`.
  template <typename Pred>
  uint64_t WritesKeptIf(Pred kept) const {
    uint64_t count = WritesBeforeLastSegment();
    for (const WalRecordInfo& r : last().records) {
      if (!kept(r)) break;
      for (uint64_t i = 0; i < writes; ++i) count += r.Mentions(KeyOf(i)) ? 1 : 0;
    }
    return count;
  }
};

std::unique_ptr<WrittenLog> WriteLog(uint64_t min_writes, size_t min_last_records) {
  auto log = std::make_unique<WrittenLog>();
  {
    std::unique_ptr<Store> store = OpenOrFail(log->dir.path());
    if (store == nullptr) return nullptr;
    for (uint64_t i = 0;; ++i) {
      Result<WriteResult> put = store->db().RawPut(KeyOf(i), ValueOf(i), Timestamp(i + 1));
      EXPECT_TRUE(put.ok()) << StatusText(put.status());
      if (!put.ok()) return nullptr;
      log->writes = i + 1;
      if (log->writes < min_writes) continue;
      const std::vector<WalSegmentInfo> segments = ReadWal(log->dir.path());
      if (segments.size() >= 2 && segments.back().records.size() >= min_last_records) break;
    }
  }
  log->segments = ReadWal(log->dir.path());
  return log;
}

// Which writes the store holds, as a count k, after checking that they are
// exactly writes 0..k-1 with the right values (a prefix, nothing after).
std::optional<uint64_t> PresentPrefix(const MvccStore& store, uint64_t writes) {
  uint64_t present = 0;
  bool gap = false;
  for (uint64_t i = 0; i < writes; ++i) {
    Result<ReadResult> read = store.Get(KeyOf(i));
    if (!read.ok()) {
      ADD_FAILURE() << "Get failed: " << StatusText(read.status());
      return std::nullopt;
    }
    const bool found = read->found && !read->deleted;
    if (found) {
      EXPECT_EQ(read->value, ValueOf(i)) << "write " << i;
      EXPECT_EQ(read->timestamp, Timestamp(i + 1)) << "write " << i;
      EXPECT_EQ(read->version, 1u) << "write " << i;
    }
    if (found && gap) {
      ADD_FAILURE() << "write " << i << " survived but an earlier one was dropped: not a prefix";
      return std::nullopt;
    }
    if (found) ++present;
    if (!found) gap = true;
  }
  return present;
}

// Applies the crash to a copy of `log` cut at `cut` in its last segment.
void MakeTornCopy(const WrittenLog& log, const TempDir& copy, uint64_t cut, Tail tail,
                  uint32_t seed) {
  CopyDirFiles(log.dir.path(), copy.path());
  const std::string path = copy.File(log.last().name);
  const uint64_t size = FileSize(path);
  switch (tail) {
    case Tail::kTruncated:
      TruncateFile(path, cut);
      break;
    case Tail::kZeros:
      OverwriteBytes(path, cut, std::string(size - cut, '\0'));
      break;
    case Tail::kGarbage: {
      std::mt19937 rng(seed);
      std::string garbage(std::max<uint64_t>(size - cut, 64), '\0');
      for (char& c : garbage) c = static_cast<char>(rng() | 1);  // never all-zero
      OverwriteBytes(path, cut, garbage);
      break;
    }
  }
}

// One simulated crash: cut the last segment at `cut`, open, check the
// prefix and torn_tail; if `then_write`, also write more, reopen, check.
void CheckCut(const WrittenLog& log, uint64_t cut, Tail tail, bool then_write) {
  SCOPED_TRACE(std::string("cut at ") + std::to_string(cut) + " of " + log.last().name + ", tail " +
               TailName(tail));
  TempDir copy;
  MakeTornCopy(log, copy, cut, tail, static_cast<uint32_t>(cut));

  // The record the cut falls into, if it falls inside one.
  const WalRecordInfo* cut_record = nullptr;
  bool at_boundary = cut == log.last().data_end || cut == kSegmentHeaderBytes;
  for (const WalRecordInfo& r : log.last().records) {
    if (cut == r.offset) at_boundary = true;
    if (r.offset < cut && cut < r.padded_end()) cut_record = &r;
  }
  // Bytes of an incomplete record left on disk (and not all zero, which
  // would read as the end of the data), or garbage after the cut: either
  // way recovery drops something and must say so.
  bool dropped = tail == Tail::kGarbage;
  if (cut_record != nullptr && cut < cut_record->payload_end()) {
    const std::string bytes = ReadFileBytes(log.dir.File(log.last().name));
    const std::string kept = bytes.substr(cut_record->offset, cut - cut_record->offset);
    dropped = dropped || kept.find_first_not_of('\0') != std::string::npos;
  }

  std::unique_ptr<Store> store = OpenOrFail(copy.path());
  ASSERT_NE(store, nullptr);
  const std::optional<uint64_t> present = PresentPrefix(store->mvcc(), log.writes);
  ASSERT_TRUE(present.has_value());
  // Every record whose padding is complete survives; no record whose
  // payload was cut does. (A record cut only in its padding may go either
  // way: its checksum does not cover the padding.)
  const uint64_t at_least =
      log.WritesKeptIf([&](const WalRecordInfo& r) { return r.padded_end() <= cut; });
  const uint64_t at_most =
      log.WritesKeptIf([&](const WalRecordInfo& r) { return r.payload_end() <= cut; });
  EXPECT_GE(*present, at_least);
  EXPECT_LE(*present, at_most);
  if (dropped) {
    EXPECT_TRUE(store->recovery().torn_tail.has_value()) << "bytes were dropped but not reported";
  } else if (at_boundary) {
    EXPECT_FALSE(store->recovery().torn_tail.has_value())
        << "nothing was dropped, yet: " << *store->recovery().torn_tail;
  }
  if (!then_write) return;

  // The store must go on from the cut: new writes, then a clean reopen
  // that sees them and no torn tail (the dropped bytes are really gone).
  constexpr uint64_t kMore = 5;
  for (uint64_t j = 0; j < kMore; ++j) {
    Result<WriteResult> put = store->db().RawPut(NumberedKey("more-", j), "after the crash",
                                                 Timestamp(log.writes + 10 + j));
    ASSERT_TRUE(put.ok()) << StatusText(put.status());
  }
  const StoreState before = CaptureState(store->mvcc());
  store.reset();
  store = OpenOrFail(copy.path());
  ASSERT_NE(store, nullptr);
  EXPECT_FALSE(store->recovery().torn_tail.has_value()) << *store->recovery().torn_tail;
  EXPECT_EQ(DescribeDifference(before, CaptureState(store->mvcc())), "");
  EXPECT_EQ(PresentPrefix(store->mvcc(), log.writes), present);
}

// Every byte of the last three records, plus random cuts earlier in the
// segment, with the tail truncated, zeroed or full of garbage.
TEST(TornTailTest, EveryCutInTheLastRecordsRecoversAPrefix) {
  std::unique_ptr<WrittenLog> log = WriteLog(/*min_writes=*/100, /*min_last_records=*/6);
  ASSERT_NE(log, nullptr);
  const WalSegmentInfo& last = log->last();
  ASSERT_FALSE(last.stopped_at_bad_record.has_value()) << *last.stopped_at_bad_record;
  ASSERT_GE(last.records.size(), 6u);

  // Every byte of the last two records; of the one before, the bytes
  // around its boundaries; random cuts earlier in the segment.
  std::set<uint64_t> cuts;
  const WalRecordInfo& third_last = last.records[last.records.size() - 3];
  const uint64_t from = last.records[last.records.size() - 2].offset;
  for (uint64_t cut = from; cut <= last.data_end; ++cut) cuts.insert(cut);
  for (uint64_t cut = third_last.offset; cut < from; ++cut) {
    if (cut < third_last.offset + 2 || cut % 5 == 0 || cut + 2 >= third_last.payload_end()) {
      cuts.insert(cut);
    }
  }
  std::mt19937 rng(12345);
  for (int i = 0; i < 12; ++i) {
    cuts.insert(kSegmentHeaderBytes + rng() % (third_last.offset - kSegmentHeaderBytes));
  }
  cuts.insert(kSegmentHeaderBytes);  // nothing left of the last segment's records

  auto near_boundary = [&](uint64_t cut) {
    bool near = cut == last.data_end;
    for (const WalRecordInfo& r : last.records) {
      near = near || (cut + 1 >= r.offset && cut <= r.offset + 1) || cut == r.payload_end();
    }
    return near;
  };
  // Each cut costs an Open (a few fsyncs), so the variants share them out:
  // truncated and zeroed tails at every cut, garbage at every third and at
  // the boundaries; writing on after the crash (two more opens) at the
  // boundaries and every tenth cut.
  int n = 0;
  for (uint64_t cut : cuts) {
    ++n;
    const bool boundary = near_boundary(cut);
    CheckCut(*log, cut, Tail::kTruncated, /*then_write=*/boundary || n % 10 == 0);
    CheckCut(*log, cut, Tail::kZeros, /*then_write=*/boundary || n % 10 == 5);
    if (boundary || n % 3 == 0) CheckCut(*log, cut, Tail::kGarbage, /*then_write=*/boundary);
    if (::testing::Test::HasFailure()) return;  // one cut's story is enough to debug
  }
}

// Garbage right after the last complete record (a reused block, a write
// that never reached its header): every write survives, the garbage is
// reported and is gone after the next write and reopen.
TEST(TornTailTest, GarbageAfterTheLastRecordIsDropped) {
  std::unique_ptr<WrittenLog> log = WriteLog(/*min_writes=*/40, /*min_last_records=*/2);
  ASSERT_NE(log, nullptr);
  CheckCut(*log, log->last().data_end, Tail::kGarbage, /*then_write=*/true);
  TempDir copy;
  MakeTornCopy(*log, copy, log->last().data_end, Tail::kGarbage, 7);
  std::unique_ptr<Store> store = OpenOrFail(copy.path());
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(PresentPrefix(store->mvcc(), log->writes), log->writes);
}

// A torn record whose value happens to contain the bytes of a genuine log
// record (a program storing a copy of a log, or of another strata store's
// log, as a value): the recovery's look-ahead for "valid records after the
// damage" must not take those bytes for a record of this log, or a plain
// crash makes the store impossible to open. Records of this log would
// continue its LSN sequence; the copy carries an old LSN.
TEST(TornTailTest, RecordBytesInsideATornValueAreNotMistakenForRecords) {
  TempDir dir;
  {
    std::unique_ptr<Store> store = OpenOrFail(dir.path());
    ASSERT_NE(store, nullptr);
    for (uint64_t i = 0; i < 10; ++i) {
      ASSERT_TRUE(store->db().RawPut(KeyOf(i), ValueOf(i), Timestamp(i + 1)).ok());
    }
    // The value: a copy of this log's third record, at each of the eight
    // alignments, so one copy lands 8-byte aligned in the file.
    const WalSegmentInfo first = ReadWalSegment(dir.path(), WalSegmentNames(dir.path()).front());
    ASSERT_GE(first.records.size(), 3u);
    const WalRecordInfo& copied = first.records[2];
    const std::string bytes = ReadFileBytes(dir.File(first.name))
                                  .substr(copied.offset, copied.padded_end() - copied.offset);
    std::string value;
    // (Each copy is a multiple of 8 bytes long, so one byte before each
    // shifts the next copy's alignment by one.)
    for (size_t shift = 0; shift < 8; ++shift) value += StrCat("p", bytes);
    value += std::string(64, 'z');
    ASSERT_TRUE(store->db().RawPut("embedding", value, Timestamp(100)).ok());
  }
  const WalSegmentInfo last = ReadWalSegment(dir.path(), WalSegmentNames(dir.path()).back());
  ASSERT_FALSE(last.records.empty());
  const WalRecordInfo& outer = last.records.back();
  ASSERT_TRUE(outer.Mentions("embedding"));
  // The crash: the outer record is written up to (not including) its last
  // 32 bytes; the preallocated zeros follow.
  const uint64_t cut = outer.payload_end() - 32;
  OverwriteBytes(dir.File(last.name), cut, std::string(FileSize(dir.File(last.name)) - cut, '\0'));

  std::unique_ptr<Store> store = OpenOrFail(dir.path());
  ASSERT_NE(store, nullptr) << "a crash in the middle of writing a value made the store unopenable";
  EXPECT_TRUE(store->recovery().torn_tail.has_value());
  EXPECT_EQ(PresentPrefix(store->mvcc(), 10), 10u);
  Result<ReadResult> embedding = store->mvcc().Get("embedding");
  ASSERT_TRUE(embedding.ok());
  EXPECT_FALSE(embedding->found);
}

// A crash right after a new segment file was created, before its header
// reached the disk: the newest segment is empty or all zeros. That is a
// torn tail too (nothing acknowledged can be in it), not damage.
TEST(TornTailTest, NewSegmentWithoutAHeaderIsATornTail) {
  std::unique_ptr<WrittenLog> log = WriteLog(/*min_writes=*/40, /*min_last_records=*/2);
  ASSERT_NE(log, nullptr);
  const uint64_t next_lsn = log->last().records.back().lsn + 1;
  for (uint64_t size : {uint64_t{0}, uint64_t{4096}}) {
    SCOPED_TRACE("new segment of " + std::to_string(size) + " zero bytes");
    TempDir copy;
    CopyDirFiles(log->dir.path(), copy.path());
    WriteFileBytes(copy.File(WalSegmentName(next_lsn)), std::string(size, '\0'));
    std::unique_ptr<Store> store = OpenOrFail(copy.path());
    ASSERT_NE(store, nullptr);
    EXPECT_EQ(PresentPrefix(store->mvcc(), log->writes), log->writes);
    ASSERT_TRUE(store->db().RawPut("after", "crash", Timestamp(log->writes + 100)).ok());
    store.reset();
    store = OpenOrFail(copy.path());
    ASSERT_NE(store, nullptr);
    EXPECT_EQ(PresentPrefix(store->mvcc(), log->writes), log->writes);
    Result<ReadResult> after = store->mvcc().Get("after");
    ASSERT_TRUE(after.ok());
    EXPECT_EQ(after->value, "crash");
  }
}

// ---------------------------------------------------------------------------
// A real crash: a child process writes and reports each acknowledged write
// through a pipe until it is SIGKILLed; every acknowledged write must be
// there afterwards (the kernel keeps what was written even without fsync),
// as a prefix, and the dead child's LOCK must not keep the store closed.

// What the child does besides writing, so that kills also land inside a
// checkpoint (temporary file half written, segments half deleted) and
// inside recovery or shutdown.
struct ChildPlan {
  SyncMode mode = SyncMode::kNone;
  uint32_t checkpoint_every = 0;  // writes between Checkpoint() calls (0: never)
  uint32_t reopen_every = 0;      // writes between closing and reopening (0: never)
};

// Runs in the child: never returns.
[[noreturn]] void WriteUntilKilled(const std::string& dir, const ChildPlan& plan, int report_fd) {
  std::unique_ptr<Store> store;
  for (uint32_t i = 0;; ++i) {
    if (store == nullptr || (plan.reopen_every != 0 && i % plan.reopen_every == 0)) {
      store.reset();
      Result<std::unique_ptr<Store>> opened = Store::Open(dir, SmallOptions(plan.mode));
      if (!opened.ok()) ::_exit(3);
      store = std::move(*opened);
    }
    if (!store->db().RawPut(KeyOf(i), ValueOf(i), Timestamp(i + 1)).ok()) ::_exit(4);
    if (::write(report_fd, &i, sizeof i) != sizeof i) ::_exit(5);
    if (plan.checkpoint_every != 0 && i % plan.checkpoint_every == 0 && !store->Checkpoint().ok()) {
      ::_exit(6);
    }
  }
}

// Forks a child that follows `plan`, SIGKILLs it `delay_us` after its
// `kill_after`-th acknowledgement, and checks the directory it leaves.
void KillAndRecover(const ChildPlan& plan, uint32_t kill_after, uint32_t delay_us) {
  SCOPED_TRACE(StrCat(SyncModeName(plan.mode), ", checkpoint every ",
                      std::to_string(plan.checkpoint_every), ", reopen every ",
                      std::to_string(plan.reopen_every), ", kill ", std::to_string(delay_us),
                      " us after ", std::to_string(kill_after), " acknowledged writes"));
  TempDir dir;
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(fds[0]);
    WriteUntilKilled(dir.path(), plan, fds[1]);
  }
  ::close(fds[1]);
  std::optional<uint32_t> last_acked;
  auto read_one = [&]() {
    uint32_t i = 0;
    if (::read(fds[0], &i, sizeof i) != sizeof i) return false;
    last_acked = i;
    return true;
  };
  while ((!last_acked || *last_acked + 1 < kill_after) && read_one()) {
  }
  std::this_thread::sleep_for(std::chrono::microseconds(delay_us));
  ::kill(child, SIGKILL);
  int wait_status = 0;
  ASSERT_EQ(::waitpid(child, &wait_status, 0), child);
  EXPECT_TRUE(WIFSIGNALED(wait_status)) << "the child exited by itself with status "
                                        << (WIFEXITED(wait_status) ? WEXITSTATUS(wait_status) : -1);
  while (read_one()) {  // acknowledgements already in the pipe
  }
  ::close(fds[0]);
  ASSERT_TRUE(last_acked.has_value());

  std::unique_ptr<Store> store = OpenOrFail(dir.path());
  ASSERT_NE(store, nullptr);
  // The child may have written one past its last report.
  const std::optional<uint64_t> present = PresentPrefix(store->mvcc(), *last_acked + 2);
  ASSERT_TRUE(present.has_value());
  EXPECT_GE(*present, uint64_t{*last_acked} + 1);
  EXPECT_TRUE(ListFiles(dir.path(), "", ".tmp").empty()) << "a leftover .ckpt.tmp was kept";
  ASSERT_TRUE(store->db().RawPut("after", "crash", Timestamp(1u << 30)).ok());
  const StoreState before = CaptureState(store->mvcc());
  store.reset();
  store = OpenOrFail(dir.path());
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(DescribeDifference(before, CaptureState(store->mvcc())), "");
}

TEST(TornTailTest, KilledWriterLosesNoAcknowledgedWrite) {
  for (uint32_t kill_after : {1u, 37u, 300u}) {
    KillAndRecover({.mode = SyncMode::kNone}, kill_after, 0);
  }
  KillAndRecover({.mode = SyncMode::kBatch}, 37, 0);
  KillAndRecover({.mode = SyncMode::kAlways}, 20, 500);
}

TEST(TornTailTest, KilledDuringCheckpointsAndReopensLosesNoAcknowledgedWrite) {
  std::mt19937 rng(2024);
  for (int i = 0; i < 10; ++i) {
    KillAndRecover({.mode = SyncMode::kNone, .checkpoint_every = 25}, 30 + rng() % 400,
                   rng() % 3000);
  }
  for (int i = 0; i < 10; ++i) {
    KillAndRecover({.mode = SyncMode::kNone, .checkpoint_every = 30, .reopen_every = 40},
                   30 + rng() % 400, rng() % 3000);
  }
}

// A power loss during an fsync can leave a later page of the group on disk
// without an earlier one: a hole, then valid records. None of that group
// was acknowledged (its fsync never returned), and no later flush group's
// durable mark claims it, so recovery must treat the hole as the tail: keep
// everything before it, drop the rest, and not call it damage.
TEST(TornTailTest, AHoleInsideTheLastUnsyncedGroupIsATornTail) {
  TempDir dir;
  StoreOpenOptions options = SmallOptions(SyncMode::kBatch);
  options.durability.segment_bytes = uint64_t{1} << 20;
  constexpr uint64_t kSynced = 5, kGroup = 6;
  {
    std::unique_ptr<Store> store = OpenOrFail(dir.path(), options);
    ASSERT_NE(store, nullptr);
    for (uint64_t i = 0; i < kSynced; ++i) {
      ASSERT_TRUE(store->db().RawPut(KeyOf(i), ValueOf(i), Timestamp(i + 1)).ok());
    }
  }
  {
    // One flush group: appended without waiting, then synced together.
    options.durability.wait_for_durability = false;
    options.durability.batch_delay = std::chrono::milliseconds(200);
    std::unique_ptr<Store> store = OpenOrFail(dir.path(), options);
    ASSERT_NE(store, nullptr);
    for (uint64_t i = kSynced; i < kSynced + kGroup; ++i) {
      ASSERT_TRUE(store->db().RawPut(KeyOf(i), ValueOf(i), Timestamp(i + 1)).ok());
    }
    ASSERT_TRUE(store->Sync().ok());
  }
  // The group is the last segment's records; lose the page of its third write.
  std::vector<WalSegmentInfo> segments = ReadWal(dir.path());
  ASSERT_FALSE(segments.empty());
  const WalSegmentInfo& last = segments.back();
  std::vector<const WalRecordInfo*> writes;
  for (const WalRecordInfo& record : last.records) {
    if (record.type == 1) writes.push_back(&record);
  }
  ASSERT_EQ(writes.size(), kGroup);
  const WalRecordInfo& lost = *writes[2];
  OverwriteBytes(dir.File(last.name), lost.offset,
                 std::string(lost.padded_end() - lost.offset, '\0'));

  Result<std::unique_ptr<Store>> reopened = Store::Open(dir.path(), SmallOptions());
  ASSERT_TRUE(reopened.ok()) << StatusText(reopened.status());
  EXPECT_TRUE((*reopened)->recovery().torn_tail.has_value());
  for (uint64_t i = 0; i < kSynced + kGroup; ++i) {
    Result<ReadResult> read = (*reopened)->mvcc().Get(KeyOf(i));
    ASSERT_TRUE(read.ok());
    EXPECT_EQ(read->found, i < kSynced + 2) << "write " << i;
  }
}

// The same hole in a group that a later group's durable mark covers is
// damage: those writes were acknowledged, so recovery refuses.
TEST(TornTailTest, AHoleThatALaterGroupProvesDurableIsDamage) {
  TempDir dir;
  StoreOpenOptions options = SmallOptions(SyncMode::kBatch);
  options.durability.segment_bytes = uint64_t{1} << 20;
  {
    std::unique_ptr<Store> store = OpenOrFail(dir.path(), options);
    ASSERT_NE(store, nullptr);
    for (uint64_t i = 0; i < 8; ++i) {
      ASSERT_TRUE(store->db().RawPut(KeyOf(i), ValueOf(i), Timestamp(i + 1)).ok());
    }
  }
  std::vector<WalSegmentInfo> segments = ReadWal(dir.path());
  const WalSegmentInfo& last = segments.back();
  std::vector<const WalRecordInfo*> writes;
  for (const WalRecordInfo& record : last.records) {
    if (record.type == 1) writes.push_back(&record);
  }
  ASSERT_EQ(writes.size(), 8u);
  const WalRecordInfo& lost = *writes[3];
  OverwriteBytes(dir.File(last.name), lost.offset,
                 std::string(lost.padded_end() - lost.offset, '\0'));
  Result<std::unique_ptr<Store>> reopened = Store::Open(dir.path(), SmallOptions());
  ASSERT_FALSE(reopened.ok());
  EXPECT_EQ(reopened.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(reopened.status().message(), ::testing::HasSubstr(last.name));
}

}  // namespace
}  // namespace strata::storage_testing
