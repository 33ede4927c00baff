"""Three strata-servers replicating one key space (--cluster-mode
replicated: one Raft group, as etcd), through clients we did not write
(etcdctl) and raw gRPC:

- an etcdctl session: a write on any member is read on every member
  (linearizable and serializable), revisions numbered as one etcd numbers
  them, a Txn, a past revision, compaction, a watch, a lease granted,
  attached, asked about, kept alive and revoked through different members
  (each member's /metrics counting it, its dashboard's key timeline
  showing its own copy's versions);
  what is not served yet (strata.v1) says so;
- users, roles and permissions changed through any member are enforced by
  every member; a token one member hands out works on the others; after
  the leader's kill the others enforce and take changes, and the killed
  member, started again, learns of one from a snapshot;
- leases: one left alone ends on every member, not before its TTL; one
  kept alive by etcdctl outlives the leader's kill -9 and ends once no
  longer kept alive;
- writers on every member while each member in turn is killed -9 and
  restarted: every acknowledged put is on every member afterwards, at the
  revision its reply named, the members agree on the whole history, the
  cluster keeps taking writes (the failover time is printed), and
  /metrics names the leader; a watcher started on each member, moving to
  the next member when its own dies (as etcd's clients do), sees every
  revision once, in order;
- etcdctl endpoint status, endpoint hashkv and member list across the
  members (one leader named everywhere, one history's hash), move-leader
  to a follower, defrag; etcdctl snapshot save from a member, restored by
  strata-ctl as one node with the same keys, history's hash and users, and
  a new three-member cluster started from it with --restore (its users
  on every member);
- a member started again with another cluster token is refused (its member
  id, its number in Raft, derives from it);
- a member started again with an empty data directory is refused (the
  group holds another incarnation of it) and says so; the others go on;
  a fourth voter refused meanwhile (etcd's strict reconfiguration check);
  removed (etcdctl member remove) and added again as a learner (member add
  --learner), it starts from an empty disk, catches up under the writers
  (serving, as etcd's learners, Status and serializable Ranges only, the
  rest refused in etcd's words) and is promoted (member promote) once in
  sync;
- a fourth member added with etcdctl member add and started with
  --initial-cluster-state existing serves reads and writes; the leader
  removed through a follower steps down and the others go on; etcd's
  errors for a member not found, a URL taken, a voter promoted, an update;
- a serializable read with the strata-min-revision metadata (the header
  revision of a write) sees that write on every member, and one ahead of
  every member waits until a write brings it;
- members over --peer-auto-tls: Raft and forwarded writes go over TLS, and
  the peer port refuses plain text.
"""
import json
import os
import re
import shutil
import subprocess
import threading
import time
import unittest
import urllib.request

import grpc

from replicated_load import Watchers, Writers, leader_of, pb, raft_metrics, rpc
from servers import (StrataCluster, StrataServer, etcdctl, etcdctl_binary, free_port,
                     strata_binary, strata_ctl_binary)


def health(port):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d/health" % port, timeout=5) as r:
            return json.loads(r.read().decode())["health"] == "true"
    except OSError:
        return False


def metrics_of(port):
    """A member's unlabelled /metrics samples, by name."""
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5) as r:
        text = r.read().decode()
    return {m.group(1): float(m.group(2))
            for m in re.finditer(r"^(\w+) ([0-9.e+-]+)$", text, re.M)}


class ReplicatedTest(unittest.TestCase):
    def setUp(self):
        # Snapshots every few hundred writes, so members take them under
        # the writers below (netfault_replicated has a member catch up from
        # one).
        self.cluster = StrataCluster.started_for(
            self, prefix="strata-replicated-",
            extra_args=["--cluster-mode", "replicated", "--snapshot-count", "200"])
        self.wait_for_leader()

    def wait_for_leader(self, timeout=15):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if all(health(p) for p, m in zip(self.cluster.metrics_ports, self.cluster.members)
                   if m.proc.poll() is None):
                return
            time.sleep(0.05)
        self.fail("no leader within %d s" % timeout)

    def test_etcdctl_session(self):
        a, b, c = self.cluster.endpoints()
        out, _ = etcdctl(a, "put", "greeting", "hello", "-w", "json")
        self.assertEqual(json.loads(out)["header"]["revision"], 2)  # as etcd: from 2
        out, _ = etcdctl(b, "put", "greeting", "again", "-w", "json")
        self.assertEqual(json.loads(out)["header"]["revision"], 3)
        for endpoint in (a, b, c):
            out, _ = etcdctl(endpoint, "get", "greeting", "--print-value-only")
            self.assertEqual(out.strip(), "again")
            out, _ = etcdctl(endpoint, "get", "greeting", "--rev", "2", "--print-value-only")
            self.assertEqual(out.strip(), "hello")
        out, _ = etcdctl(c, "txn", "-w", "json", stdin='value("greeting") = "again"\n\n'
                         'put txn-key yes\n\nput txn-key no\n\n')
        self.assertTrue(json.loads(out)["succeeded"])
        # Serializable reads answer from each member's own replica; once the
        # write is applied everywhere they agree.
        deadline = time.time() + 5
        while True:
            values = [etcdctl(e, "get", "txn-key", "--consistency", "s",
                              "--print-value-only")[0].strip() for e in (a, b, c)]
            if values == ["yes"] * 3 or time.time() > deadline:
                break
            time.sleep(0.05)
        self.assertEqual(values, ["yes"] * 3)
        etcdctl(a, "compact", "3")
        _, err = etcdctl(b, "get", "greeting", "--rev", "2", check=False)
        self.assertIn("required revision has been compacted", err)
        # A watch on one member sees a write through another.
        watch = subprocess.Popen([etcdctl_binary(), "--endpoints", b, "watch", "watched"],
                                 stdout=subprocess.PIPE, text=True)

        def end_watch():
            watch.kill()
            watch.wait()
            watch.stdout.close()
        self.addCleanup(end_watch)
        time.sleep(0.5)
        etcdctl(c, "put", "watched", "seen")
        self.assertEqual([watch.stdout.readline().strip() for _ in range(3)],
                         ["PUT", "watched", "seen"])
        # Leases: granted on one member, attached on another, asked about,
        # kept alive and revoked on others.
        granted_at = time.monotonic()
        out, _ = etcdctl(a, "lease", "grant", "30")
        lease = re.match(r"lease ([0-9a-f]+) granted with TTL\(30s\)", out).group(1)
        etcdctl(b, "put", "leased", "x", "--lease", lease)
        out, _ = etcdctl(c, "lease", "timetolive", lease, "--keys")
        asked_after = time.monotonic() - granted_at
        found = re.search(r"granted with TTL\(30s\), remaining\((\d+)s\), "
                          r"attached keys\(\[leased\]\)", out)
        self.assertIsNotNone(found, out)
        # What passed since the grant (three etcdctl runs, seconds under
        # load), and a second of rounding.
        self.assertGreaterEqual(int(found.group(1)), 30 - int(asked_after) - 1, out)
        self.assertLessEqual(int(found.group(1)), 30, out)
        out, _ = etcdctl(b, "lease", "keep-alive", "--once", lease)
        self.assertIn("keepalived with TTL(30)", out)
        out, _ = etcdctl(c, "lease", "list")
        self.assertIn(lease, out)
        # Each member's /metrics counts its own copy's leases, and its
        # dashboard's key timeline shows its own copy's versions.
        for port in self.cluster.metrics_ports:
            deadline = time.time() + 5
            while metrics_of(port).get("strata_leases") != 1 and time.time() < deadline:
                time.sleep(0.05)
            self.assertEqual(metrics_of(port).get("strata_leases"), 1)
            with urllib.request.urlopen("http://127.0.0.1:%d/dashboard/key?key=greeting"
                                        % port, timeout=5) as r:
                timeline = json.loads(r.read().decode())
            self.assertIn("again", [v.get("value") for v in timeline["versions"]])
            self.assertGreaterEqual(timeline["current_revision"], 6)
            self.assertEqual(timeline["compact_revision"], 3)
        _, err = etcdctl(a, "put", "other", "x", "--lease", "1234", check=False)
        self.assertIn("requested lease not found", err)
        etcdctl(c, "lease", "revoke", lease)
        for endpoint in (a, b, c):
            self.assertEqual(etcdctl(endpoint, "get", "leased")[0], "")
        out, _ = etcdctl(a, "lease", "timetolive", lease)
        self.assertIn("already expired", out)
        p = subprocess.run([strata_ctl_binary(), "--endpoints", c, "txn"], input="",
                           capture_output=True, text=True, timeout=30)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("not served by a replicated strata cluster", p.stderr + p.stdout)

    def test_users_and_roles_are_the_groups(self):
        a, b, c = self.cluster.endpoints()
        # Each change through another member.
        etcdctl(a, "user", "add", "root:rootpw")
        etcdctl(b, "role", "add", "root")
        etcdctl(c, "user", "grant-role", "root", "root")
        etcdctl(a, "user", "add", "alice:alicepw")
        etcdctl(b, "role", "add", "reader")
        etcdctl(c, "role", "grant-permission", "reader", "read", "/pub/", "--prefix=true")
        etcdctl(a, "user", "grant-role", "alice", "reader")
        etcdctl(b, "auth", "enable")
        etcdctl(c, "--user", "root:rootpw", "put", "/pub/x", "1")
        alice = ["--user", "alice:alicepw"]
        for endpoint in (a, b, c):
            _, err = etcdctl(endpoint, "get", "/pub/x", check=False)
            self.assertIn("user name is empty", err)
            out, _ = etcdctl(endpoint, *alice, "get", "/pub/x", "--print-value-only")
            self.assertEqual(out.strip(), "1")
            _, err = etcdctl(endpoint, *alice, "put", "/pub/x", "2", check=False)
            self.assertIn("permission denied", err)

        def token(endpoint, name, password):
            with grpc.insecure_channel(endpoint) as ch:
                return rpc.AuthStub(ch).Authenticate(
                    pb.AuthenticateRequest(name=name, password=password), timeout=10).token

        # A lease's keys are checked on the member's copy: alice may not
        # revoke a lease whose key she may only read.
        out, _ = etcdctl(a, "--user", "root:rootpw", "lease", "grant", "60")
        lease = re.match(r"lease ([0-9a-f]+) granted", out).group(1)
        etcdctl(b, "--user", "root:rootpw", "put", "/pub/leased", "x", "--lease", lease)
        _, err = etcdctl(c, *alice, "lease", "revoke", lease, check=False)
        self.assertIn("permission denied", err)
        out, _ = etcdctl(a, *alice, "get", "/pub/leased", "--print-value-only")
        self.assertEqual(out.strip(), "x")
        # A token one member handed out works on the others.
        alices = token(a, "alice", "alicepw")
        for endpoint in (b, c):
            with grpc.insecure_channel(endpoint) as ch:
                r = rpc.KVStub(ch).Range(pb.RangeRequest(key=b"/pub/x"),
                                         metadata=[("token", alices)], timeout=10)
                self.assertEqual(r.kvs[0].value, b"1")
        # The leader killed: the others enforce and take changes. Alice
        # loses her role and more writes than a snapshot's worth follow, so
        # the killed member, started again, learns of it from a snapshot.
        leader = leader_of(self.cluster)
        self.cluster.members[leader].kill()
        survivor = self.cluster.endpoints()[(leader + 1) % 3]
        # Until the others elect a leader, a change is refused in etcd's words.
        _, err = etcdctl(survivor, "--user", "root:rootpw", "role", "add", "early", check=False)
        self.assertTrue(err == "" or ("etcdserver: " in err and "storage failed" not in err), err)
        self.wait_for_leader()
        etcdctl(survivor, "--user", "root:rootpw", "user", "revoke-role", "alice", "reader")
        roots = token(survivor, "root", "rootpw")
        with grpc.insecure_channel(survivor) as ch:
            kv = rpc.KVStub(ch)
            for i in range(300):
                kv.Put(pb.PutRequest(key=b"/pub/n%d" % i, value=b"v"),
                       metadata=[("token", roots)], timeout=10)
        self.cluster.members[leader].start()
        self.wait_for_leader()
        restarted = self.cluster.endpoints()[leader]
        deadline = time.time() + 10
        while True:
            out, _ = etcdctl(restarted, "--user", "root:rootpw", "get", "/pub/n299",
                             "--consistency", "s", "--print-value-only", check=False)
            if out.strip() == "v" or time.time() > deadline:
                break
            time.sleep(0.1)
        self.assertEqual(out.strip(), "v")
        _, err = etcdctl(restarted, *alice, "get", "/pub/x", check=False)
        self.assertIn("permission denied", err)
        restored = metrics_of(self.cluster.metrics_ports[leader]).get(
            "strata_raft_snapshots_restored_total", 0)
        print("the restarted member restored %d snapshots" % restored)
        self.assertGreater(restored, 0)

    def test_endpoint_status_hashkv_and_member_list(self):
        endpoints = self.cluster.endpoints()
        everywhere = ",".join(endpoints)
        for i in range(20):
            etcdctl(endpoints[i % 3], "put", "k%d" % i, "v%d" % i)
        out, _ = etcdctl(endpoints[0], "member", "list", "-w", "json")
        members = {m["name"]: m["ID"] for m in json.loads(out)["members"]}
        self.assertEqual(sorted(members), sorted(self.cluster.names))
        # Every member names the same leader, the one /metrics says leads,
        # with Raft's term and index.
        leader = self.cluster.names[leader_of(self.cluster)]
        out, _ = etcdctl(everywhere, "endpoint", "status", "-w", "json")
        statuses = [e["Status"] for e in json.loads(out)]
        self.assertEqual(len(statuses), 3)
        for status in statuses:
            self.assertEqual(status["leader"], members[leader])
            self.assertGreater(status["raftTerm"], 0)
            self.assertGreaterEqual(status["raftIndex"], 20)
            self.assertGreater(status["dbSize"], 0)
        self.assertEqual(sorted(st["header"]["member_id"] for st in statuses),
                         sorted(members.values()))
        # The members hold one history: etcd's consistency check agrees
        # once the last write is applied everywhere.
        deadline = time.time() + 5
        while True:
            out, _ = etcdctl(everywhere, "endpoint", "hashkv", "-w", "json")
            hashes = {(e["HashKV"]["hash"], e["HashKV"]["header"]["revision"])
                      for e in json.loads(out)}
            if len(hashes) == 1 or time.time() > deadline:
                break
            time.sleep(0.1)
        self.assertEqual(len(hashes), 1, hashes)
        # etcdctl move-leader hands leadership to a follower (etcdctl
        # finds the leader among the endpoints and asks it).
        target = next(name for name in self.cluster.names if name != leader)
        out, _ = etcdctl(everywhere, "move-leader", "%x" % members[target])
        self.assertIn("Leadership transferred", out)
        # The old leader answers once the target's appends reached it, and
        # the target says it leads before they leave; /metrics is read one
        # member after another, so a moment without a leader is allowed,
        # another leader is not.
        deadline = time.time() + 2
        now_leading = leader_of(self.cluster)
        while now_leading is None and time.time() < deadline:
            time.sleep(0.05)
            now_leading = leader_of(self.cluster)
        self.assertIsNotNone(now_leading)
        self.assertEqual(self.cluster.names[now_leading], target)
        etcdctl(endpoints[0], "put", "after-move", "x")
        _, err = etcdctl(endpoints[self.cluster.names.index(leader)], "move-leader",
                         "%x" % members[leader], check=False)
        self.assertIn("no leader endpoint given", err)
        follower = rpc.MaintenanceStub(grpc.insecure_channel(
            endpoints[self.cluster.names.index(leader)]))
        with self.assertRaises(grpc.RpcError) as refused:
            follower.MoveLeader(pb.MoveLeaderRequest(targetID=members[leader]), timeout=10)
        self.assertEqual(refused.exception.details(), "etcdserver: not leader")
        # etcd's metrics say the same of every member's own copy: one
        # leader, the same keys, a store of some size.
        deadline = time.time() + 5
        while True:
            figures = [metrics_of(p) for p in self.cluster.metrics_ports]
            keys = {f["etcd_debugging_mvcc_keys_total"] for f in figures}
            if keys == {21.0} or time.time() > deadline:
                break
            time.sleep(0.1)
        self.assertEqual(keys, {21.0})
        self.assertEqual([f["etcd_server_has_leader"] for f in figures], [1.0] * 3)
        self.assertEqual(sorted(f["etcd_server_is_leader"] for f in figures), [0.0, 0.0, 1.0])
        self.assertTrue(all(f["etcd_mvcc_db_total_size_in_bytes"] > 0 for f in figures))
        etcdctl(endpoints[1], "defrag")
        # etcdctl snapshot save from a member: its own copy, which restores
        # as one node holding the same history (same keys, same hash) and
        # the same users.
        etcdctl(endpoints[0], "user", "add", "carol:carolpw")
        snap = os.path.join(self.cluster.root, "snap.db")
        out, _ = etcdctl(endpoints[2], "snapshot", "save", snap)
        self.assertIn("Snapshot saved at", out)
        restored = os.path.join(self.cluster.root, "restored")
        subprocess.run([strata_ctl_binary(), "snapshot", "restore", snap, "--data-dir", restored],
                       check=True, capture_output=True, timeout=60)
        alone = StrataServer(data_dir=restored).start()
        self.addCleanup(alone.stop)
        for view in [("get", "", "--prefix", "-w", "json"), ("endpoint", "hashkv", "-w", "json")]:
            want = json.loads(etcdctl(endpoints[2], *view)[0])
            got = json.loads(etcdctl(alone.endpoint, *view)[0])
            if view[0] == "get":
                self.assertEqual(got["kvs"], want["kvs"])
                self.assertEqual(len(got["kvs"]), 21)
            else:
                self.assertEqual(got[0]["HashKV"]["hash"], want[0]["HashKV"]["hash"])
        self.assertEqual(etcdctl(alone.endpoint, "user", "list")[0].split(), ["carol"])
        # A new replicated cluster started from it (--restore on every
        # member): every member holds the history and takes writes on from
        # the snapshot's revision.
        want = json.loads(etcdctl(endpoints[2], "get", "", "--prefix", "-w", "json")[0])
        again = StrataCluster.started_for(
            self, prefix="strata-replicated-restored-",
            extra_args=["--cluster-mode", "replicated", "--restore", snap])
        for endpoint in again.endpoints():
            got = json.loads(etcdctl(endpoint, "get", "", "--prefix", "-w", "json")[0])
            self.assertEqual(got["kvs"], want["kvs"])
            self.assertEqual(etcdctl(endpoint, "user", "list")[0].split(), ["carol"])
        out, _ = etcdctl(again.endpoints()[0], "put", "after-restore", "1", "-w", "json")
        self.assertEqual(json.loads(out)["header"]["revision"], want["header"]["revision"] + 1)

    def test_leases_expire_by_the_leader_and_outlive_a_leader_change_when_kept_alive(self):
        endpoints = self.cluster.endpoints()
        everywhere = ",".join(endpoints)
        # One lease left alone (TTL 2 s, etcd's minimum): its key goes on
        # every member, not before its time.
        granted_at = time.time()
        out, _ = etcdctl(endpoints[1], "lease", "grant", "2")
        alone = re.match(r"lease ([0-9a-f]+) granted", out).group(1)
        etcdctl(endpoints[2], "put", "alone", "x", "--lease", alone)
        time.sleep(max(0, granted_at + 1.0 - time.time()))
        self.assertEqual(etcdctl(endpoints[0], "get", "alone", "--print-value-only")[0].strip(),
                         "x", "the lease ended before its TTL")
        self.wait_until_gone("alone", endpoints, 10)
        expired_in = time.time() - granted_at
        # One kept alive by etcdctl through every member, across the
        # leader's death: the new leader gives it its full TTL again, so it
        # never lapses; once nobody keeps it alive, the new leader ends it.
        out, _ = etcdctl(endpoints[0], "lease", "grant", "3")
        kept = re.match(r"lease ([0-9a-f]+) granted", out).group(1)
        etcdctl(endpoints[0], "put", "kept", "y", "--lease", kept)
        keeper = subprocess.Popen([etcdctl_binary(), "--endpoints", everywhere, "lease",
                                   "keep-alive", kept], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        self.addCleanup(keeper.kill)
        leader = leader_of(self.cluster)
        self.assertIsNotNone(leader)
        self.cluster.members[leader].kill()
        survivors = [e for i, e in enumerate(endpoints) if i != leader]
        self.wait_for_leader()
        time.sleep(4.5)  # past the lease's TTL
        for endpoint in survivors:
            self.assertEqual(etcdctl(endpoint, "get", "kept", "--print-value-only")[0].strip(),
                             "y", "a kept-alive lease lapsed across a leader change")
        keeper.kill()
        keeper.wait()
        stopped_at = time.time()
        self.wait_until_gone("kept", survivors, 15)
        print("a 2 s lease left alone ended after %.1f s; a 3 s lease, once no longer kept "
              "alive after a leader change, after %.1f s" % (expired_in, time.time() - stopped_at))

    def wait_until_gone(self, key, endpoints, timeout):
        deadline = time.time() + timeout
        for endpoint in endpoints:
            while etcdctl(endpoint, "get", key)[0] != "":
                self.assertLess(time.time(), deadline, "%s still on %s" % (key, endpoint))
                time.sleep(0.1)

    def test_a_serializable_read_with_a_min_revision_waits_for_it(self):
        kv = [rpc.KVStub(grpc.insecure_channel(e)) for e in self.cluster.endpoints()]
        token = kv[0].Put(pb.PutRequest(key=b"mine", value=b"1"), timeout=10).header.revision
        for stub in kv:
            r = stub.Range(pb.RangeRequest(key=b"mine", serializable=True), timeout=10,
                           metadata=[("strata-min-revision", str(token))])
            self.assertEqual([x.value for x in r.kvs], [b"1"])
            self.assertGreaterEqual(r.header.revision, token)
        # A revision no member has yet: the read waits for the write that
        # brings it, on another member.
        result = {}

        def read():
            result["r"] = kv[2].Range(pb.RangeRequest(key=b"later", serializable=True),
                                      timeout=10, metadata=[("strata-min-revision",
                                                             str(token + 1))])
        reader = threading.Thread(target=read)
        reader.start()
        time.sleep(0.5)
        self.assertTrue(reader.is_alive(), "answered before its revision existed")
        kv[1].Put(pb.PutRequest(key=b"later", value=b"2"), timeout=10)
        reader.join(10)
        self.assertEqual([x.value for x in result["r"].kvs], [b"2"])
        with self.assertRaises(grpc.RpcError) as refused:
            kv[0].Range(pb.RangeRequest(key=b"mine", serializable=True), timeout=10,
                        metadata=[("strata-min-revision", "soon")])
        self.assertEqual(refused.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)

    def test_a_member_started_with_another_token_is_refused(self):
        # A member's number in Raft is its member id, from its peer URL and
        # the token: another would answer as a member its log never was.
        member = self.cluster.members[0]
        member.stop()
        p = subprocess.run([strata_binary(), "--listen-client-urls", "http://127.0.0.1:0",
                            "--data-dir", member.data_dir, "--initial-cluster-token", "other"]
                           + member.extra_args, capture_output=True, text=True, timeout=30)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("this member first started as member", p.stderr)
        member.start()  # with its own flags it starts again

    def test_a_member_that_lost_its_disk_is_refused_until_removed_and_added_again(self):
        """A follower killed, its data directory wiped and started again:
        the group holds another incarnation of it, so the others refuse its
        batches (its votes and acknowledgements count for nothing) and tell
        it; it reports itself unhealthy, naming why, and the other two go on
        without losing anything. Removed and added again as a learner, it
        catches up from nothing under the writers and is promoted."""
        endpoints = self.cluster.endpoints()
        writers = Writers(endpoints).start()
        try:
            self.assertTrue(writers.wait_for_more(50), "no writes at all")
            leader = leader_of(self.cluster)
            victim = (leader + 1) % 3
            others = [i for i in range(3) if i != victim]
            member = self.cluster.members[victim]
            member.kill()
            shutil.rmtree(member.data_dir)
            os.makedirs(member.data_dir)
            member.start()
            port = self.cluster.metrics_ports[victim]
            deadline = time.time() + 15
            while raft_metrics(port).get("strata_raft_member_replaced") != 1:
                self.assertLess(time.time(), deadline, "the wiped member was not told")
                time.sleep(0.1)
            self.assertFalse(health(port), "a refused member says it is healthy")
            self.assertTrue(writers.wait_for_more(50), "the others stopped taking writes")
            refused = sum(raft_metrics(self.cluster.metrics_ports[i]).get(
                "strata_raft_refused_from_replaced_members_total", 0) for i in others)
            self.assertGreater(refused, 0)
            self.assertIn(leader_of(self.cluster), others)
            self.assertIn("data directory was replaced or wiped", member.log())

            survivor = endpoints[others[0]]
            # etcd's strict check: with one of three refused (unheard by the
            # leader for more than an election timeout), a fourth voter would
            # leave two of four, not a majority: refused.
            time.sleep(1.5)
            _, err = etcdctl(survivor, "member", "add", "m9",
                             "--peer-urls=http://127.0.0.1:%d" % free_port(), check=False)
            self.assertIn("not enough started members", err)

            # Removed, and added again as a learner with the same peer URL.
            out, _ = etcdctl(survivor, "member", "list", "-w", "json")
            victim_id = {m["name"]: m["ID"] for m in json.loads(out)["members"]}[
                self.cluster.names[victim]]
            member.kill()
            out, _ = etcdctl(survivor, "member", "remove", "%x" % victim_id)
            self.assertIn("removed from cluster", out)
            shutil.rmtree(member.data_dir)
            os.makedirs(member.data_dir)
            peer_url = member.extra_args[member.extra_args.index("--listen-peer-urls") + 1]
            out, _ = etcdctl(survivor, "member", "add", self.cluster.names[victim], "--learner",
                             "--peer-urls=" + peer_url)
            self.assertIn('ETCD_INITIAL_CLUSTER_STATE="existing"', out)
            # etcdctl pads the id to 16 columns ("%16x"): an id of fewer
            # digits follows two spaces.
            self.assertRegex(out, r"Member +%x added" % victim_id, "its id derives from its URL")
            member.extra_args += ["--initial-cluster-state", "existing"]
            member.start()
            # As etcd's, a learner serves Status and serializable Ranges
            # only (once it has learned it is one).
            learner = endpoints[victim]
            deadline = time.time() + 15
            while True:
                _, err = etcdctl(learner, "put", "on-learner", "x", check=False)
                if "rpc not supported for learner" in err:
                    break
                self.assertLess(time.time(), deadline, "the learner took a put: " + err)
                time.sleep(0.2)
            for args in [("get", "before-learner", "--consistency", "s"),
                         ("endpoint", "status")]:
                etcdctl(learner, *args)
            # The rest, a stream too, through raw gRPC (etcdctl retries
            # reads and watches that are refused so, for seconds or for good).
            with grpc.insecure_channel(learner) as ch:
                calls = [
                    lambda: rpc.KVStub(ch).Range(pb.RangeRequest(key=b"k"), timeout=10),
                    lambda: rpc.ClusterStub(ch).MemberList(pb.MemberListRequest(), timeout=10),
                    lambda: rpc.LeaseStub(ch).LeaseGrant(pb.LeaseGrantRequest(TTL=10),
                                                         timeout=10),
                    lambda: rpc.AuthStub(ch).UserList(pb.AuthUserListRequest(), timeout=10),
                    lambda: next(rpc.WatchStub(ch).Watch(iter([pb.WatchRequest(
                        create_request=pb.WatchCreateRequest(key=b"k"))]), timeout=10)),
                ]
                for call in calls:
                    with self.assertRaises(grpc.RpcError) as refused:
                        call()
                    self.assertEqual(refused.exception.code(), grpc.StatusCode.UNAVAILABLE)
                    self.assertEqual(refused.exception.details(),
                                     "etcdserver: rpc not supported for learner")
            # Promoted once in sync with the leader (etcd's check).
            deadline = time.time() + 20
            while True:
                out, err = etcdctl(survivor, "member", "promote", "%x" % victim_id, check=False)
                if "promoted" in out:
                    break
                self.assertIn("in sync with leader", err)
                self.assertLess(time.time(), deadline, "the learner never caught up")
                time.sleep(0.2)
            self.assertTrue(writers.wait_for_more(50), "no writes after the promotion")
        finally:
            writers.stop()
        # Everything acknowledged is on all three, the member added again
        # included; it is healthy, a voter, and every member lists it.
        writers.check_everywhere(self)
        self.wait_for_leader()
        self.assertEqual(raft_metrics(port).get("strata_raft_member_replaced"), 0)
        for endpoint in endpoints:
            out, _ = etcdctl(endpoint, "member", "list", "-w", "json")
            listed = sorted((m["name"], m["clientURLs"], m.get("isLearner", False))
                            for m in json.loads(out)["members"])
            self.assertEqual(listed, sorted((name, ["http://" + e], False) for name, e in
                                            zip(self.cluster.names, endpoints)))

    def test_members_added_and_removed_with_etcdctl(self):
        endpoints = self.cluster.endpoints()
        etcdctl(endpoints[0], "put", "before", "1")
        # A fourth member: added first, then started with every member's
        # peer URL and --initial-cluster-state existing, as etcd's.
        peer_port, metrics_port = free_port(), free_port()
        peer_url = "http://127.0.0.1:%d" % peer_port
        out, _ = etcdctl(endpoints[1], "member", "add", "m3", "--peer-urls=" + peer_url)
        initial = re.search(r'ETCD_INITIAL_CLUSTER="([^"]+)"', out).group(1)
        self.assertEqual(sorted(initial.split(",")), sorted(
            ["m%d=http://127.0.0.1:%d" % (i, p) for i, p in enumerate(self.cluster.peer_ports)]
            + ["m3=" + peer_url]))
        args = ["--name", "m3", "--initial-cluster", initial, "--initial-cluster-state",
                "existing", "--listen-peer-urls", peer_url, "--listen-metrics-urls",
                "http://127.0.0.1:%d" % metrics_port, "--cluster-mode", "replicated"]
        fourth = StrataServer(data_dir=os.path.join(self.cluster.root, "m3"), extra_args=args,
                              port=free_port())
        self.cluster.members.append(fourth)
        self.cluster.metrics_ports.append(metrics_port)
        fourth.start()
        self.wait_for_leader()
        out, _ = etcdctl(fourth.endpoint, "get", "before", "--print-value-only")
        self.assertEqual(out.strip(), "1")
        etcdctl(fourth.endpoint, "put", "through-m3", "2")
        out, _ = etcdctl(endpoints[2], "get", "through-m3", "--print-value-only")
        self.assertEqual(out.strip(), "2")
        out, _ = etcdctl(fourth.endpoint, "member", "list", "-w", "json")
        members = {m["name"]: m for m in json.loads(out)["members"]}
        self.assertEqual(sorted(members), ["m0", "m1", "m2", "m3"])
        self.assertEqual(members["m3"]["clientURLs"], ["http://" + fourth.endpoint])

        # etcd's refusals.
        _, err = etcdctl(endpoints[0], "member", "remove", "1234", check=False)
        self.assertIn("etcdserver: member not found", err)
        _, err = etcdctl(endpoints[0], "member", "promote", "%x" % members["m0"]["ID"],
                         check=False)
        self.assertIn("etcdserver: can only promote a learner member", err)
        _, err = etcdctl(endpoints[0], "member", "add", "again", "--peer-urls=" + peer_url,
                         check=False)
        self.assertIn("etcdserver: Peer URLs already exists", err)
        _, err = etcdctl(endpoints[0], "member", "update", "%x" % members["m0"]["ID"],
                         "--peer-urls=http://127.0.0.1:1", check=False)
        self.assertIn("a member's peer URL cannot change", err)

        # The leader removed through a follower: answered, it steps down,
        # the other three elect a leader and go on; it says it was removed.
        leader = leader_of(self.cluster)
        follower = next(i for i in range(4) if i != leader)
        everyone = self.cluster.endpoints()
        out, _ = etcdctl(everyone[follower], "member", "remove",
                         "%x" % members[(self.cluster.names + ["m3"])[leader]]["ID"])
        self.assertIn("removed from cluster", out)
        rest = [i for i in range(4) if i != leader]
        deadline = time.time() + 15
        while leader_of(self.cluster, among=rest) is None:
            self.assertLess(time.time(), deadline, "no leader among the rest")
            time.sleep(0.1)
        self.assertIn(leader_of(self.cluster), rest)
        etcdctl(everyone[rest[0]], "put", "after", "3")
        out, _ = etcdctl(everyone[rest[1]], "get", "after", "--print-value-only")
        self.assertEqual(out.strip(), "3")
        self.assertFalse(health(self.cluster.metrics_ports[leader]))
        self.assertIn("this member was removed from the cluster",
                      self.cluster.members[leader].log())
        out, _ = etcdctl(everyone[rest[2]], "member", "list", "-w", "json")
        self.assertEqual(len(json.loads(out)["members"]), 3)

    def test_killing_each_member_under_load_loses_nothing(self):
        endpoints = self.cluster.endpoints()
        first = rpc.KVStub(grpc.insecure_channel(endpoints[0])).Range(
            pb.RangeRequest(key=b"w", range_end=b"x"), timeout=10).header.revision + 1
        watchers = Watchers(endpoints, first).start()
        self.addCleanup(watchers.stop)
        writers = Writers(endpoints).start()
        gaps = []
        leaders = set()
        try:
            self.assertTrue(writers.wait_for_more(50), "no writes at all")
            for victim in range(3):
                leader = leader_of(self.cluster)
                leaders.add(leader)
                killed_at = time.time()
                self.cluster.members[victim].kill()
                # The cluster keeps taking writes (through the others).
                self.assertTrue(writers.wait_for_more(20),
                                "no writes after killing member %d" % victim)
                gaps.append((victim == leader, time.time() - killed_at))
                self.cluster.members[victim].start()
                self.wait_for_leader()
                time.sleep(0.5)
        finally:
            writers.stop()
        leaders.add(leader_of(self.cluster))
        print("acknowledged %d puts, %d failed calls; seconds from a kill to 20 more "
              "writes (the leader killed?): %s; leaders seen %s"
              % (len(writers.acknowledged), len(writers.failures),
                 ["%.2f (%s)" % (s, was_leader) for was_leader, s in gaps], sorted(leaders)))
        self.assertTrue(any(was_leader for was_leader, _ in gaps), "no kill hit the leader")
        writers.check_everywhere(self)
        seen = watchers.check(self, writers)
        figures = [raft_metrics(p) for p in self.cluster.metrics_ports]
        print("watchers saw %d revisions each; moved to another member %s times; snapshots "
              "taken %s, restored %s" % (
                  seen, watchers.moves, [m.get("strata_raft_snapshots_total") for m in figures],
                  [m.get("strata_raft_snapshots_restored_total") for m in figures]))
        self.assertGreater(sum(watchers.moves), 0, "no watcher lost its member")


class ReplicatedOverTlsTest(unittest.TestCase):
    def test_members_over_peer_auto_tls(self):
        cluster = StrataCluster.started_for(
            self, prefix="strata-replicated-tls-", peer_scheme="https",
            extra_args=["--cluster-mode", "replicated", "--peer-auto-tls"])
        a, b, c = cluster.endpoints()
        deadline = time.time() + 15
        while not all(health(p) for p in cluster.metrics_ports):
            self.assertLess(time.time(), deadline, "no leader over TLS")
            time.sleep(0.05)
        for i, endpoint in enumerate((a, b, c)):
            etcdctl(endpoint, "put", "k%d" % i, "v")  # forwarded to the leader but on one
        out, _ = etcdctl(b, "get", "k", "--prefix", "--keys-only")  # a read index
        self.assertEqual(out.split(), ["k0", "k1", "k2"])
        channel = grpc.insecure_channel("127.0.0.1:%d" % cluster.peer_ports[1])
        with self.assertRaises(grpc.FutureTimeoutError, msg="plain text is refused"):
            grpc.channel_ready_future(channel).result(timeout=2)
        channel.close()


if __name__ == "__main__":
    unittest.main()
