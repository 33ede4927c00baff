"""A replicated strata cluster (--cluster-mode replicated) whose every peer
link runs through a netfault Link, under writers on every member:

- the leader partitioned away from both followers: the two elect a new
  leader and go on taking writes; the old leader acknowledges nothing
  more, and a linearizable read on it does not answer with what it has
  (it cannot confirm it still leads) after the others acknowledged a newer
  write; once healed it follows the new leader, and every acknowledged put
  is on every member at its revision; a watcher on each member (the cut-off
  one included) sees every put once, in order, once healed;
- a follower cut off one way only (it hears the leader, the leader does
  not hear it): nothing is lost, and once healed it has caught up;
- a follower partitioned away while the others write past a snapshot: once
  healed it catches up from the leader's snapshot, and a watcher that stayed
  connected to it all along sees every put once, in order (its member's
  replica was replaced under it).
"""
import os
import sys
import time
import unittest

import grpc

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "compat"))
from proxied_cluster import ProxiedCluster  # noqa: E402
from replicated_load import Watchers, Writers, leader_of, raft_metrics  # noqa: E402
from servers import python_stubs  # noqa: E402

python_stubs()
import rpc_pb2 as pb  # noqa: E402
import rpc_pb2_grpc as rpc  # noqa: E402


class ReplicatedPartitions(unittest.TestCase):
    def setUp(self):
        # Snapshots every 100 entries (at least), so a follower cut off for
        # a while is brought back by one.
        self.cluster = ProxiedCluster.started_for(
            self, "strata-replicated-partitions-",
            extra_args=["--cluster-mode", "replicated", "--snapshot-count", "100"])
        self.leader = self.wait_for_leader()

    def wait_for_leader(self, among=None, timeout=15):
        deadline = time.time() + timeout
        while time.time() < deadline:
            leader = leader_of(self.cluster, among)
            if leader is not None:
                return leader
            time.sleep(0.05)
        self.fail("no leader within %d s" % timeout)

    def test_the_leader_partitioned_away(self):
        old = self.leader
        others = [i for i in range(3) if i != old]
        old_term = raft_metrics(self.cluster.metrics_ports[old])["strata_raft_term"]
        watchers = Watchers(self.cluster.endpoints(), 2).start()
        self.addCleanup(watchers.stop)
        writers = Writers([self.cluster.endpoints()[i] for i in others]).start()
        try:
            self.assertTrue(writers.wait_for_more(50), "no writes before the partition")
            self.cluster.partition(self.cluster.names[old])
            cut_at = time.time()
            new = self.wait_for_leader(among=others)
            elected_in = time.time() - cut_at
            self.assertTrue(writers.wait_for_more(50), "no writes after the partition")
            # A write the majority acknowledged; the old leader must not
            # serve a linearizable read that misses it.
            kv_new = rpc.KVStub(grpc.insecure_channel(self.cluster.endpoints()[new]))
            kv_new.Put(pb.PutRequest(key=b"fresh", value=b"new"), timeout=5)
            kv_old = rpc.KVStub(grpc.insecure_channel(self.cluster.endpoints()[old]))
            try:
                r = kv_old.Range(pb.RangeRequest(key=b"fresh"), timeout=3)
                self.assertEqual([item.value for item in r.kvs], [b"new"],
                                 "the cut-off leader served a stale linearizable read")
            except grpc.RpcError as e:
                self.assertIn(e.code(), (grpc.StatusCode.UNAVAILABLE,
                                         grpc.StatusCode.DEADLINE_EXCEEDED))
            # Nor does it acknowledge a write.
            with self.assertRaises(grpc.RpcError):
                kv_old.Put(pb.PutRequest(key=b"lost", value=b"x"), timeout=3)
            self.cluster.heal()
            self.assertTrue(writers.wait_for_more(50), "no writes after healing")
        finally:
            writers.stop()
        deadline = time.time() + 10
        while time.time() < deadline:
            m = raft_metrics(self.cluster.metrics_ports[old])
            if m.get("strata_raft_term", 0) > old_term and m.get("strata_raft_has_leader", 0) > 0:
                break
            time.sleep(0.1)
        self.assertGreater(m.get("strata_raft_term", 0), old_term, "the old leader's term")
        print("a new leader in %.2f s; %d puts acknowledged, %d failed"
              % (elected_in, len(writers.acknowledged), len(writers.failures)))
        writers.check_everywhere(self)
        watchers.check(self, writers)

    def test_a_follower_brought_back_by_a_snapshot_keeps_its_watchers(self):
        follower = (self.leader + 1) % 3
        others = [i for i in range(3) if i != follower]
        watchers = Watchers(self.cluster.endpoints(), 2).start()
        self.addCleanup(watchers.stop)
        writers = Writers([self.cluster.endpoints()[i] for i in others]).start()
        leader_port = self.cluster.metrics_ports[self.leader]
        follower_port = self.cluster.metrics_ports[follower]
        try:
            self.assertTrue(writers.wait_for_more(20), "no writes before the partition")
            self.cluster.partition(self.cluster.names[follower])
            taken = raft_metrics(leader_port)["strata_raft_snapshots_total"]
            # Writes until the leader took a snapshot past the follower's log
            # (the bytes since the last snapshot must pass its size, so a
            # few hundred writes).
            deadline = time.time() + 30
            while raft_metrics(leader_port).get("strata_raft_snapshots_total", 0) <= taken:
                self.assertLess(time.time(), deadline, "the leader took no snapshot")
                time.sleep(0.1)
            self.cluster.heal()
            deadline = time.time() + 15
            while raft_metrics(follower_port).get("strata_raft_snapshots_restored_total", 0) < 1:
                self.assertLess(time.time(), deadline, "the follower restored no snapshot")
                time.sleep(0.1)
            self.assertTrue(writers.wait_for_more(50), "no writes after healing")
        finally:
            writers.stop()
        writers.check_everywhere(self)
        seen = watchers.check(self, writers)
        self.assertEqual(watchers.moves[follower], 0, "the follower's watcher moved")
        print("watchers saw %d puts each through the follower's restore" % seen)

    def test_a_follower_cut_off_one_way(self):
        follower = (self.leader + 1) % 3
        writers = Writers(self.cluster.endpoints()).start()
        try:
            self.assertTrue(writers.wait_for_more(50), "no writes before the cut")
            name, leader = self.cluster.names[follower], self.cluster.names[self.leader]
            self.cluster.links[(name, leader)].cut()  # the leader does not hear it
            time.sleep(2.5)
            self.cluster.heal()
            self.assertTrue(writers.wait_for_more(50), "no writes after healing")
        finally:
            writers.stop()
        writers.check_everywhere(self)


if __name__ == "__main__":
    unittest.main()

