"""Three strata-servers as a cluster whose every peer link (member X to
member Y) runs through a netfault Link of its own, under the bank workload
(tests/compat/bank.py), Txn clients whose history is checked
(tests/compat/history_clients.py) and a watcher: a member partitioned
away, and a one-way blackhole with delays on the other links, each healed
after a while. Through every fault, every read of all accounts sums to the
total; afterwards every acknowledged write is there at its revision,
transfers go on, the Txns' history is serializable in revision order with
revisions in real-time order, and the watcher saw every acknowledged write
once, in revision order. The same with every shard a Raft group of the
three (--replication-factor 3) and the member leading the most shards
partitioned away: its groups elect leaders among the others, and the
same checks hold."""
import os
import sys
import threading
import re
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "compat"))
import grpc  # noqa: E402

from bank import Bank  # noqa: E402
from history_clients import HistoryClients  # noqa: E402
from proxied_cluster import ProxiedCluster  # noqa: E402
from servers import RequestQueue, python_stubs  # noqa: E402

python_stubs()
import rpc_pb2 as pb  # noqa: E402
import rpc_pb2_grpc as rpc  # noqa: E402


class Watcher:
    """Every event under w/ seen through one member, in arrival order."""

    def __init__(self, endpoint):
        self.events = []
        self.requests = RequestQueue(pb.WatchRequest(create_request=pb.WatchCreateRequest(
            key=b"w", range_end=b"x")))
        self.stream = rpc.WatchStub(grpc.insecure_channel(endpoint)).Watch(iter(self.requests))
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            for resp in self.stream:
                self.events.extend((e.kv.mod_revision, e.kv.key, e.kv.value)
                                   for e in resp.events)
        except grpc.RpcError:
            pass

    def stop(self):
        self.stream.cancel()
        self.requests.close()


class ClusterPartitions(unittest.TestCase):
    def setUp(self):
        self.cluster = ProxiedCluster.started_for(self, "strata-partitions-")

    def run_fault(self, fault, tag="", felt_s=1.0):
        watcher = Watcher(self.cluster.endpoints()[0])
        time.sleep(0.3)
        bank = Bank(self.cluster.endpoints(), tag=tag).start()
        history = HistoryClients(self.cluster.endpoints(), tag=tag).start()
        try:
            time.sleep(1.5)
            fault()
            time.sleep(2.0)
            self.cluster.heal()
            healed_at = time.time()
            time.sleep(3.0)
        finally:
            bank.stop()
            history.stop()
        bank.check(self)
        history.check(self)
        # The fault was felt: a transfer waited through it (calls to a shard
        # cut off are resent until it is back, within the RPC timeout).
        self.assertGreater(bank.slowest, felt_s, "the fault was not felt")
        self.assertGreater(bank.transfers_between(healed_at + 1, time.time()), 3,
                           "transfers go on once healed")
        want = sorted((rev, key, value) for key, value, rev in bank.acked_puts)

        def writes_seen():
            # This run's writers' keys only: a put of an earlier run whose
            # answer was lost may still land now.
            return [e for e in watcher.events if e[1].startswith(bank.put_prefix)]

        deadline = time.time() + 15
        while not set(want) <= set(writes_seen()) and time.time() < deadline:
            time.sleep(0.1)
        watcher.stop()
        seen = writes_seen()
        self.assertEqual(seen, sorted(set(seen)), "the watcher repeated or reordered writes")
        self.assertEqual([e for e in want if e not in set(seen)], [],
                         "the watcher missed acknowledged writes")
        # A put whose answer was lost (a member killed or cut off) may have
        # happened; nothing else may appear.
        unknown = set(bank.unanswered_puts)
        self.assertEqual([e for e in seen if e not in set(want) and e[1:] not in unknown], [],
                         "the watcher saw writes nobody made")

    def test_a_member_partitioned_away_and_healed(self):
        self.run_fault(lambda: self.cluster.partition("m2"))

    def test_a_one_way_blackhole_with_slow_links(self):
        def fault():
            for (src, dst), link in self.cluster.links.items():
                if (src, dst) == ("m0", "m2"):
                    link.blackhole()
                else:
                    link.delay(0.03)
        self.run_fault(fault)


class ReplicatedShardPartitions(unittest.TestCase):
    run_fault = ClusterPartitions.run_fault

    def setUp(self):
        self.cluster = ProxiedCluster.started_for(
            self, "strata-rs-partitions-", extra_args=["--replication-factor", "3"])

    def shards_led(self, i):
        port = self.cluster.metrics_ports[i]
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=10) as r:
            text = r.read().decode()
        return len(re.findall(r'^strata_cluster_shard_replica_leader\{shard="\d+"\} 1$', text,
                              re.M))

    def test_the_member_leading_the_most_shards_partitioned_away_and_healed(self):
        deadline = time.time() + 10
        while sum(self.shards_led(i) for i in range(3)) < 3 and time.time() < deadline:
            time.sleep(0.1)
        victim = max(range(3), key=self.shards_led)
        self.assertGreater(self.shards_led(victim), 0)
        # Felt by the victim's clients (their calls wait out the partition)
        # and by writes to its shards until the others elect leaders.
        self.run_fault(lambda: self.cluster.partition("m%d" % victim), felt_s=0.5)


if __name__ == "__main__":
    unittest.main()
