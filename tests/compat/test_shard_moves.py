"""Four strata-servers as a sharded cluster, every shard a Raft group on
three of them (--replication-factor 3): shard 0's replica on m0 (the
member the shard belongs to, which leads it) moved to m3 with `strata-ctl
shard place` while writers put keys through every member.

- the move follows the placement: m3 joins the shard's group as a
  learner, catches up and is promoted, m0 hands its leadership to the
  first member placed, is removed and deletes its replica (each counted
  on /metrics); m0 goes on serving clients, its own shard elsewhere;
- nothing acknowledged is lost, every member answers every key, and the
  members hash one history (etcdctl endpoint hashkv);
- `strata-ctl shard list` says where the replicas are, on every member,
  and so do /metrics and the dashboard's "Shard replicas" panel, and the
  dashboard's key timeline on a member that holds none of the key's shard
  shows the key's versions;
- what no placement may be is refused with the reason;
- restarted, the member left out does not take the shard back, and the
  new member reopens it from its own log;
- placing a shard's members in another order hands its leadership to the
  first;
- `strata-ctl shard drain m1` under writers moves every replica off m1,
  then `strata-ctl shard balance` spreads them back until no two members
  differ by more than one, in replicas and in shards led; nothing
  acknowledged is lost.

The members' code for it runs under ASan in tests/server (a replica moved
between runtimes over real gRPC) and tests/replication (the plan)."""
import json
import re
import time
import unittest
import urllib.request

import xxhash

from replicated_load import Writers
from servers import StrataCluster, etcdctl, metrics_text, strata_ctl
from test_dashboard import Dom, run_chromium

ARGS = ["--replication-factor", "3"]


def shard_of(key, shards=4):
    """The shard an etcd key lives on: ShardMap's equal ranges of XXH3 over
    its engine key ("\\x01" + key)."""
    h = xxhash.xxh3_64_intdigest(b"\x01" + key.encode())
    return max(i for i in range(shards) if (i << 64) // shards <= h)


def metrics(metrics_port):
    return metrics_text(metrics_port)


def moved(metrics_port, way):
    m = re.search(r'^strata_cluster_shard_replicas_moved_total\{way="%s"\} (\d+)' % way,
                  metrics(metrics_port), re.M)
    return int(m.group(1)) if m else 0


class ShardMoves(unittest.TestCase):
    def setUp(self):
        self.cluster = StrataCluster.started_for(self, prefix="strata-moves-", n=4,
                                                 extra_args=ARGS)
        self.endpoints = self.cluster.endpoints()

    def ctl(self, endpoint, *args, check=True):
        return strata_ctl(self, endpoint, *args, check=check)

    def shard(self, endpoint, number):
        listed = json.loads(self.ctl(endpoint, "shard", "list", "-w", "json").stdout)
        return listed["shards"][number]

    def shard_zero(self, endpoint):
        return self.shard(endpoint, 0)

    def test_a_replica_moved_under_load_loses_nothing(self):
        first = self.shard_zero(self.endpoints[3])
        self.assertEqual(sorted(first["voters"]), ["m0", "m1", "m2"])
        # Refused, with the reason.
        for members, why in [("m0,m9", "no node 'm9'"), ("m0,m0", "named twice"),
                             ("m0", "two replicas at least")]:
            p = self.ctl(self.endpoints[0], "shard", "place", "0", members, check=False)
            self.assertNotEqual(p.returncode, 0, members)
            self.assertIn(why, p.stderr, members)

        writers = Writers(self.endpoints).start()
        try:
            self.assertTrue(writers.wait_for_more(50), "no writes before the move")
            started = time.time()
            out = self.ctl(self.endpoints[3], "shard", "place", "0", "m1,m2,m3",
                           "--wait", "60").stdout
            took = time.time() - started
            self.assertIn("where they were placed", out)
            self.assertTrue(writers.wait_for_more(50), "no writes after the move")
        finally:
            writers.stop()
        print("shard 0 moved from m0 to m3 in %.2f s under %d acknowledged puts "
              "(%d failed calls); strata-ctl followed it:\n%s"
              % (took, len(writers.acknowledged), len(writers.failures), out))
        writers.check_everywhere(self, one_revision=False)
        self.assertEqual(moved(self.cluster.metrics_ports[3], "started"), 1)
        self.assertEqual(moved(self.cluster.metrics_ports[0], "deleted"), 1)
        # Every member learns where the shard is now.
        for endpoint in self.endpoints:
            deadline = time.time() + 5
            while sorted(self.shard_zero(endpoint)["voters"]) != ["m1", "m2", "m3"] and \
                    time.time() < deadline:
                time.sleep(0.1)
            self.assertEqual(sorted(self.shard_zero(endpoint)["voters"]), ["m1", "m2", "m3"],
                             endpoint)
        # /metrics and the dashboard say so too.
        self.assertRegex(metrics(self.cluster.metrics_ports[0]),
                         r'strata_cluster_shard_member\{shard="0",member="m3",role="(voter|leader)"\} 1')
        dom = Dom()
        dom.feed(run_chromium("http://127.0.0.1:%d/dashboard" % self.cluster.metrics_ports[0],
                              "--dump-dom"))
        self.assertNotIn("hidden", dom.by_id["panel-replicas"]["attrs"])
        self.assertIn("m1, m2, m3", dom.by_id["replicas"]["text"])
        # The replicas m0 holds, each one's resolved revision and its lag
        # in time (hybrid-clock revisions), not m0's empty store's.
        self.assertRegex(dom.by_id["resolved"]["text"], r"\d+ ms|\d+\.\d s")
        # Its key timeline reads a key's versions where the key's shard is
        # (m0 holds no replica of shard 0 now), not m0's own store.
        key = next("timeline-%d" % i for i in range(1000) if shard_of("timeline-%d" % i) == 0)
        revisions = []
        for value in ("one", "two", "three"):
            out, _ = etcdctl(self.endpoints[1], "put", key, value, "-w", "json")
            revisions.append(json.loads(out)["header"]["revision"])
        with urllib.request.urlopen("http://127.0.0.1:%d/dashboard/key?key=%s" % (
                self.cluster.metrics_ports[0], key), timeout=10) as r:
            timeline = json.loads(r.read())
        self.assertEqual([(v["revision"], v["value"], v["version"])
                          for v in timeline["versions"]],
                         list(zip(revisions, ["one", "two", "three"], [1, 2, 3])), timeline)
        self.assertGreaterEqual(timeline["current_revision"], revisions[-1])
        everywhere = ",".join(self.endpoints)
        deadline = time.time() + 10
        while True:
            out, _ = etcdctl(everywhere, "endpoint", "hashkv", "-w", "json")
            # Each member hashes at the revision its own Range reads at.
            hashes = {e["HashKV"]["hash"] for e in json.loads(out)}
            if len(hashes) == 1 or time.time() > deadline:
                break
            time.sleep(0.2)
        self.assertEqual(len(hashes), 1, hashes)

        # Restarted, m0 does not take shard 0 back; m3 reopens it.
        for i in (0, 3):
            self.cluster.members[i].stop()
            self.cluster.members[i].start()
        self.assertEqual(moved(self.cluster.metrics_ports[0], "started"), 0)
        # (m0 knows it from the group's next report, within a second.)
        deadline = time.time() + 10
        while time.time() < deadline:
            if all(sorted(self.shard_zero(self.endpoints[i])["voters"]) == ["m1", "m2", "m3"]
                   for i in (0, 3)):
                break
            time.sleep(0.1)
        for i in (0, 3):
            self.assertEqual(sorted(self.shard_zero(self.endpoints[i])["voters"]),
                             ["m1", "m2", "m3"], i)
        self.assertEqual(self.shard_zero(self.endpoints[3])["placement"], ["m1", "m2", "m3"])
        self.assertEqual(self.shard_zero(self.endpoints[0])["placement"], [],
                         "m0 holds no replica: it knows no placement")
        writers.check_everywhere(self, one_revision=False)

        writers = Writers(self.endpoints).start()
        try:
            self.assertTrue(writers.wait_for_more(50), "no writes before the drain")
            started = time.time()
            drained = self.ctl(self.endpoints[0], "shard", "drain", "m1", "--wait", "60").stdout
            took = time.time() - started
            self.assertIn("m1 holds no replica", drained)
            # The same members in another order: no membership change, the
            # first placed takes the leadership (within the leaders'
            # balance interval, 2 s).
            self.ctl(self.endpoints[0], "shard", "place", "3", "m0,m2,m3")
            deadline = time.time() + 10
            while self.shard(self.endpoints[0], 3)["leader"] != "m0" and time.time() < deadline:
                time.sleep(0.1)
            self.assertEqual(self.shard(self.endpoints[0], 3)["leader"], "m0")
            balanced = self.ctl(self.endpoints[2], "shard", "balance").stdout
            self.assertTrue(writers.wait_for_more(50), "no writes after the moves")
        finally:
            writers.stop()
        print("m1 drained in %.2f s, then balanced, under %d acknowledged puts (%d failed):\n%s%s"
              % (took, len(writers.acknowledged), len(writers.failures), drained, balanced))
        listed = json.loads(self.ctl(self.endpoints[1], "shard", "list", "-w", "json").stdout)
        load = {name: 0 for name in self.cluster.names}
        for shard in listed["shards"]:
            self.assertEqual(len(shard["voters"]), 3, shard)
            for voter in shard["voters"]:
                load[voter] += 1
        self.assertLessEqual(max(load.values()) - min(load.values()), 1, load)
        # And so are the leaders (each placed first where it should lead).
        self.assertTrue("leaderships handed over" in balanced or "already spread" in balanced,
                        balanced)
        leading = {name: 0 for name in self.cluster.names}
        for shard in listed["shards"]:
            leading[shard["leader"]] += 1
        self.assertLessEqual(max(leading.values()) - min(leading.values()), 1, leading)
        self.assertGreaterEqual(moved(self.cluster.metrics_ports[1], "deleted"), 3)
        writers.check_everywhere(self, one_revision=False)


if __name__ == "__main__":
    unittest.main()
