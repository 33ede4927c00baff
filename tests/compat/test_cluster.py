"""Three strata-servers started as one cluster with etcd's flags, driven
through clients we did not write (etcdctl) and raw gRPC:

- an etcdctl session: a write on one member is read on the others, Txn over
  several shards, past revisions, compaction, `member list`, a watch from a
  past revision on another member (with prev_kv too);
- a snapshot saved through one member restored into a cluster of two, and
  one node's snapshot restored into a cluster;
- 300 puts of one key at once through every member, all acknowledged; and
  400 Txns of 3 of 6 hot keys (over several members) with 200 puts of
  them, all acknowledged;
- etcd's Auth over the cluster: changes through any member in force on every
  member once acknowledged, tokens good on every member, lease keys checked
  where the lease lives, concurrent changes, a restarted member;
- strata.v1 through strata-ctl: an interactive transaction over several
  shards, two racing ones on two members (one conflicts), a key's history
  read where it lives, stats naming the open transaction;
- watchers on every member while writers put and run multi-key Txns on
  every member: each watcher sees every acknowledged write exactly once, in
  revision order, a Txn's writes in one response;
and the same members through faults in test_cluster_faults.py (a member
killed -9 and restarted under a bank workload, /health, peer TLS).
"""
import base64
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.request

import grpc
import xxhash

from servers import (RequestQueue, StrataCluster, StrataServer, etcdctl, etcdctl_binary,
                     free_port, python_stubs, strata_ctl_binary)

python_stubs()
import rpc_pb2 as pb  # noqa: E402
import rpc_pb2_grpc as rpc  # noqa: E402


def shard_of_engine_key(engine_key, members=3):
    """The member whose shard holds `engine_key`, by ShardMap::OnePerNode's
    equal ranges of XXH3 over it."""
    h = xxhash.xxh3_64_intdigest(engine_key)
    return max(i for i in range(members) if (i << 64) // members <= h)


def record_owner(members=3):
    """The member whose shard holds the auth record ("\\0auth")."""
    return shard_of_engine_key(b"\x00auth", members)


def shard_of(key, members=3):
    """The member whose shard holds etcd key `key` ("\\x01" + key)."""
    return shard_of_engine_key(b"\x01" + key.encode(), members)


class ClusterTest(unittest.TestCase):
    def setUp(self):
        self.cluster = StrataCluster.started_for(self)

    def test_etcdctl_session(self):
        a, b, c = self.cluster.endpoints()
        first, _ = etcdctl(a, "put", "greeting", "hello", "-w", "json")
        rev0 = int(first.split('"revision":')[1].split(",")[0])
        out, _ = etcdctl(b, "get", "greeting", "-w", "json")
        self.assertIn('"value":"aGVsbG8="', out)  # base64 of hello
        self.assertIn('"version":1', out)
        first, _ = etcdctl(c, "put", "greeting", "again", "-w", "json")
        rev1 = int(first.split('"revision":')[1].split(",")[0])

        # A Txn over several keys (several shards) commits at one revision.
        out, _ = etcdctl(b, "txn", stdin='value("greeting") = "again"\n\n'
                         "put t1 x\nput t2 x\nput t3 x\nput t4 x\n\n\n")
        self.assertTrue(out.startswith("SUCCESS"), out)
        out, _ = etcdctl(c, "get", "t", "--prefix", "-w", "json")
        mods = {part.split(",")[0] for part in out.split('"mod_revision":')[1:]}
        self.assertEqual(len(mods), 1, out)
        self.assertEqual(out.count('"key"'), 4)

        # A watch from the past on another member replays the history; with
        # --prev-kv, etcdctl prints each event's previous version first.
        self.assertEqual(self.watch_lines(c, "greeting", "--rev", str(rev0), lines=6),
                         ["PUT", "greeting", "hello", "PUT", "greeting", "again"])
        self.assertEqual(self.watch_lines(b, "greeting", "--rev", str(rev0), "--prev-kv",
                                          lines=8),
                         ["PUT", "greeting", "hello", "PUT", "greeting", "hello", "greeting",
                          "again"])

        # The past by revision, then compaction.
        out, _ = etcdctl(a, "get", "greeting", "--rev", str(rev1), "--print-value-only")
        self.assertEqual(out.strip(), "again")
        out, _ = etcdctl(a, "get", "greeting", "--rev", str(rev1 - 1), "--print-value-only")
        self.assertEqual(out.strip(), "hello")
        etcdctl(a, "compaction", str(rev1))
        _, err = etcdctl(a, "get", "greeting", "--rev", str(rev1 - 1), check=False)
        self.assertIn("required revision has been compacted", err)

        out, _ = etcdctl(a, "del", "t", "--prefix")
        self.assertEqual(out.strip(), "4")

        out, _ = etcdctl(a, "member", "list")
        names = sorted(line.split(", ")[2] for line in out.strip().splitlines())
        self.assertEqual(names, ["m0", "m1", "m2"])
        # Each member's client URL, as the others heard it from it (they
        # ask each other every half second until they know).
        want = {name: "http://" + m.endpoint
                for name, m in zip(self.cluster.names, self.cluster.members)}
        deadline = time.time() + 10
        while True:
            out, _ = etcdctl(a, "member", "list")
            urls = {line.split(", ")[2]: line.split(", ")[4]
                    for line in out.strip().splitlines()}
            if urls == want or time.time() > deadline:
                break
            time.sleep(0.2)
        self.assertEqual(urls, want, out)
        out, _ = etcdctl(b, "endpoint", "status")
        self.assertIn("3.4.23", out)
        # One cluster id, as etcd derives it from the members' ids.
        out, _ = etcdctl(",".join((a, b, c)), "endpoint", "status", "-w", "json")
        self.assertEqual(len({s["Status"]["header"]["cluster_id"] for s in json.loads(out)}), 1,
                         out)

        # HashKV: every member hashes every shard's history, so all agree;
        # a write changes the hash; below the compaction there is none.
        def hashes(*args):
            out, _ = etcdctl(",".join((a, b, c)), "endpoint", "hashkv", "-w", "json", *args)
            return {e["HashKV"]["hash"] for e in json.loads(out)}

        before = hashes()
        self.assertEqual(len(before), 1, before)
        first, _ = etcdctl(b, "put", "hashed", "x", "-w", "json")
        rev2 = int(first.split('"revision":')[1].split(",")[0])
        after = hashes()
        self.assertEqual(len(after), 1, after)
        self.assertNotEqual(before, after)
        self.assertEqual(hashes("--rev", str(rev2)), after)
        self.assertEqual(hashes("--rev", str(rev2 - 1)), before)
        _, err = etcdctl(a, "endpoint", "hashkv", "--rev", str(rev1 - 1), check=False)
        self.assertIn("required revision has been compacted", err)

        # Leases: granted on one member, keys put with it through others,
        # revoked through a third, every key with it.
        out, _ = etcdctl(a, "lease", "grant", "60")
        lease = out.split()[1]
        for i, member in enumerate((a, b, c)):
            etcdctl(member, "put", "--lease=" + lease, "leased/%d" % i, "x")
        out, _ = etcdctl(b, "lease", "timetolive", lease, "--keys")
        self.assertIn("granted with TTL(60s)", out)
        self.assertIn("leased/0 leased/1 leased/2", out)
        out, _ = etcdctl(c, "lease", "keep-alive", "--once", lease)
        self.assertIn("keepalived with TTL(60)", out)
        etcdctl(c, "lease", "revoke", lease)
        out, _ = etcdctl(a, "get", "leased/", "--prefix", "--keys-only")
        self.assertEqual(out.strip(), "", "the lease's keys are gone")
        _, err = etcdctl(a, "put", "--lease=" + lease, "k", "v", check=False)
        self.assertIn("requested lease not found", err)
        # A lock (a lease and a Txn on its key) held through one member.
        out, _ = etcdctl(b, "lock", "mylock", "echo", "locked")
        self.assertIn("locked", out)


    def assertHoldsTheSnapshot(self, endpoints, prefix, before, lease, old_rev=None):
        """What a cluster or node restored from a snapshot holds: the keys
        under `prefix` as `before` read them, with their revisions, through
        each of `endpoints`; nothing below the snapshot (`old_rev`, a
        revision it compacted away); the lease with its key `prefix`leased;
        the user keeper; and a next write ("`prefix`new") numbered past it."""
        for member in endpoints:
            after = json.loads(etcdctl(member, "get", prefix, "--prefix", "-w", "json")[0])
            self.assertEqual(after["kvs"], before["kvs"])
            if old_rev is not None:
                _, err = etcdctl(member, "get", prefix + "05", "--rev", str(old_rev),
                                 check=False)
                self.assertIn("required revision has been compacted", err)
        out, _ = etcdctl(endpoints[0], "lease", "timetolive", lease, "--keys")
        self.assertIn("attached keys([%sleased])" % prefix, out)
        out, _ = etcdctl(endpoints[-1], "user", "list")
        self.assertEqual(out.split(), ["keeper"])
        put = json.loads(etcdctl(endpoints[-1], "put", prefix + "new", "n", "-w", "json")[0])
        self.assertGreater(int(put["header"]["revision"]), int(before["header"]["revision"]))

    def snapshot_with_history(self, prefix, keys):
        """Writes through every member `keys` keys under `prefix`, the key
        `prefix`05 again (its first version, at the returned old_rev, is
        below the snapshot), a delete, a Txn of two puts, a key on a lease
        and the user keeper, then saves a snapshot through the second member.
        Returns (what a Range of `prefix` read, old_rev, the lease, the
        snapshot's path in a directory removed after the test)."""
        a, b, c = self.cluster.endpoints()
        for i in range(keys):
            etcdctl((a, b, c)[i % 3], "put", "%s%02d" % (prefix, i), "v%d" % i)
        etcdctl(a, "put", prefix + "05", "again")  # a key with history
        etcdctl(b, "del", prefix + "07")
        etcdctl(c, "txn", stdin="\n\nput %st1 x\nput %st2 x\n\n\n" % (prefix, prefix))
        out, _ = etcdctl(a, "lease", "grant", "600")
        lease = out.split()[1]
        etcdctl(b, "put", "--lease=" + lease, prefix + "leased", "l")
        etcdctl(c, "user", "add", "keeper:pw-5", "--interactive=false")
        before = json.loads(etcdctl(b, "get", prefix, "--prefix", "-w", "json")[0])
        old_rev = int(json.loads(etcdctl(a, "get", prefix + "05", "-w", "json")[0])["kvs"][0][
            "create_revision"])
        tmp = tempfile.mkdtemp(prefix="strata-cluster-snapshot-")
        self.addCleanup(shutil.rmtree, tmp, ignore_errors=True)
        path = os.path.join(tmp, "cluster.db")
        out, _ = etcdctl(b, "snapshot", "save", path, timeout=60)
        self.assertIn("Snapshot saved at", out)
        return before, old_rev, lease, path

    def test_a_snapshot_of_the_cluster_restores_into_a_cluster_of_another_size(self):
        """Into two members, and into one node: the same keys with their
        revisions, the lease and the users, compacted at the snapshot."""
        a, b, c = self.cluster.endpoints()
        before, old_rev, lease, path = self.snapshot_with_history("k/", 60)
        tmp = os.path.dirname(path)
        etcdctl(a, "put", "k/after", "not in the snapshot")

        # Restored into two members: each takes the keys its shard owns there
        # (one replica a shard: strata-ctl records it, the flag gives it).
        restored = StrataCluster(os.path.join(tmp, "restored"), n=2)
        initial = ",".join("%s=http://127.0.0.1:%d" % (name, port)
                           for name, port in zip(restored.names, restored.peer_ports))
        # m0 through strata-ctl, m1 by strata-server --restore at its start.
        p = self.ctl(a, "snapshot", "restore", path, "--data-dir",
                     os.path.join(tmp, "restored", "m0"), "--name", "m0",
                     "--initial-cluster", initial)
        self.assertIn("Restored", p.stdout)
        restored.members[1].extra_args += ["--restore", path]
        # A member the cluster does not name, or no member at all, is refused.
        p = self.ctl(a, "snapshot", "restore", path, "--data-dir", os.path.join(tmp, "m9"),
                     "--name", "m9", "--initial-cluster", initial, check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("does not name this member (--name m9)", p.stderr)
        p = self.ctl(a, "snapshot", "restore", path, "--data-dir", os.path.join(tmp, "m9"),
                     "--initial-cluster", initial, check=False)
        self.assertIn("needs the member's --name", p.stderr)
        self.assertFalse(os.path.exists(os.path.join(tmp, "m9")))
        # And into one node, as one node keeps the same.
        p = self.ctl(a, "snapshot", "restore", path, "--data-dir", os.path.join(tmp, "node"))
        self.assertIn("Restored", p.stdout)
        restored.start()
        self.addCleanup(restored.stop)
        self.assertIn("restored " + path, restored.members[1].log())
        for member in restored.members:
            with open(os.path.join(member.data_dir, "replication-factor")) as f:
                self.assertEqual(f.read(), "1\n")
        self.assertHoldsTheSnapshot(restored.endpoints(), "k/", before, lease, old_rev)
        x, y = restored.endpoints()
        etcdctl(x, "lease", "revoke", lease)
        out, _ = etcdctl(y, "get", "k/leased")
        self.assertEqual(out, "")

        # The one node: the same keys, revisions, lease and users.
        node = StrataServer(data_dir=os.path.join(tmp, "node")).start()
        self.addCleanup(node.stop)
        n = node.endpoint
        self.assertHoldsTheSnapshot([n], "k/", before, lease, old_rev)
        out, _ = etcdctl(n, "get", "k/new", "-w", "json")
        self.assertEqual(json.loads(out)["kvs"][0]["version"], 1)
        etcdctl(n, "lease", "revoke", lease)
        out, _ = etcdctl(n, "get", "k/leased")
        self.assertEqual(out, "")
        # strata-server --restore does the same at a node's first start.
        second = StrataServer(data_dir=os.path.join(tmp, "node2"),
                              extra_args=["--restore", path]).start()
        self.addCleanup(second.stop)
        after = json.loads(etcdctl(second.endpoint, "get", "k/", "--prefix", "-w", "json")[0])
        self.assertEqual(after["kvs"], before["kvs"])

    def test_a_snapshot_restores_into_replicated_shards(self):
        """Every member of a new cluster started with --restore and no
        --replication-factor (the default, 3): each shard's group starts from
        the snapshot on all three, with its keys, revisions, lease and users;
        a member killed then takes nothing with it."""
        before, old_rev, lease, path = self.snapshot_with_history("r/", 30)
        tmp = os.path.dirname(path)

        restored = StrataCluster(os.path.join(tmp, "restored"), replication_factor=None)
        for m in restored.members:
            m.extra_args += ["--restore", path]
        restored.start()
        self.addCleanup(restored.stop)
        for m in restored.members:
            self.assertIn("restoring %s into this member's replicated shards" % path, m.log_text())
            self.assertEqual(m.log_text().count("restored shard "), 3, m.log_text())
            with open(os.path.join(m.data_dir, "replication-factor")) as f:
                self.assertEqual(f.read(), "3\n")
        x, y, z = restored.endpoints()
        self.assertHoldsTheSnapshot([x, y, z], "r/", before, lease, old_rev)
        # Each shard is on all three: one killed takes no keys with it (the
        # snapshot's, and r/new).
        restored.members[0].kill()
        want = len(before["kvs"]) + 1
        deadline = time.time() + 15
        while True:
            got, err = etcdctl(z, "get", "r/", "--prefix", "--keys-only", check=False)
            if len(got.split()) == want or time.time() > deadline:
                break
            time.sleep(0.2)
        self.assertEqual(len(got.split()), want, err)
        # A member started with --restore over its data is refused.
        member = restored.members[0]
        with self.assertRaises(RuntimeError) as refused:
            member.start()
        self.assertIn("already holds a member's data", str(refused.exception))
        self.assertEqual(member.wait_exit(), 2)

    def test_a_member_of_another_replication_factor_is_refused(self):
        """Members with different factors would place the shards differently:
        the others refuse the one started with another, both say so, and
        what the others serve is not touched."""
        root = tempfile.mkdtemp(prefix="strata-cluster-factors-")
        self.addCleanup(shutil.rmtree, root, ignore_errors=True)
        cluster = StrataCluster(root)  # factor 1...
        odd = cluster.members[2]
        i = odd.extra_args.index("--replication-factor")
        odd.extra_args[i + 1] = "3"  # ...but m2, 3 (in a cluster of three)
        cluster.start()
        self.addCleanup(cluster.stop)
        why = ("strata: another replication factor: member 'm2' has replication factor 3, "
               "member 'm0' 1 (every member needs the same: it places the shards)")
        deadline = time.time() + 10
        while time.time() < deadline and not (why in cluster.members[0].log_text()
                                              and why in odd.log_text()):
            time.sleep(0.1)  # a link hears of the refusal at its next write
        self.assertIn("refused member 'm2': " + why, cluster.members[0].log_text())
        self.assertIn("member 'm0' refuses this member: " + why, odd.log_text())
        self.assertEqual(cluster.members[0].log_text().count(why), 1, "said once")
        # m0 serves its own shard's keys still.
        a = cluster.endpoints()[0]
        key = next(k for k in ("k%d" % n for n in range(100)) if shard_of(k, 3) == 0)
        etcdctl(a, "put", key, "v")
        out, _ = etcdctl(a, "get", key, "--print-value-only")
        self.assertEqual(out.strip(), "v")

    def test_one_nodes_snapshot_restores_into_a_cluster(self):
        """From one strata-server to a cluster: its snapshot restored into
        each member keeps keys, their revisions, leases and users."""
        tmp = tempfile.mkdtemp(prefix="strata-node-to-cluster-")
        self.addCleanup(shutil.rmtree, tmp, ignore_errors=True)
        node = StrataServer(data_dir=os.path.join(tmp, "node"), port=free_port()).start()
        self.addCleanup(node.stop)
        for i in range(20):
            etcdctl(node.endpoint, "put", "n/%02d" % i, "v%d" % i)
        etcdctl(node.endpoint, "put", "n/05", "again")
        out, _ = etcdctl(node.endpoint, "lease", "grant", "600")
        lease = out.split()[1]
        etcdctl(node.endpoint, "put", "--lease=" + lease, "n/leased", "l")
        etcdctl(node.endpoint, "user", "add", "keeper:pw-6", "--interactive=false")
        before = json.loads(etcdctl(node.endpoint, "get", "n/", "--prefix", "-w", "json")[0])
        path = os.path.join(tmp, "node.db")
        etcdctl(node.endpoint, "snapshot", "save", path)
        node.stop()

        restored = StrataCluster(os.path.join(tmp, "cluster"), n=2)
        initial = ",".join("%s=http://127.0.0.1:%d" % (name, port)
                           for name, port in zip(restored.names, restored.peer_ports))
        for name in restored.names:
            self.ctl(self.cluster.endpoints()[0], "snapshot", "restore", path, "--data-dir",
                     os.path.join(tmp, "cluster", name), "--name", name,
                     "--initial-cluster", initial)
        restored.start()
        self.addCleanup(restored.stop)
        x, y = restored.endpoints()
        for member in (x, y):
            after = json.loads(etcdctl(member, "get", "n/", "--prefix", "-w", "json")[0])
            self.assertEqual(after["kvs"], before["kvs"])
            # The node's history came along: n/05 as it was first.
            first = int([kv for kv in before["kvs"] if base64.b64decode(kv["key"]) == b"n/05"][0]
                        ["create_revision"])
            out, _ = etcdctl(member, "get", "n/05", "--rev", str(first), "--print-value-only")
            self.assertEqual(out.strip(), "v5")
        out, _ = etcdctl(y, "lease", "timetolive", lease, "--keys")
        self.assertIn("attached keys([n/leased])", out)
        out, _ = etcdctl(x, "user", "list")
        self.assertEqual(out.split(), ["keeper"])
        etcdctl(y, "lease", "revoke", lease)
        out, _ = etcdctl(x, "get", "n/leased")
        self.assertEqual(out, "")
        put = json.loads(etcdctl(x, "put", "n/new", "n", "-w", "json")[0])
        self.assertGreater(int(put["header"]["revision"]), int(before["header"]["revision"]))

    def test_many_writers_of_one_key_all_succeed(self):
        """Puts of one key sent at once through every member: each runs on
        the key's owner in turn, none is refused for losing conflicts."""
        channels = [grpc.insecure_channel(e) for e in self.cluster.endpoints()]
        stubs = [rpc.KVStub(ch) for ch in channels]
        futures = [stubs[i % 3].Put.future(pb.PutRequest(key=b"hot", value=b"%d" % i),
                                           timeout=30) for i in range(300)]
        revisions = {f.result().header.revision for f in futures}
        self.assertEqual(len(revisions), 300)
        r = stubs[1].Range(pb.RangeRequest(key=b"hot"), timeout=10)
        self.assertEqual(r.kvs[0].version, 300)
        self.assertEqual(r.kvs[0].mod_revision, max(revisions))
        for ch in channels:
            ch.close()

    def test_many_txns_over_shards_on_the_same_keys_all_succeed(self):
        """Txns putting 3 of 6 keys (owned by several members) sent at once
        through every member, with puts of the same keys: each waits its turn
        on every owner, none is refused for losing conflicts, and every key
        has exactly the versions its writes made."""
        channels = [grpc.insecure_channel(e) for e in self.cluster.endpoints()]
        stubs = [rpc.KVStub(ch) for ch in channels]
        keys = [b"hot/%d" % i for i in range(6)]
        writes = {k: 0 for k in keys}
        futures = []
        # 600: without the lanes on every owner, some of these ran out of
        # attempts ("too many requests") on this machine.
        for i in range(600):
            stub = stubs[i % 3]
            if i % 3 == 2:
                key = keys[i % 6]
                writes[key] += 1
                futures.append(stub.Put.future(pb.PutRequest(key=key, value=b"%d" % i),
                                               timeout=60))
                continue
            chosen = [keys[(i + j * (1 + i % 5)) % 6] for j in range(3)]
            chosen = list(dict.fromkeys(chosen))
            for k in chosen:
                writes[k] += 1
            ops = [pb.RequestOp(request_put=pb.PutRequest(key=k, value=b"%d" % i))
                   for k in chosen]
            futures.append(stub.Txn.future(pb.TxnRequest(success=ops), timeout=60))

        def metric(port, name):
            with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=10) as r:
                text = r.read().decode()
            return float(re.search(r"^%s (\S+)$" % name, text, re.M).group(1))

        revisions, refused = [], []
        for f in futures:
            try:
                revisions.append(f.result().header.revision)
            except grpc.RpcError as e:
                refused.append(e.details())
        self.assertEqual(refused, [], "lanes taken %s, given up %s" % tuple(
            sum(metric(p, "strata_cluster_lanes_%s_total" % what)
                for p in self.cluster.metrics_ports) for what in ("acquired", "given_up")))
        self.assertEqual(len(set(revisions)), len(futures))
        for key in keys:
            r = stubs[0].Range(pb.RangeRequest(key=key), timeout=10)
            self.assertEqual(r.kvs[0].version, writes[key], key)

        acquired = sum(metric(p, "strata_cluster_lanes_acquired_total")
                       for p in self.cluster.metrics_ports)
        self.assertGreater(acquired, 100, "the Txns over shards took their keys' lanes")
        # Each was given back once its write answered (the give-back may
        # still be on its way).
        for p in self.cluster.metrics_ports:
            deadline = time.time() + 5
            while (metric(p, "strata_cluster_lanes_held_for_others") != 0
                   and time.time() < deadline):
                time.sleep(0.05)
            self.assertEqual(metric(p, "strata_cluster_lanes_held_for_others"), 0)
        for ch in channels:
            ch.close()

    def test_auth_over_the_cluster(self):
        """Users, roles and permissions changed through any member are in
        force on every member once acknowledged; a token works on every
        member; a restarted member enforces what it knew."""
        a, b, c = self.cluster.endpoints()
        etcdctl(a, "user", "add", "root:root-pw-1", "--interactive=false")
        etcdctl(b, "user", "grant-role", "root", "root")
        etcdctl(c, "user", "add", "alice:alice-pw-2", "--interactive=false")
        etcdctl(a, "role", "add", "app")
        etcdctl(b, "role", "grant-permission", "app", "readwrite", "app/", "--prefix")
        etcdctl(c, "user", "grant-role", "alice", "app")
        out, _ = etcdctl(a, "role", "get", "app")
        self.assertIn("[app/, app0)", out)
        etcdctl(b, "auth", "enable")
        root, alice = ["--user", "root:root-pw-1"], ["--user", "alice:alice-pw-2"]
        # Enabled on every member the moment b answered.
        for member in (a, b, c):
            _, err = etcdctl(member, "get", "app/x", check=False)
            self.assertIn("user name is empty", err)
        etcdctl(a, *alice, "put", "app/x", "1")
        out, _ = etcdctl(c, *alice, "get", "app/x", "--print-value-only")
        self.assertEqual(out.strip(), "1")
        _, err = etcdctl(b, *alice, "put", "other", "1", check=False)
        self.assertIn("permission denied", err)
        out, _ = etcdctl(c, *root, "user", "list")
        self.assertEqual(out.split(), ["alice", "root"])

        # A token handed out by one member is good on the others.
        channels = [grpc.insecure_channel(e) for e in (a, b, c)]
        token = rpc.AuthStub(channels[0]).Authenticate(
            pb.AuthenticateRequest(name="alice", password="alice-pw-2"), timeout=10).token
        for ch in channels:
            r = rpc.KVStub(ch).Range(pb.RangeRequest(key=b"app/x"), metadata=[("token", token)],
                                     timeout=10)
            self.assertEqual(r.kvs[0].value, b"1")

        # Attaching a key to a lease that holds a key alice may not write, or
        # revoking it, is refused wherever the lease lives.
        out, _ = etcdctl(a, *root, "lease", "grant", "60")
        lease = out.split()[1]
        etcdctl(b, *root, "put", "--lease=" + lease, "secret", "s")
        for member in (a, b, c):
            _, err = etcdctl(member, *alice, "put", "--lease=" + lease, "app/y", "v",
                             check=False)
            self.assertIn("permission denied", err)
            _, err = etcdctl(member, *alice, "lease", "revoke", lease, check=False)
            self.assertIn("permission denied", err)
        out, _ = etcdctl(c, *root, "get", "secret", "--print-value-only")
        self.assertEqual(out.strip(), "s")

        # A revoke through c is in force on a at once, for the token too.
        etcdctl(c, *root, "role", "revoke-permission", "app", "app/", "--prefix")
        for ch in channels:
            with self.assertRaises(grpc.RpcError) as e:
                rpc.KVStub(ch).Range(pb.RangeRequest(key=b"app/x"),
                                     metadata=[("token", token)], timeout=10)
            self.assertIn("permission denied", e.exception.details())
        # Deleting alice ends her token on every member.
        etcdctl(a, *root, "user", "delete", "alice")
        for ch in channels:
            with self.assertRaises(grpc.RpcError) as e:
                rpc.KVStub(ch).Range(pb.RangeRequest(key=b"app/x"),
                                     metadata=[("token", token)], timeout=10)
            self.assertIn("invalid auth token", e.exception.details())
        for ch in channels:
            ch.close()

        # Two members changing the state at once both succeed, one over the
        # other's change.
        errors = []

        def add_role(member, name):
            try:
                etcdctl(member, *root, "role", "add", name)
            except AssertionError as e:  # etcdctl's helper fails with this
                errors.append(str(e))
        racers = [threading.Thread(target=add_role, args=(m, "r%d" % i))
                  for i, m in enumerate((a, b, c))]
        for t in racers:
            t.start()
        for t in racers:
            t.join()
        self.assertEqual(errors, [])
        out, _ = etcdctl(b, *root, "role", "list")
        self.assertEqual(out.split(), ["app", "r0", "r1", "r2"])

        # A member restarted reads what changed while it was down.
        endpoints = self.cluster.endpoints()
        home = record_owner()
        other = 2 if home != 2 else 1
        m = self.cluster.members[other]
        m.kill()
        up = a if home != 0 else b
        etcdctl(up, *root, "role", "add", "while-down")
        # The down member did not take that news: the next changes do not
        # wait for it again (each would wait a second). Usually 0.1 s each;
        # the quickest of three, so a machine busy with other tests (one
        # once took 1.05 s under make test) does not pass for a wait.
        took = []
        for i in range(3):
            started = time.time()
            etcdctl(up, *root, "role", "add", "while-down-%d" % (i + 2))
            took.append(time.time() - started)
        self.assertLess(min(took), 0.9, took)
        m.start()
        deadline = time.time() + 10
        while True:
            out, _ = etcdctl(endpoints[other], *root, "role", "list")
            if "while-down" in out.split() or time.time() > deadline:
                break
            time.sleep(0.2)
        self.assertIn("while-down", out.split())
        # Restarted while the record's member is down, it enforces its copy.
        time.sleep(0.5)  # the copy is written off the loop
        m.kill()
        self.cluster.members[home].kill()
        m.start()
        _, err = etcdctl(endpoints[other], "get", "app/x", check=False)
        self.assertIn("user name is empty", err)
        out, _ = etcdctl(endpoints[other], *root, "role", "list")
        self.assertIn("while-down", out.split())
        self.cluster.members[home].start()

        # Turned off through one member, off on all.
        etcdctl(c, *root, "auth", "disable")
        for member in (a, b, c):
            etcdctl(member, "put", "free", "1")

    def watch_lines(self, endpoint, *args, lines):
        """The first `lines` lines `etcdctl watch` prints (within 10 s)."""
        p = subprocess.Popen([etcdctl_binary(), "--endpoints", endpoint, "watch"] + list(args),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env=dict(os.environ, ETCDCTL_API="3"))
        out = []
        timer = threading.Timer(10, p.kill)
        timer.start()
        try:
            while len(out) < lines:
                line = p.stdout.readline()
                if not line:
                    break
                out.append(line.decode().strip())
        finally:
            timer.cancel()
            p.kill()
            p.communicate(timeout=10)
        return out

    def ctl(self, endpoint, *args, stdin=None, check=True):
        p = subprocess.run([strata_ctl_binary(), "--endpoints", endpoint] + list(args),
                           input=stdin, capture_output=True, text=True, timeout=30)
        if check:
            self.assertEqual(p.returncode, 0, p.stderr + p.stdout)
        return p

    def test_strata_v1_over_the_cluster(self):
        a, b, c = self.cluster.endpoints()
        etcdctl(a, "put", "a", "1")
        # Reads its own writes, writes keys on several shards, commits them
        # at one revision.
        out = self.ctl(b, "txn", stdin="get a\nput a 10\nget a\nput c hello world\n"
                       "put d 4\nput e 5\ncommit\n").stdout.splitlines()
        self.assertTrue(out[0].startswith("begun "), out)
        self.assertEqual(out[1:8], ["a", "1", "OK", "a", "10", "OK", "OK"])
        self.assertTrue(out[-1].startswith("committed at revision "), out)
        revision = int(out[-1].split()[-1])
        got = json.loads(etcdctl(c, "get", "a", "-w", "json")[0])["kvs"][0]
        self.assertEqual((got["mod_revision"], got["version"]), (revision, 2))
        for key in ("c", "d", "e"):
            got = json.loads(etcdctl(a, "get", key, "-w", "json")[0])["kvs"][0]
            self.assertEqual((got["mod_revision"], got["create_revision"]), (revision, revision))

        # Two transactions on two members read x, then both write it: the
        # second to commit conflicts.
        etcdctl(a, "put", "x", "0")
        procs = [subprocess.Popen([strata_ctl_binary(), "--endpoints", e, "txn"],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
                 for e in (a, c)]
        for p in procs:
            p.stdin.write("get x\n")
            p.stdin.flush()
        for p in procs:
            self.assertTrue(p.stdout.readline().startswith("begun"))
            self.assertEqual(p.stdout.readline() + p.stdout.readline(), "x\n0\n")
        outs = [p.communicate("put x %d\ncommit\n" % (i + 1), timeout=30)[0]
                for i, p in enumerate(procs)]
        self.assertIn("committed at revision", outs[0])
        self.assertIn("transaction conflict", outs[1])
        self.assertEqual(etcdctl(b, "get", "x", "--print-value-only")[0], "1\n")

        # A key's history, read on the member that owns it, from any member.
        h = json.loads(self.ctl(c, "history", "a", "-w", "json").stdout)
        self.assertEqual(len(h["versions"]), 2)
        self.assertEqual(h["versions"][1]["revision"], revision)
        self.assertEqual(h["versions"][1]["version"], 2)

        # Stats name the transaction open on this member.
        p = subprocess.Popen([strata_ctl_binary(), "--endpoints", b, "txn"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        txn_id = int(p.stdout.readline().split()[1])
        stats = json.loads(self.ctl(b, "stats", "-w", "json").stdout)
        self.assertEqual((stats["active_txns"], stats["oldest_txn_id"]), (1, txn_id))
        p.communicate("abort\n", timeout=30)
        self.assertEqual(json.loads(self.ctl(b, "stats", "-w", "json").stdout)["active_txns"], 0)

        # Changes from every shard, in (revision, key) order, paged from the
        # last revision seen: the same as one page holding them all. The
        # Txn's four keys on several shards come at one revision, together.
        everything = json.loads(self.ctl(c, "changes", "--since", "1", "-w", "json").stdout)
        self.assertFalse(everything["more"])
        order = [(v["revision"], base64.b64decode(v["key"]).decode())
                 for v in everything["versions"]]
        self.assertEqual(order, sorted(set(order)))
        self.assertEqual(sorted(k for r, k in order if r == revision), ["a", "c", "d", "e"])
        paged, since = [], 1
        while True:
            page = json.loads(self.ctl(a, "changes", "--since", str(since), "--limit", "3",
                                       "-w", "json").stdout)
            paged += [(v["revision"], base64.b64decode(v["key"]).decode())
                      for v in page["versions"]]
            if not page["more"]:
                break
            since = page["versions"][-1]["revision"]
        self.assertEqual(paged, order)
        only = json.loads(self.ctl(b, "changes", "--since", "1", "--prefix", "a", "-w",
                                   "json").stdout)
        self.assertEqual([v["revision"] for v in only["versions"]],
                         [v["revision"] for v in h["versions"]])

    def test_a_watcher_whose_client_reads_slowly_pauses_and_misses_nothing(self):
        """A watch stream its client does not read while 16 MiB of events
        come (four times the stream's queue bound): its watcher pauses, then
        catches up once the client reads, with every event once, in order,
        and no cancel."""
        a, b, _ = self.cluster.endpoints()
        requests = RequestQueue(pb.WatchRequest(create_request=pb.WatchCreateRequest(
            key=b"slow/", range_end=b"slow0")))
        self.addCleanup(requests.close)
        # No BDP probing: the client's HTTP/2 window stays small, so what
        # it does not read stays queued on the server. No bound on what it
        # receives, as etcd's Go client: a catch-up response carries up to
        # 1,000 changes (here 40 MB), as etcd's carry up to 1,000 revisions.
        channel = grpc.insecure_channel(b, options=[("grpc.http2.bdp_probe", 0),
                                                    ("grpc.max_receive_message_length", -1)])
        self.addCleanup(channel.close)
        stream = rpc.WatchStub(channel).Watch(iter(requests), timeout=120)
        self.assertTrue(next(stream).created)
        kv = rpc.KVStub(grpc.insecure_channel(a))
        value = b"v" * 40000
        revisions = [kv.Put(pb.PutRequest(key=b"slow/%03d" % i, value=value),
                            timeout=30).header.revision for i in range(400)]

        def paused_total():
            with urllib.request.urlopen("http://127.0.0.1:%d/metrics"
                                        % self.cluster.metrics_ports[1], timeout=10) as r:
                text = r.read().decode()
            return float(re.search(r"^strata_cluster_watcher_pauses_total (\S+)$", text,
                                   re.M).group(1))

        self.assertGreaterEqual(paused_total(), 1, "the unread stream filled and paused")

        def watch_figures():
            """m1's watchers, and how many are within a second of the wall clock."""
            with urllib.request.urlopen("http://127.0.0.1:%d/metrics"
                                        % self.cluster.metrics_ports[1], timeout=10) as r:
                text = r.read().decode()
            def sample(pattern):
                return float(re.search(pattern, text, re.M).group(1))
            return (sample(r"^etcd_debugging_mvcc_watcher_total (\S+)$"),
                    sample(r'^strata_watch_lag_seconds_bucket\{le="1.0"\} (\S+)$'))

        self.assertEqual(watch_figures()[0], 1)
        seen = []
        for resp in stream:
            self.assertFalse(resp.canceled, resp.cancel_reason)
            seen.extend(e.kv.mod_revision for e in resp.events)
            if len(seen) >= len(revisions):
                break
        self.assertEqual(seen, revisions)
        # Caught up, its lag is the shared feed's: within a second.
        deadline = time.time() + 5
        while watch_figures() != (1, 1) and time.time() < deadline:
            time.sleep(0.1)
        self.assertEqual(watch_figures(), (1, 1))

    def test_watchers_on_every_member_see_every_write_once_in_order(self):
        endpoints = self.cluster.endpoints()
        seen = {i: [] for i in range(len(endpoints))}  # watcher -> [(revision, key, value)]
        responses = {i: [] for i in range(len(endpoints))}  # watcher -> [set of revisions]
        lock = threading.Lock()
        streams = []
        created = {i: threading.Event() for i in range(len(endpoints))}
        ended = {}  # watcher -> why its stream ended before the test ended it

        def watch(i):
            requests = RequestQueue(pb.WatchRequest(create_request=pb.WatchCreateRequest(
                key=b"w/", range_end=b"w0")))
            stream = rpc.WatchStub(grpc.insecure_channel(endpoints[i])).Watch(iter(requests))
            streams.append((stream, requests))
            try:
                for resp in stream:
                    if resp.created:
                        created[i].set()
                    if resp.canceled:
                        ended[i] = "canceled: " + resp.cancel_reason
                    if not resp.events:
                        continue
                    with lock:
                        responses[i].append({e.kv.mod_revision for e in resp.events})
                        seen[i].extend((e.kv.mod_revision, e.kv.key, e.kv.value)
                                       for e in resp.events)
            except grpc.RpcError as e:
                if e.code() != grpc.StatusCode.CANCELLED:
                    ended[i] = "%s: %s" % (e.code(), e.details())

        watchers = [threading.Thread(target=watch, args=(i,), daemon=True)
                    for i in range(len(endpoints))]
        for t in watchers:
            t.start()
        for i in created:
            self.assertTrue(created[i].wait(20), "no watch created on member %d: %s"
                            % (i, ended.get(i)))

        acked = []  # (revision, key, value)
        stop = threading.Event()

        def write(i):
            kv = rpc.KVStub(grpc.insecure_channel(endpoints[i % len(endpoints)]))
            n = 0
            while not stop.is_set():
                n += 1
                keys = [b"w/%d/%d/%d" % (i, n, j) for j in range(1 + n % 3)]
                value = b"%d-%d" % (i, n)
                t = pb.TxnRequest(success=[pb.RequestOp(request_put=pb.PutRequest(
                    key=k, value=value)) for k in keys])
                rev = kv.Txn(t, timeout=10).header.revision
                with lock:
                    acked.extend((rev, k, value) for k in keys)

        writers = [threading.Thread(target=write, args=(i,)) for i in range(3)]
        for t in writers:
            t.start()
        time.sleep(2)
        stop.set()
        for t in writers:
            t.join()
        want = sorted(acked)
        deadline = time.time() + 10
        while time.time() < deadline:
            with lock:
                if all(len(seen[i]) >= len(want) for i in seen):
                    break
            time.sleep(0.1)
        for stream, requests in streams:
            stream.cancel()
            requests.close()
        self.assertGreater(len(want), 50)
        self.assertEqual(ended, {}, "watch streams that ended early")
        for i in seen:
            self.assertEqual(len(seen[i]), len(want), "watcher on member %d" % i)
            self.assertEqual(seen[i], want, "watcher on member %d" % i)
            # A Txn's writes (one revision) come in one response.
            revisions = [r for batch in responses[i] for r in batch]
            self.assertEqual(len(revisions), len(set(revisions)),
                             "a revision split across responses on member %d" % i)


if __name__ == "__main__":
    unittest.main()
