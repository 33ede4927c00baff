// ClusterNodes: a member's keeping of the cluster's member list. A newer
// list is taken (and written to the member's copy, which reads back), an
// older one is not, nor one that numbers a member otherwise (the member
// is told to stop); the member learns once that it was removed (from the
// list, or from a peer that refuses it); a damaged
// copy is an error, a missing one none; a join with no member to ask, or
// none answering, fails with the reason. (The record, Make and Join over a
// real cluster: compat_members_join.)
#include "server/cluster_nodes.h"

#include <gtest/gtest.h>

#include <fstream>
#include <string>
#include <vector>

#include "storage_test_support.h"

namespace strata::server {
namespace {

cluster::NodeList Three() {
  Result<cluster::NodeList> list = cluster::NodeList::First(
      {{"m0", "http://a:1", false}, {"m1", "http://b:2", false}, {"m2", "http://c:3", false}});
  EXPECT_TRUE(list.ok());
  return *list;
}

TEST(ClusterNodesTest, HostPortOfAPeerUrl) {
  EXPECT_EQ(HostPortOf("http://10.0.0.1:2380"), "10.0.0.1:2380");
  EXPECT_EQ(HostPortOf("https://host:2380/"), "host:2380");
  EXPECT_EQ(HostPortOf("host:2380"), "host:2380");
}

TEST(ClusterNodesTest, ANewerListIsTakenAndKeptAnOlderOneIsNot) {
  storage_testing::TempDir dir;
  const std::string copy = dir.File("members");
  EXPECT_FALSE(ReadNodeListCopy(copy)->has_value()) << "no copy yet: none";
  std::vector<uint64_t> adopted;
  int removed = 0;
  ClusterNodes::Options options;
  options.self = "m2";
  options.copy_path = copy;
  options.adopted = [&](const cluster::NodeList& list) { adopted.push_back(list.revision()); };
  options.stop = [&](const std::string& why) {
    ++removed;
    EXPECT_NE(why.find("removed"), std::string::npos) << why;
  };
  ClusterNodes nodes(Three(), options);

  cluster::NodeList added = Three();
  ASSERT_TRUE(added.Add("http://d:4").ok());
  ASSERT_TRUE(added.Name("http://d:4", "m3").ok());
  nodes.Adopt(added);
  EXPECT_EQ(nodes.Current().revision(), 3u);
  EXPECT_EQ(adopted, (std::vector<uint64_t>{3}));
  Result<std::optional<cluster::NodeList>> read = ReadNodeListCopy(copy);
  ASSERT_TRUE(read.ok() && read->has_value());
  EXPECT_EQ((*read)->nodes(), added.nodes());

  nodes.Adopt(Three());  // older
  nodes.Adopt(added);    // the same
  EXPECT_EQ(nodes.Current().revision(), 3u);
  EXPECT_EQ(adopted.size(), 1u);
  EXPECT_EQ(removed, 0);

  cluster::NodeList without = added;
  ASSERT_TRUE(without.Remove(2).ok());
  nodes.Adopt(without);
  EXPECT_EQ(removed, 1) << "told once that this member was removed";
  cluster::NodeList later = without;
  ASSERT_TRUE(later.Add("http://e:5").ok());
  nodes.Adopt(later);
  EXPECT_EQ(removed, 1);
  EXPECT_EQ(adopted.size(), 3u);

  // A list numbering a member otherwise (another view of the cluster, not
  // a later one) is not taken, and the member is told to stop.
  ClusterNodes::Options fresh_options;
  fresh_options.self = "m0";
  std::string why;
  fresh_options.stop = [&](const std::string& w) { why = w; };
  ClusterNodes fresh(Three(), fresh_options);
  Result<cluster::NodeList> other = cluster::NodeList::First(
      {{"a3", "http://d:4", false}, {"m0", "http://a:1", false}, {"m1", "http://b:2", false}});
  ASSERT_TRUE(other.ok());
  ASSERT_TRUE(other->Add("http://x:9").ok());  // a later revision
  fresh.Adopt(*other);
  EXPECT_EQ(fresh.Current().revision(), 1u) << "not taken";
  EXPECT_NE(why.find("numbers member 0 'a3', this member 'm0'"), std::string::npos) << why;

  // A member cut off while it was removed hears it from a peer's refusal.
  // It keeps that beside its copy (which still names it), so its next
  // start is refused at once instead of running until refused again.
  ClusterNodes::Options cut_off_options;
  cut_off_options.self = "m1";
  cut_off_options.copy_path = copy + "-m1";
  std::vector<std::string> stops;
  cut_off_options.stop = [&](const std::string& w) { stops.push_back(w); };
  ClusterNodes cut_off(Three(), cut_off_options);
  EXPECT_TRUE(RefusedAsRemoved(cut_off_options.copy_path).ok());
  cut_off.ToldRemoved("m0");
  cut_off.ToldRemoved("m2");
  ASSERT_EQ(stops.size(), 1u) << "told to stop once";
  EXPECT_EQ(stops[0], "this member was removed from the cluster (member 'm0' refuses it)");
  const Status refused = RefusedAsRemoved(cut_off_options.copy_path);
  EXPECT_EQ(refused.code(), StatusCode::kPreconditionFailed);
  EXPECT_EQ(refused.message().rfind("this member was removed from the cluster (member 'm0' "
                                    "refuses it); a removed member does not come back",
                                    0),
            0u)
      << refused.message();

  std::ofstream(copy, std::ios::trunc) << "not a list";
  EXPECT_EQ(ReadNodeListCopy(copy).status().code(), StatusCode::kIoError);
}

TEST(ClusterNodesTest, AJoinWithNobodyToAskOrNobodyAnsweringFailsSayingWhy) {
  EXPECT_EQ(
      JoinCluster({}, "m3", "http://d:4", nullptr, std::chrono::milliseconds(100)).status().code(),
      StatusCode::kInvalidArgument);
  // A port nobody listens on (1): refused at once, tried until patience ends.
  Result<cluster::NodeList> joined =
      JoinCluster({"127.0.0.1:1"}, "m3", "http://d:4", nullptr, std::chrono::milliseconds(300));
  EXPECT_EQ(joined.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(joined.status().message().find("127.0.0.1:1"), std::string::npos)
      << joined.status().message();
}

}  // namespace
}  // namespace strata::server
