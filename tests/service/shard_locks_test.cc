// ShardLocks: writes of keys on several members wait their turn on every
// owner, never deadlock (a property over random writes and random message
// orders), and lanes a request no longer needs, or a dead holder's, are
// given back.
#include "service/shard_locks.h"

#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace strata::service {
namespace {

using Release = ShardLocks::Release;

// Members 0..n-1, member i owning the keys whose first letter is 'a' + i.
// Requests between members wait in `in_flight` until the test delivers
// them (answers likewise), in any order it likes. What each member last
// heard from each other is kept as cluster::Peers keeps it: every answer
// counts, and a test adds the rest of the traffic to `heard`.
class Members {
 public:
  explicit Members(int n, cluster::Timers* timers = nullptr) : timers_(timers) {
    for (int i = 0; i < n; ++i) {
      auto member = std::make_unique<Member>();
      const auto shard = static_cast<cluster::ShardId>(i);
      member->locks = std::make_unique<ShardLocks>(
          &member->lanes, shard,
          [this, shard](const std::string& engine_key, std::string request,
                        std::function<void(Result<std::string>)> done) {
            in_flight.push_back({shard, Owner(engine_key), std::move(request), std::move(done)});
          },
          [this,
           shard](cluster::ShardId owner) -> std::optional<cluster::Timers::Clock::time_point> {
            auto it = heard.find({shard, owner});
            if (it == heard.end()) return std::nullopt;
            return it->second;
          },
          timers, Options());
      members_.push_back(std::move(member));
    }
  }

  // Lanes held for 100 ms at most; patience 250 ms; passed over for 2 s.
  static ShardLocksOptions Options() {
    ShardLocksOptions options;
    options.max_hold = std::chrono::milliseconds(100);
    options.max_remote = 1000;
    options.patience = std::chrono::milliseconds(250);
    return options;
  }

  static cluster::ShardId Owner(const std::string& key) {
    return static_cast<cluster::ShardId>(key.at(0) - 'a');
  }
  static std::map<cluster::ShardId, ShardLocks::OwnedKeys> ByOwner(
      const std::vector<std::string>& keys) {
    std::map<cluster::ShardId, ShardLocks::OwnedKeys> by_owner;
    for (const std::string& key : keys) {
      ShardLocks::OwnedKeys& owned = by_owner[Owner(key)];
      owned.engine_key = key;
      owned.keys.push_back(key);
    }
    return by_owner;
  }

  ShardLocks& locks(int i) { return *members_[i]->locks; }
  KeyLanes& lanes(int i) { return members_[i]->lanes; }

  // Delivers message `i` of in_flight: a request runs on its owner, whose
  // answer comes back at once or later (the owner answers when it grants).
  void Deliver(size_t i) {
    Message m = std::move(in_flight[i]);
    in_flight.erase(in_flight.begin() + static_cast<std::ptrdiff_t>(i));
    locks(static_cast<int>(m.to))
        .Serve(m.request, [this, from = m.from, to = m.to, done = m.done](std::string answer) {
          if (timers_ != nullptr) heard[{from, to}] = timers_->now();
          done(std::move(answer));
        });
  }
  // Fails message `i` as an unanswered call would.
  void Fail(size_t i) {
    Message m = std::move(in_flight[i]);
    in_flight.erase(in_flight.begin() + static_cast<std::ptrdiff_t>(i));
    m.done(Status::Unavailable("no answer"));
  }
  void DeliverAll() {
    while (!in_flight.empty()) Deliver(0);
  }

  struct Message {
    cluster::ShardId from, to;
    std::string request;
    std::function<void(Result<std::string>)> done;
  };
  std::vector<Message> in_flight;
  // (member, other member): when the first last heard from the second.
  std::map<std::pair<cluster::ShardId, cluster::ShardId>, cluster::Timers::Clock::time_point> heard;

 private:
  struct Member {
    KeyLanes lanes;
    std::unique_ptr<ShardLocks> locks;
  };
  cluster::Timers* timers_;
  std::vector<std::unique_ptr<Member>> members_;
};

TEST(ShardLocksTest, AWriteOverTwoMembersWaitsForEachOwnersEarlierWrites) {
  Members m(2);
  std::vector<std::string> ran;
  // Member 1 runs a write of b1 (its own key) first.
  m.lanes(1).Enter({"b1"}, [&] { ran.push_back("local b1"); });
  std::optional<Release> cross;
  m.locks(0).Acquire(7, Members::ByOwner({"a1", "b1"}), [&](Release r, bool held) {
    EXPECT_TRUE(held);
    ran.push_back("a1+b1");
    cross = std::move(r);
  });
  m.DeliverAll();  // the request for b1 waits behind the local write
  EXPECT_EQ(ran, (std::vector<std::string>{"local b1"}));
  // a1 is held meanwhile: member 0's own write of it waits.
  m.lanes(0).Enter({"a1"}, [&] { ran.push_back("local a1"); });
  // A later local write of b1 on member 1 waits behind the cross write.
  m.lanes(1).Enter({"b1"}, [&] { ran.push_back("local b1 again"); });
  m.lanes(1).Leave({"b1"});
  EXPECT_EQ(ran, (std::vector<std::string>{"local b1", "a1+b1"}));
  (*cross)();
  m.DeliverAll();  // the give-back
  EXPECT_EQ(ran, (std::vector<std::string>{"local b1", "a1+b1", "local a1", "local b1 again"}));
  EXPECT_EQ(m.locks(0).Stats().acquired, 1u);
  EXPECT_EQ(m.locks(1).Stats().remote_held, 0u);
}

TEST(ShardLocksTest, AnOwnerThatDoesNotAnswerLetsTheWriteRunWithoutLanes) {
  Members m(3);
  std::vector<std::string> ran;
  std::optional<Release> cross;
  m.locks(0).Acquire(1, Members::ByOwner({"a1", "b1", "c1"}), [&](Release r, bool held) {
    EXPECT_FALSE(held);
    ran.push_back("cross");
    cross = std::move(r);
  });
  ASSERT_EQ(m.in_flight.size(), 1u);  // a1 taken here; the enter for b1
  m.Deliver(0);                       // granted: then the enter for c1
  ASSERT_EQ(m.in_flight.size(), 1u);
  const std::string late_enter = m.in_flight[0].request;
  m.Fail(0);  // member 2 did not answer in time
  // The write runs anyway, holding nothing: a1 and b1 are given back.
  EXPECT_EQ(ran, (std::vector<std::string>{"cross"}));
  EXPECT_EQ(m.locks(0).Stats().gave_up, 1u);
  bool a1_free = false;
  m.lanes(0).Enter({"a1"}, [&] { a1_free = true; });
  EXPECT_TRUE(a1_free);
  ASSERT_EQ(m.in_flight.size(), 2u);  // leave to member 1 and to member 2
  m.DeliverAll();
  EXPECT_EQ(m.locks(1).Stats().remote_held, 0u);
  // The give-back reached member 2 before its enter: the enter, coming
  // late, is refused and takes nothing.
  std::string answer;
  m.locks(2).Serve(late_enter, [&](std::string a) { answer = std::move(a); });
  EXPECT_TRUE(answer.starts_with("refused")) << answer;
  bool c1_free = false;
  m.lanes(2).Enter({"c1"}, [&] { c1_free = true; });
  EXPECT_TRUE(c1_free);
  (*cross)();  // nothing left to give back
  EXPECT_TRUE(m.in_flight.empty());
}

TEST(ShardLocksTest, AGiveBackWhileWaitingLeavesAsSoonAsGranted) {
  Members m(2);
  m.lanes(1).Enter({"b1"}, [] {});
  std::string answer;
  m.locks(1).Serve(std::string(ShardLocks::kTag) + "enter 0:5\n2\nb1",
                   [&](std::string a) { answer = std::move(a); });
  m.locks(1).Serve(std::string(ShardLocks::kTag) + "leave 0:5\n", [](std::string) {});
  EXPECT_EQ(answer, "");
  bool next = false;
  m.lanes(1).Enter({"b1"}, [&] { next = true; });
  m.lanes(1).Leave({"b1"});  // grants 0:5, which leaves at once
  EXPECT_TRUE(answer.starts_with("refused"));
  EXPECT_TRUE(next);
  EXPECT_EQ(m.locks(1).Stats().remote_held, 0u);
}

TEST(ShardLocksTest, ADeadHoldersLanesAreGivenBackAfterMaxHold) {
  cluster::Timers timers;
  Members m(2, &timers);
  m.locks(0).Acquire(3, Members::ByOwner({"a1", "b1"}), [](Release, bool) {});  // never released
  m.DeliverAll();
  bool ran = false;
  m.lanes(1).Enter({"b1"}, [&] { ran = true; });
  EXPECT_FALSE(ran);
  timers.RunDue(timers.now() + std::chrono::milliseconds(99));
  EXPECT_FALSE(ran);
  timers.RunDue(timers.now() + std::chrono::milliseconds(2));
  EXPECT_TRUE(ran);
  EXPECT_EQ(m.locks(1).Stats().remote_expired, 1u);
}

TEST(ShardLocksTest, ASilentOwnerIsGivenUpOnAndPassedOverABusyOneWaitedFor) {
  cluster::Timers timers;
  Members m(3, &timers);  // patience 250 ms, passed over for 2 s
  auto at = [&](int ms) {
    timers.RunDue(cluster::Timers::Clock::time_point{} + std::chrono::milliseconds(ms));
  };
  std::vector<std::string> ran;
  // c1 is busy on member 2, which answers everything else meanwhile.
  m.lanes(2).Enter({"c1"}, [] {});
  std::optional<Release> first;
  m.locks(0).Acquire(1, Members::ByOwner({"a1", "c1"}), [&](Release r, bool held) {
    EXPECT_TRUE(held);
    ran.push_back("first");
    first = std::move(r);
  });
  m.DeliverAll();  // the enter for c1 waits on member 2
  for (int ms = 100; ms <= 900; ms += 100) {
    // Member 2 answers another request of member 0's now and then.
    m.locks(0).Acquire(100 + ms, Members::ByOwner({"a9", "c9"}), [](Release r, bool) { r(); });
    m.DeliverAll();
    at(ms);
  }
  EXPECT_TRUE(ran.empty()) << "a busy owner is waited for";
  m.lanes(2).Leave({"c1"});  // granted: the answer comes back
  EXPECT_EQ(ran, (std::vector<std::string>{"first"}));
  (*first)();
  m.DeliverAll();

  // Now member 2 answers nothing: after the patience the write runs
  // without lanes, having given back a1.
  m.lanes(2).Enter({"c1"}, [] {});
  std::optional<Release> second;
  m.locks(0).Acquire(2, Members::ByOwner({"a1", "c1"}), [&](Release r, bool held) {
    EXPECT_FALSE(held);
    ran.push_back("second");
    second = std::move(r);
  });
  ASSERT_EQ(m.in_flight.size(), 1u);
  auto unanswered = std::move(m.in_flight[0]);  // member 2 is down
  m.in_flight.clear();
  at(1100);
  EXPECT_EQ(ran.size(), 1u);
  at(1160);
  EXPECT_EQ(ran.back(), "second");
  EXPECT_EQ(m.locks(0).Stats().gave_up, 1u);
  bool a1_free = false;
  m.lanes(0).Enter({"a1"}, [&] { a1_free = true; });
  EXPECT_TRUE(a1_free);
  m.lanes(0).Leave({"a1"});
  // The next write passes member 2 over at once, for 2 s.
  m.in_flight.clear();
  m.locks(0).Acquire(3, Members::ByOwner({"a1", "b1", "c1"}), [&](Release r, bool held) {
    EXPECT_TRUE(held);
    ran.push_back("third");
    r();
  });
  m.DeliverAll();
  EXPECT_EQ(ran.back(), "third");
  EXPECT_EQ(m.locks(0).Stats().passed_over, 1u);
  // A late answer from member 2 changes nothing.
  unanswered.done(std::string("granted"));
  EXPECT_EQ(m.locks(0).Stats().gave_up, 1u);
  (*second)();
}

TEST(ShardLocksTest, AnOwnerThatGrantsNothingButSendsOtherMessagesIsWaitedFor) {
  cluster::Timers timers;
  Members m(2, &timers);  // patience 250 ms
  auto at = [&](int ms) {
    const auto now = cluster::Timers::Clock::time_point{} + std::chrono::milliseconds(ms);
    timers.RunDue(now);
    return now;
  };
  // b1 is busy on member 1 for 2 s; in that time member 1 answers no lane
  // request of member 0's, but its other messages keep coming.
  m.lanes(1).Enter({"b1"}, [] {});
  bool ran = false, held_lanes = false;
  m.locks(0).Acquire(1, Members::ByOwner({"a1", "b1"}), [&](Release r, bool held) {
    ran = true;
    held_lanes = held;
    r();
  });
  m.DeliverAll();
  for (int ms = 100; ms <= 2000; ms += 100) m.heard[{0, 1}] = at(ms);
  EXPECT_FALSE(ran) << "an owner that sends anything is up: its queue is waited for";
  m.lanes(1).Leave({"b1"});
  EXPECT_TRUE(ran);
  EXPECT_TRUE(held_lanes);
  m.DeliverAll();
  EXPECT_EQ(m.locks(0).Stats().gave_up, 0u);

  // Once it sends nothing at all, the patience runs out.
  m.lanes(1).Enter({"b1"}, [] {});
  ran = false;
  m.locks(0).Acquire(2, Members::ByOwner({"a1", "b1"}), [&](Release r, bool held) {
    ran = true;
    held_lanes = held;
    r();
  });
  m.DeliverAll();
  at(2200);
  EXPECT_FALSE(ran);
  at(2400);
  EXPECT_TRUE(ran);
  EXPECT_FALSE(held_lanes);
  EXPECT_EQ(m.locks(0).Stats().gave_up, 1u);
}

TEST(ShardLocksTest, ACallThatTimesOutInALongQueueIsMadeAgainAndKeepsItsPlace) {
  cluster::Timers timers;
  Members m(2, &timers);  // patience 250 ms
  auto at = [&](int ms) {
    timers.RunDue(cluster::Timers::Clock::time_point{} + std::chrono::milliseconds(ms));
  };
  m.lanes(1).Enter({"b1"}, [] {});  // b1 busy on member 1 for long
  std::vector<std::string> ran;
  std::optional<Release> write;
  m.locks(0).Acquire(1, Members::ByOwner({"a1", "b1"}), [&](Release r, bool held) {
    EXPECT_TRUE(held);
    ran.push_back("write");
    write = std::move(r);
  });
  ASSERT_EQ(m.in_flight.size(), 1u);
  Members::Message first = std::move(m.in_flight[0]);
  m.in_flight.clear();
  // The owner queues it; its answer would go to a call that times out.
  m.locks(1).Serve(first.request, [](std::string) { ADD_FAILURE() << "answered a dead call"; });
  for (int ms = 100; ms <= 500; ms += 100) {
    // Member 1 answers other requests meanwhile.
    m.locks(0).Acquire(100 + ms, Members::ByOwner({"a9", "b9"}), [](Release r, bool) { r(); });
    m.DeliverAll();
    at(ms);
  }
  // A later write of b1 queues behind the first.
  m.lanes(1).Enter({"b1"}, [&] { ran.push_back("later b1"); });
  first.done(Status::Unavailable("the call timed out"));
  ASSERT_EQ(m.in_flight.size(), 1u) << "asked again";
  m.Deliver(0);
  EXPECT_TRUE(ran.empty());
  m.lanes(1).Leave({"b1"});  // its turn: the second call gets the grant
  EXPECT_EQ(ran, (std::vector<std::string>{"write"}));
  EXPECT_EQ(m.locks(0).Stats().gave_up, 0u);
  // Asking once more while held is granted at once.
  std::string again;
  m.locks(1).Serve(first.request, [&](std::string a) { again = std::move(a); });
  EXPECT_EQ(again, "granted");
  (*write)();
  m.DeliverAll();
  EXPECT_EQ(ran, (std::vector<std::string>{"write", "later b1"}));
}

TEST(ShardLocksTest, KeysAreHotForASecondAfterALostConflictAndBounded) {
  KeyLanes lanes;
  auto send = [](const std::string&, std::string, std::function<void(Result<std::string>)>) {};
  ShardLocks untimed(&lanes, 0, send, nullptr, nullptr);
  EXPECT_TRUE(untimed.AnyHot({"a"})) << "without timers every key is hot";

  cluster::Timers timers;
  ShardLocksOptions options;
  options.max_hot_keys = 3;
  ShardLocks locks(&lanes, 0, send, nullptr, &timers, options);
  EXPECT_FALSE(locks.AnyHot({"a", "b"}));
  locks.MarkHot({"a"});
  EXPECT_TRUE(locks.AnyHot({"b", "a"}));
  EXPECT_FALSE(locks.AnyHot({"b"}));
  timers.RunDue(timers.now() + std::chrono::milliseconds(999));
  EXPECT_TRUE(locks.AnyHot({"a"}));
  timers.RunDue(timers.now() + std::chrono::milliseconds(1));
  EXPECT_FALSE(locks.AnyHot({"a"}));
  // At most 3 remembered: marking more forgets the oldest.
  locks.MarkHot({"k1"});
  timers.RunDue(timers.now() + std::chrono::milliseconds(1));
  locks.MarkHot({"k2", "k3"});
  timers.RunDue(timers.now() + std::chrono::milliseconds(1));
  locks.MarkHot({"k4"});
  EXPECT_FALSE(locks.AnyHot({"k1"}));
  EXPECT_TRUE(locks.AnyHot({"k4"}));
  EXPECT_TRUE(locks.AnyHot({"k2"}));
}

TEST(ShardLocksTest, MalformedRequestsAreRefused) {
  Members m(1);
  for (std::string bad : {"", "enter \n", "enter 0:1\n", "enter 0:1\n5\nab", "enter 0:1\nx\nab",
                          "enter 0:1\n99999999999999999999\na", "take 0:1\n", "leave 0:1"}) {
    std::string answer;
    m.locks(0).Serve(std::string(ShardLocks::kTag) + bad,
                     [&](std::string a) { answer = std::move(a); });
    EXPECT_TRUE(answer.starts_with("refused")) << bad << ": " << answer;
  }
  EXPECT_EQ(m.lanes(0).busy_keys(), 0u);
}

// Random writes of random keys on 3 members, started on random members,
// their messages delivered in random order and each running write leaving
// at a random later step: writes sharing a key never run at once, and
// every write runs (no deadlock).
RC_GTEST_PROP(ShardLocksProperty, NoTwoWritesOfAKeyAtOnceAndNoneWaitsForever, ()) {
  Members m(3);
  const int writes = *rc::gen::inRange(1, 25);
  struct Running {
    std::set<std::string> keys;
    Release release;
  };
  std::map<int, Running> running;
  std::set<int> done;
  int started = 0;
  std::map<std::string, int> busy;  // key -> running write
  auto try_start = [&](int w) {
    const int member = *rc::gen::inRange(0, 3);
    const auto keys = *rc::gen::container<std::set<std::string>>(
        *rc::gen::inRange(1, 4), rc::gen::element<std::string>("a1", "a2", "b1", "b2", "c1"));
    std::vector<std::string> list(keys.begin(), keys.end());
    m.locks(member).Acquire(static_cast<uint64_t>(w), Members::ByOwner(list),
                            [&, w, keys](Release r, bool held) {
                              RC_ASSERT(held);
                              for (const std::string& k : keys) {
                                RC_ASSERT(busy.count(k) == 0u);
                                busy[k] = w;
                              }
                              running[w] = Running{keys, std::move(r)};
                            });
  };
  for (int step = 0; step < 10000 && static_cast<int>(done.size()) < writes; ++step) {
    const int choice = *rc::gen::inRange(0, 3);
    if (choice == 0 && started < writes) {
      try_start(started++);
    } else if (choice == 1 && !m.in_flight.empty()) {
      m.Deliver(*rc::gen::inRange<size_t>(0, m.in_flight.size()));
    } else if (!running.empty()) {
      auto it = running.begin();
      std::advance(it, *rc::gen::inRange<size_t>(0, running.size()));
      for (const std::string& k : it->second.keys) busy.erase(k);
      Release release = std::move(it->second.release);
      done.insert(it->first);
      running.erase(it);
      release();
    } else if (started < writes) {
      try_start(started++);
    } else if (!m.in_flight.empty()) {
      m.Deliver(0);
    }
  }
  RC_ASSERT(static_cast<int>(done.size()) == writes);
  m.DeliverAll();
  for (int i = 0; i < 3; ++i) {
    RC_ASSERT(m.lanes(i).busy_keys() == 0u);
    RC_ASSERT(m.locks(i).Stats().remote_held == 0u);
    RC_ASSERT(m.locks(i).Stats().gave_up == 0u);
  }
}

}  // namespace
}  // namespace strata::service
