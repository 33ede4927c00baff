// KeyLanes: writes of a key one after another, in arrival order, writes of
// other keys at once, and no write waiting forever (a property over random
// key sets and random orders of leaving).
#include "service/key_lanes.h"

#include <gtest/gtest.h>
#include <rapidcheck.h>

#include <map>
#include <set>
#include <string>
#include <vector>

namespace strata::service {
namespace {

TEST(KeyLanesTest, WritesOfOneKeyRunInTurnOthersAtOnce) {
  KeyLanes lanes;
  std::vector<std::string> started;
  lanes.Enter({"a"}, [&] { started.push_back("a1"); });
  lanes.Enter({"b"}, [&] { started.push_back("b1"); });
  lanes.Enter({"a"}, [&] { started.push_back("a2"); });
  lanes.Enter({"a", "a"}, [&] { started.push_back("a3"); });  // a key named twice counts once
  EXPECT_EQ(started, (std::vector<std::string>{"a1", "b1"}));
  EXPECT_EQ(lanes.waiting(), 2u);
  lanes.Leave({"a"});
  EXPECT_EQ(started.back(), "a2");
  lanes.Leave({"a"});
  EXPECT_EQ(started.back(), "a3");
  lanes.Leave({"a", "a"});
  lanes.Leave({"b"});
  EXPECT_EQ(lanes.waiting(), 0u);
  EXPECT_EQ(lanes.busy_keys(), 0u);
}

TEST(KeyLanesTest, AWriteOfSeveralKeysIsNotOvertakenByLaterOnes) {
  KeyLanes lanes;
  std::vector<std::string> started;
  lanes.Enter({"a"}, [&] { started.push_back("a"); });
  lanes.Enter({"a", "b"}, [&] { started.push_back("ab"); });
  // b is free, but the write of a and b came first: b waits behind it.
  lanes.Enter({"b"}, [&] { started.push_back("b"); });
  EXPECT_EQ(started, (std::vector<std::string>{"a"}));
  lanes.Leave({"a"});
  EXPECT_EQ(started, (std::vector<std::string>{"a", "ab"}));
  lanes.Leave({"b", "a"});
  EXPECT_EQ(started, (std::vector<std::string>{"a", "ab", "b"}));
  lanes.Leave({"b"});
  EXPECT_EQ(lanes.busy_keys(), 0u);
}

TEST(KeyLanesTest, AWriteMayLeaveFromItsOwnStart) {
  // A write that fails at once answers inside its start.
  KeyLanes lanes;
  int ran = 0;
  lanes.Enter({"k"}, [&] { ++ran; });
  for (int i = 0; i < 100; ++i) {
    lanes.Enter({"k"}, [&] {
      ++ran;
      lanes.Leave({"k"});
    });
  }
  EXPECT_EQ(ran, 1);
  lanes.Leave({"k"});
  EXPECT_EQ(ran, 101);
  EXPECT_EQ(lanes.busy_keys(), 0u);
}

TEST(KeyLanesTest, NoTwoRunningWritesShareAKeyAndEveryWriteRuns) {
  rc::check([](const std::vector<std::vector<uint8_t>>& key_sets, uint64_t seed) {
    KeyLanes lanes;
    std::map<size_t, std::vector<std::string>> running;  // by write
    std::map<std::string, size_t> holder;                // key -> running write
    std::map<std::string, size_t> last_started;          // key -> last write started on it
    size_t started = 0;
    for (size_t w = 0; w < key_sets.size(); ++w) {
      std::vector<std::string> keys;
      for (uint8_t k : key_sets[w]) keys.push_back(std::string(1, static_cast<char>('a' + k % 5)));
      if (keys.empty()) keys.push_back("a");
      lanes.Enter(keys, [&, w, keys] {
        for (const auto& key : std::set<std::string>(keys.begin(), keys.end())) {
          RC_ASSERT(holder.count(key) == 0u);  // no two at once
          // (A bool first: RC_ASSERT takes its expression apart, and an
          // overloaded || would not stop before dereferencing end().)
          auto last = last_started.find(key);
          const bool in_order = last == last_started.end() || last->second < w;
          RC_ASSERT(in_order);  // arrival order
          holder[key] = w;
          last_started[key] = w;
        }
        running[w] = keys;
        ++started;
      });
    }
    // Let running writes leave in a random order until none is left.
    uint64_t state = seed | 1;
    while (!running.empty()) {
      state = state * 6364136223846793005u + 1442695040888963407u;
      auto it = running.begin();
      std::advance(it, static_cast<long>((state >> 33) % running.size()));
      std::vector<std::string> keys = it->second;
      for (const auto& key : keys) holder.erase(key);
      running.erase(it);
      lanes.Leave(keys);
    }
    RC_ASSERT(started == key_sets.size());
    RC_ASSERT(lanes.waiting() == 0u);
    RC_ASSERT(lanes.busy_keys() == 0u);
  });
}

}  // namespace
}  // namespace strata::service
