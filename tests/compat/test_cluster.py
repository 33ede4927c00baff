"""Three strata-servers started as one cluster with etcd's flags, driven
through clients we did not write (etcdctl) and raw gRPC:

- an etcdctl session: a write on one member is read on the others, Txn over
  several shards, past revisions, compaction, `member list`, a watch from a
  past revision on another member, and the calls a cluster does not serve
  yet refused with a sentence;
- watchers on every member while writers put and run multi-key Txns on
  every member: each watcher sees every acknowledged write exactly once, in
  revision order, a Txn's writes in one response;
and the same members through faults in test_cluster_faults.py (a member
killed -9 and restarted under a bank workload, /health, peer TLS).
"""
import os
import shutil
import subprocess
import tempfile
import threading
import time
import unittest

import grpc

from servers import RequestQueue, StrataCluster, etcdctl, etcdctl_binary, python_stubs

python_stubs()
import rpc_pb2 as pb  # noqa: E402
import rpc_pb2_grpc as rpc  # noqa: E402


class ClusterTest(unittest.TestCase):
    def setUp(self):
        self.root = tempfile.mkdtemp(prefix="strata-cluster-")
        self.cluster = StrataCluster(self.root).start()
        self.addCleanup(shutil.rmtree, self.root, ignore_errors=True)
        self.addCleanup(self.cluster.stop)

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

        # A watch from the past on another member replays the history.
        p = subprocess.Popen([etcdctl_binary(), "--endpoints", c, "watch", "greeting", "--rev",
                              str(rev0)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env=dict(os.environ, ETCDCTL_API="3"))
        time.sleep(1.5)
        p.terminate()
        out, _ = p.communicate(timeout=10)
        self.assertEqual(out.decode().split(),
                         ["PUT", "greeting", "hello", "PUT", "greeting", "again"])

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
        out, _ = etcdctl(b, "endpoint", "status")
        self.assertIn("3.4.23", out)

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

        _, err = etcdctl(a, "auth", "enable", check=False, timeout=20)
        self.assertIn("is not served by a strata cluster yet", err)

    def test_watchers_on_every_member_see_every_write_once_in_order(self):
        endpoints = self.cluster.endpoints()
        seen = {i: [] for i in range(len(endpoints))}  # watcher -> [(revision, key, value)]
        responses = {i: [] for i in range(len(endpoints))}  # watcher -> [set of revisions]
        lock = threading.Lock()
        streams = []

        def watch(i):
            requests = RequestQueue(pb.WatchRequest(create_request=pb.WatchCreateRequest(
                key=b"w/", range_end=b"w0")))
            stream = rpc.WatchStub(grpc.insecure_channel(endpoints[i])).Watch(iter(requests))
            streams.append((stream, requests))
            try:
                for resp in stream:
                    if not resp.events:
                        continue
                    with lock:
                        responses[i].append({e.kv.mod_revision for e in resp.events})
                        seen[i].extend((e.kv.mod_revision, e.kv.key, e.kv.value)
                                       for e in resp.events)
            except grpc.RpcError:
                pass

        watchers = [threading.Thread(target=watch, args=(i,), daemon=True)
                    for i in range(len(endpoints))]
        for t in watchers:
            t.start()
        time.sleep(0.5)  # every watch created

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
        for i in seen:
            self.assertEqual(seen[i], want, "watcher on member %d" % i)
            # A Txn's writes (one revision) come in one response.
            revisions = [r for batch in responses[i] for r in batch]
            self.assertEqual(len(revisions), len(set(revisions)),
                             "a revision split across responses on member %d" % i)


if __name__ == "__main__":
    unittest.main()
