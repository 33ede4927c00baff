"""A member joins a sharded cluster and leaves it (`etcdctl member add` and
`member remove`), with replicated shards (--replication-factor 3), while
writers put keys through the first members:

- `etcdctl member add` lists the new member at once (unstarted: no name,
  as etcd shows one);
- started at once with --initial-cluster-state existing, it asks a member
  for the cluster's member list (its number, the shard count): another
  member than the one that added it, which reads the list before it
  answers; every member then lists it by name with its client URL; it
  serves clients at once, holding no replica; the same peer URL added
  again is refused with etcd's words;
- `strata-ctl shard balance` moves replicas onto it until no two members
  differ by more than one, and its /metrics count them and their keys;
  restarted, it keeps them (its copy of the list, even with flags that
  would number it otherwise), and with its copy lost and such flags it
  stops by itself once it reads the cluster's list; a first member
  restarted (its flags name three) lists it from its copy of the list;
- `member remove` refuses it while it holds replicas, naming `shard drain`;
  after `strata-ctl shard drain` it is removed, stops by itself (as a
  removed etcd member does), every member lists three, and a compaction
  goes through without it (the low-water mark no longer waits for its
  reports);
- a member removed while cut off from every other (through the others' 10 s
  of hearing it) stops by itself once it reaches one again, which refuses
  its peer stream as a removed member's;
- nothing acknowledged is lost, no call fails but through m2 while it
  restarts, and a node never added is refused at its start with the
  reason.

Debian's python3-etcd3 adds, lists and removes a member of such a
cluster in test_python_etcd3 (its protos and this test's stubs do not
load in one process).

The list itself (numbers never reused, names, refusals) is unit-tested in
tests/cluster (NodeListTest), a member's low-water mark and broadcasts as
nodes join and leave there too (MemberTest), and the replicas' groups
naming and placing them in tests/replication (ShardGroupsTest)."""
import json
import os
import re
import subprocess
import sys
import time
import unittest

from replicated_load import Writers
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "netfault"))
from netfault import Link  # noqa: E402
from servers import StrataCluster, StrataServer, etcdctl, free_port, metrics_text, strata_ctl

ARGS = ["--replication-factor", "3"]
# The member that joins: its name sorts before the first members', so a
# list made from flags (all four first members in name order) would give
# it number 0, another's.
NEW = "a3"


def sample(text, name):
    return float(re.search(r"^%s (\S+)$" % name, text, re.M).group(1))


class MembersJoin(unittest.TestCase):
    def setUp(self):
        self.cluster = StrataCluster.started_for(self, prefix="strata-join-", n=3,
                                                 extra_args=ARGS)
        self.endpoints = self.cluster.endpoints()
        self.peer_urls = ["http://127.0.0.1:%d" % p for p in self.cluster.peer_ports]

    def ctl(self, endpoint, *args, check=True):
        return strata_ctl(self, endpoint, *args, check=check)

    def members(self, endpoint):
        out, _ = etcdctl(endpoint, "member", "list", "-w", "json")
        return json.loads(out).get("members", [])

    def wait_members(self, endpoint, want, timeout=10):
        """The members `endpoint` lists once `want` (a predicate) holds."""
        deadline = time.time() + timeout
        while True:
            listed = self.members(endpoint)
            if want(listed) or time.time() > deadline:
                return listed
            time.sleep(0.1)

    def new_member(self, name, peer_port, state="existing", env=None):
        initial = ",".join("m%d=%s" % (i, url) for i, url in enumerate(self.peer_urls))
        initial += ",%s=http://127.0.0.1:%d" % (name, peer_port)
        metrics_port = free_port()
        server = StrataServer(
            data_dir=os.path.join(self.cluster.root, name), port=free_port(),
            extra_args=["--name", name, "--initial-cluster", initial,
                        "--initial-cluster-state", state,
                        "--listen-peer-urls", "http://127.0.0.1:%d" % peer_port,
                        "--listen-metrics-urls", "http://127.0.0.1:%d" % metrics_port] + ARGS,
            env=env)
        server.metrics_port = metrics_port
        return server

    def test_a_member_removed_while_cut_off_stops_once_it_reaches_one(self):
        # Its links to the others run through proxies, to cut them.
        links = [Link("a4->m%d" % i, ("127.0.0.1", port)).start()
                 for i, port in enumerate(self.cluster.peer_ports)]
        for link in links:
            self.addCleanup(link.stop)
        routes = ";".join("route=127.0.0.1:%d>127.0.0.1:%d" % (port, link.port)
                          for port, link in zip(self.cluster.peer_ports, links))
        peer_port = free_port()
        etcdctl(self.endpoints[0], "member", "add", "a4", "--peer-urls",
                "http://127.0.0.1:%d" % peer_port)
        a4 = self.new_member("a4", peer_port, env={"STRATA_PEER_FAULTS": routes})
        self.addCleanup(a4.stop)
        a4.start()
        listed = self.wait_members(self.endpoints[0],
                                   lambda ms: any(m.get("name") == "a4" for m in ms))
        a4_id = [m["ID"] for m in listed if m.get("name") == "a4"][0]
        # Cut off (it holds no replica: removed at once), through the others'
        # 10 s of hearing a member removed: it cannot read that it was.
        for link in links:
            link.cut()
        out, _ = etcdctl(self.endpoints[0], "member", "remove", "%x" % a4_id)
        self.assertIn("removed from cluster", out)
        time.sleep(12)
        self.assertIsNone(a4.proc.poll(), "a4 cannot have learned it yet:\n" + a4.log())
        for link in links:
            link.heal()
        # The first member it reaches refuses its peer stream as a removed one's.
        self.assertStopsByItself(a4, "once it reached the others again")
        self.assertRegex(a4.log(), r"removed from the cluster \(member 'm[012]' refuses it\)")
        for endpoint in self.endpoints:
            self.assertEqual(len(self.members(endpoint)), 3, endpoint)
        # Started again, it knows, and says so at once.
        with self.assertRaises(RuntimeError) as refused:
            a4.start()
        self.assertRegex(str(refused.exception),
                         r"removed from the cluster \(member 'm[012]' refuses it\); a removed "
                         r"member does not come back")
        self.assertEqual(a4.wait_exit(), 1)

    def assertStopsByItself(self, server, when):
        """`server` exits within 15 s, with 0, as a removed etcd member does."""
        try:
            code = server.wait_exit(timeout=15)
        except subprocess.TimeoutExpired:
            self.fail("it did not stop %s:\n%s" % (when, server.log()))
        self.assertEqual(code, 0, server.log())

    def replicas_of(self, endpoint):
        listed = json.loads(self.ctl(endpoint, "shard", "list", "-w", "json").stdout)
        count = {}
        for shard in listed["shards"]:
            for member in shard["voters"]:
                count[member] = count.get(member, 0) + 1
        return count

    def test_a_member_joins_takes_replicas_and_leaves(self):
        down_from = down_until = 0
        # A node never added is refused at its start, with the reason.
        stranger = self.new_member("m9", free_port())
        with self.assertRaises(RuntimeError) as refused:
            stranger.start()
        self.assertIn("no member was added with peer URL", str(refused.exception))
        stranger.kill()

        writers = Writers(self.endpoints).start()
        m3 = None
        try:
            self.assertTrue(writers.wait_for_more(30), "no writes before the join")
            peer_port = free_port()
            url = "http://127.0.0.1:%d" % peer_port
            # Added on m2; the new member then asks m0 first, which may not have read
            # the list since: it reads it before it answers.
            out, _ = etcdctl(self.endpoints[2], "member", "add", NEW, "--peer-urls", url)
            self.assertIn("ETCD_INITIAL_CLUSTER_STATE=\"existing\"", out)
            listed = self.members(self.endpoints[2])
            added = [m for m in listed if m["peerURLs"] == [url]]
            self.assertEqual(len(listed), 4, listed)
            self.assertEqual(added[0].get("name", ""), "", "listed unstarted: %s" % added)
            m3 = self.new_member(NEW, peer_port)
            self.addCleanup(m3.stop)
            m3.start()
            # The same peer URL twice: etcd's refusal.
            _, err = etcdctl(self.endpoints[1], "member", "add", "again", "--peer-urls", url,
                             check=False)
            self.assertIn("Peer URLs already exists", err)
            for endpoint in self.endpoints + [m3.endpoint]:
                listed = self.wait_members(
                    endpoint, lambda ms: any(m.get("name") == NEW and m.get("clientURLs")
                                             for m in ms))
                names = sorted(m.get("name", "") for m in listed)
                self.assertEqual(names, [NEW, "m0", "m1", "m2"], endpoint)
            # It serves at once, holding nothing.
            etcdctl(m3.endpoint, "put", "through-m3", "before")
            out, _ = etcdctl(self.endpoints[0], "get", "through-m3", "--print-value-only")
            self.assertEqual(out.strip(), "before")
            self.assertNotIn(NEW, self.replicas_of(m3.endpoint))

            started = time.time()
            self.ctl(m3.endpoint, "shard", "balance")
            balanced = time.time() - started
            count = self.replicas_of(self.endpoints[0])
            self.assertEqual(sum(count.values()), 9, count)
            self.assertLessEqual(max(count.values()) - min(count.values()), 1, count)
            self.assertGreaterEqual(count.get(NEW, 0), 2, count)
            self.assertTrue(writers.wait_for_more(30), "no writes after the balance")
            # Its /metrics speak of the replicas it holds: their keys, each
            # one's resolved revision (its own store holds none).
            text = metrics_text(m3.metrics_port)
            self.assertEqual(sample(text, "strata_shards"), count[NEW])
            self.assertGreater(sample(text, "etcd_debugging_mvcc_keys_total"), 100)
            self.assertGreater(sample(text, "strata_mvcc_versions_per_key_count"), 100)
            self.assertEqual(len(re.findall(r"^strata_shard_resolved_lag_seconds\{", text, re.M)),
                             count[NEW])

            # Restarted, it keeps its number and replicas (its own copy of
            # the list, written as it first started), even started as a
            # new member would be (its flags would number it otherwise).
            m3.stop()
            m3.extra_args[m3.extra_args.index("existing")] = "new"
            m3.start()
            etcdctl(m3.endpoint, "put", "through-m3", "after-restart")
            out, _ = etcdctl(self.endpoints[1], "get", "through-m3", "--print-value-only")
            self.assertEqual(out.strip(), "after-restart")
            # Its copy lost, its flags number it 0, m0's number: it stops by
            # itself once it reads the cluster's list. With the copy back,
            # it starts as before.
            m3.stop()
            copy = os.path.join(m3.data_dir, "members")
            with open(copy, "rb") as f:
                kept = f.read()
            os.remove(copy)
            m3.start()
            self.assertStopsByItself(m3, "started from the wrong flags")
            self.assertIn("numbers member 0 'm0', this member '%s'" % NEW, m3.log())
            with open(copy, "wb") as f:
                f.write(kept)
            m3.start()
            # So does a first member restarted: its flags name three, its
            # copy four.
            down_from = time.time()
            self.cluster.members[2].stop()
            self.cluster.members[2].start()
            # Its writer's channel reconnects after gRPC's backoff (a
            # second or more), failing fast meanwhile.
            down_until = time.time() + 5
            names = sorted(m.get("name", "") for m in self.wait_members(
                self.endpoints[2], lambda ms: len(ms) == 4))
            self.assertEqual(names, [NEW, "m0", "m1", "m2"])
            etcdctl(self.endpoints[2], "put", "through-m2", "after-restart")
            out, _ = etcdctl(m3.endpoint, "get", "through-m2", "--print-value-only")
            self.assertEqual(out.strip(), "after-restart")

            m3_id = [m["ID"] for m in self.members(self.endpoints[0]) if m.get("name") == NEW][0]
            hex_id = "%x" % m3_id
            _, err = etcdctl(self.endpoints[0], "member", "remove", hex_id, check=False)
            self.assertIn("still holds replicas", err)
            self.assertIn("shard drain " + NEW, err)

            self.ctl(self.endpoints[0], "shard", "drain", NEW)
            self.assertNotIn(NEW, self.replicas_of(self.endpoints[0]))
            # The groups' reports reach the member asked within a second.
            deadline = time.time() + 10
            while True:
                out, err = etcdctl(self.endpoints[1], "member", "remove", hex_id, check=False)
                if "removed from cluster" in out or time.time() > deadline:
                    break
                time.sleep(0.3)
            self.assertIn("removed from cluster", out, err)
            # Removed while running, it stops by itself, as etcd's does.
            self.assertStopsByItself(m3, "after its removal")
            self.assertIn("removed from the cluster", m3.log())
            for endpoint in self.endpoints:
                listed = self.wait_members(endpoint, lambda ms: len(ms) == 3)
                self.assertEqual(sorted(m["name"] for m in listed), ["m0", "m1", "m2"], endpoint)
            self.assertTrue(writers.wait_for_more(30), "no writes after the removal")
        finally:
            writers.stop()
        if m3 is not None:
            m3.stop()
        print(NEW + " joined, took replicas (%.2f s), was drained and removed under %d acknowledged "
              "puts (%d failed calls)" % (balanced, len(writers.acknowledged),
                                          len(writers.failures)))
        writers.check_everywhere(self, one_revision=False)
        # Only m2's writer failed, and only while m2 restarted.
        for index, code, at in writers.failures:
            self.assertEqual(index, 2, (code, at))
            self.assertTrue(down_from <= at <= down_until, (code, at, down_from, down_until))
        # The low-water mark no longer waits for the member removed: a compaction
        # of a recent revision goes through.
        out, _ = etcdctl(self.endpoints[0], "put", "last", "x", "-w", "json")
        revision = json.loads(out)["header"]["revision"]
        deadline = time.time() + 10
        while True:
            out, err = etcdctl(self.endpoints[0], "compaction", str(revision), check=False)
            if "compacted revision" in out or time.time() > deadline:
                break
            time.sleep(0.3)
        self.assertIn("compacted revision %d" % revision, out, err)


if __name__ == "__main__":
    unittest.main()
