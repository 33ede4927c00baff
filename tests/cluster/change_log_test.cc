// ChangeLog: a shard's recently applied changes for watches. Reads return
// a range's changes in (timestamp, key) order above `after` and up to
// `upto`, hold back what is above upto for the next read (the cursor),
// never cut inside a commit, and refuse (nullopt) once eviction could have
// taken something the reader needs.
#include "cluster/change_log.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace strata::cluster {
namespace change_log_test {

std::vector<BatchWrite> Puts(std::vector<std::string> keys) {
  std::vector<BatchWrite> out;
  for (auto& k : keys) out.push_back(BatchWrite{k, "v" + k});
  return out;
}

std::vector<std::string> Keys(const ChangeLog::Page& page) {
  std::vector<std::string> out;
  for (const Change& c : page.changes)
    out.push_back(c.key + "@" + std::to_string(c.timestamp.value()));
  return out;
}

TEST(ChangeLogTest, ReadsInTimestampOrderAndHoldsBackWhatIsAboveUpto) {
  ChangeLog log;
  log.Append(Puts({"b", "a"}), Timestamp(10));
  log.Append(Puts({"c"}), Timestamp(30));                      // a one-phase commit above...
  log.Append({BatchWrite{"a", std::nullopt}}, Timestamp(20));  // ...a later-applied 2PC below it
  auto page = log.Read(KeyRange::All(), Timestamp(0), Timestamp(25), 0, 0);
  ASSERT_TRUE(page);
  EXPECT_EQ(Keys(*page), (std::vector<std::string>{"a@10", "b@10", "a@20"}));
  EXPECT_TRUE(page->changes[2].deleted);
  EXPECT_EQ(page->upto, Timestamp(25));
  EXPECT_EQ(page->next_cursor, 2u) << "c@30 was held back";
  // The next read, from the cursor above 25, finds c.
  page = log.Read(KeyRange::All(), Timestamp(25), Timestamp(40), page->next_cursor, 0);
  ASSERT_TRUE(page);
  EXPECT_EQ(Keys(*page), (std::vector<std::string>{"c@30"}));
  EXPECT_EQ(page->next_cursor, log.end());
  // A range sees only its keys.
  page = log.Read(KeyRange{"b", "c"}, Timestamp(0), Timestamp(40), 0, 0);
  EXPECT_EQ(Keys(*page), (std::vector<std::string>{"b@10"}));
}

TEST(ChangeLogTest, AfterARestartAReaderFromBeforeItReadsTheStore) {
  // The log before the restart handed out cursors up to 3.
  ChangeLog before;
  for (int i = 1; i <= 3; ++i) before.Append(Puts({"k"}), Timestamp(i * 10));
  const uint64_t old_cursor = before.end();
  // After: a new log above every old cursor, behind what the store holds.
  ChangeLog after(size_t{1} << 20, 1000, Timestamp(30));
  after.Append(Puts({"k"}), Timestamp(40));
  EXPECT_FALSE(after.Read(KeyRange::All(), Timestamp(20), Timestamp(50), old_cursor, 0))
      << "the commit at 30 is in the store only";
  // A reader that has everything up to 30 loses nothing by reading the log.
  auto page = after.Read(KeyRange::All(), Timestamp(30), Timestamp(50), old_cursor, 0);
  ASSERT_TRUE(page);
  EXPECT_EQ(Keys(*page), (std::vector<std::string>{"k@40"}));
  // A cursor past the end is no cursor of this log.
  EXPECT_FALSE(after.Read(KeyRange::All(), Timestamp(40), Timestamp(50), after.end() + 5, 0));
}

TEST(ChangeLogTest, ALimitNeverCutsInsideACommit) {
  ChangeLog log;
  log.Append(Puts({"a", "b", "c"}), Timestamp(10));
  log.Append(Puts({"d"}), Timestamp(11));
  auto page = log.Read(KeyRange::All(), Timestamp(0), Timestamp(50), 0, 2);
  ASSERT_TRUE(page);
  EXPECT_EQ(page->changes.size(), 3u) << "the first commit goes whole, past the limit";
  EXPECT_EQ(page->upto, Timestamp(10));
  page = log.Read(KeyRange::All(), Timestamp(10), Timestamp(50), page->next_cursor, 2);
  EXPECT_EQ(Keys(*page), (std::vector<std::string>{"d@11"}));
  EXPECT_EQ(page->upto, Timestamp(50));
  log.Append(Puts({"e"}), Timestamp(12));
  log.Append(Puts({"f"}), Timestamp(13));
  page = log.Read(KeyRange::All(), Timestamp(11), Timestamp(50), 0, 1);
  EXPECT_EQ(Keys(*page), (std::vector<std::string>{"e@12"}));
  EXPECT_EQ(page->upto, Timestamp(12)) << "cut below the first timestamp past the limit";
}

TEST(ChangeLogTest, EvictionSendsAReaderThatMayMissSomethingToTheStore) {
  ChangeLog log(200);  // room for a couple of entries
  for (int i = 1; i <= 10; ++i) log.Append(Puts({"k" + std::to_string(i)}), Timestamp(i * 10));
  EXPECT_GT(log.begin(), 0u);
  EXPECT_LE(log.bytes(), 200u);
  EXPECT_FALSE(log.Read(KeyRange::All(), Timestamp(0), Timestamp(200), 0, 0))
      << "evicted entries were above what the reader has";
  // A reader that already has everything evicted reads on from what is left.
  auto page = log.Read(KeyRange::All(), Timestamp(95), Timestamp(200), 0, 0);
  ASSERT_TRUE(page);
  EXPECT_EQ(Keys(*page), (std::vector<std::string>{"k10@100"}));
}

}  // namespace change_log_test
}  // namespace strata::cluster
