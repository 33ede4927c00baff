"""Three strata-servers replicating one key space (--cluster-mode
replicated: one Raft group, as etcd), through clients we did not write
(etcdctl) and raw gRPC:

- an etcdctl session: a write on any member is read on every member
  (linearizable and serializable), revisions numbered as one etcd numbers
  them, a Txn, a past revision, compaction; what is not served yet says so;
- writers on every member while each member in turn is killed -9 and
  restarted: every acknowledged put is on every member afterwards, at the
  revision its reply named, the members agree on the whole history, the
  cluster keeps taking writes (the failover time is printed), and
  /metrics names the leader.
"""
import json
import re
import threading
import time
import unittest
import urllib.request

import grpc

from servers import StrataCluster, etcdctl, python_stubs

python_stubs()
import rpc_pb2 as pb  # noqa: E402
import rpc_pb2_grpc as rpc  # noqa: E402


def metrics(port):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        m = re.match(r"^(strata_raft_\w+) ([0-9.e+-]+)$", line)
        if m:
            out[m.group(1)] = float(m.group(2))
    return out


def health(port):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d/health" % port, timeout=5) as r:
            return json.loads(r.read().decode())["health"] == "true"
    except OSError:
        return False


class ReplicatedTest(unittest.TestCase):
    def setUp(self):
        self.cluster = StrataCluster.started_for(
            self, prefix="strata-replicated-", extra_args=["--cluster-mode", "replicated"])
        self.wait_for_leader()

    def wait_for_leader(self, timeout=15):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if all(health(p) for p, m in zip(self.cluster.metrics_ports, self.cluster.members)
                   if m.proc.poll() is None):
                return
            time.sleep(0.05)
        self.fail("no leader within %d s" % timeout)

    def leader_index(self):
        for i, port in enumerate(self.cluster.metrics_ports):
            if self.cluster.members[i].proc.poll() is None and \
                    metrics(port).get("strata_raft_is_leader") == 1:
                return i
        return None

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
        _, err = etcdctl(c, "lease", "grant", "10", check=False)
        self.assertIn("not served by a replicated strata cluster", err)

    def test_killing_each_member_under_load_loses_nothing(self):
        endpoints = self.cluster.endpoints()
        acknowledged = []  # (key, value, revision)
        failures = []
        lock = threading.Lock()
        stop = threading.Event()
        last_ok = [time.time()]

        def writer(w):
            channel = grpc.insecure_channel(endpoints[w])
            kv = rpc.KVStub(channel)
            n = 0
            while not stop.is_set():
                key = b"w%d-%06d" % (w, n)
                n += 1
                try:
                    r = kv.Put(pb.PutRequest(key=key, value=key), timeout=3)
                except grpc.RpcError as e:
                    with lock:
                        failures.append(e.code())
                    time.sleep(0.05)
                    continue
                with lock:
                    acknowledged.append((key, r.header.revision))
                    last_ok[0] = time.time()

        threads = [threading.Thread(target=writer, args=(w,)) for w in range(3)]
        for t in threads:
            t.start()
        gaps = []
        leaders = set()
        try:
            time.sleep(1)
            for victim in range(3):
                leader = self.leader_index()
                leaders.add(leader)
                killed_at = time.time()
                self.cluster.members[victim].kill()
                # The cluster keeps taking writes (through the others).
                with lock:
                    before = len(acknowledged)
                deadline = time.time() + 10
                while time.time() < deadline:
                    with lock:
                        if len(acknowledged) > before + 20:
                            break
                    time.sleep(0.01)
                with lock:
                    self.assertGreater(len(acknowledged), before + 20,
                                       "no writes after killing member %d" % victim)
                gaps.append((victim == leader, time.time() - killed_at))
                self.cluster.members[victim].start()
                self.wait_for_leader()
                time.sleep(0.5)
        finally:
            stop.set()
            for t in threads:
                t.join()
        leaders.add(self.leader_index())
        print("acknowledged %d puts, %d failed calls; time to 20 writes after a kill "
              "(leader?, seconds): %s; leaders seen %s"
              % (len(acknowledged), len(failures),
                 ["%s %.2f" % (was_leader, s) for was_leader, s in gaps], sorted(leaders)))
        self.assertTrue(any(was_leader for was_leader, _ in gaps), "no kill hit the leader")
        # Every acknowledged put, on every member, at its revision.
        for endpoint in endpoints:
            kv = rpc.KVStub(grpc.insecure_channel(endpoint))
            deadline = time.time() + 10
            while True:
                r = kv.Range(pb.RangeRequest(key=b"w", range_end=b"x"), timeout=10)
                if r.count >= len(acknowledged) or time.time() > deadline:
                    break
                time.sleep(0.1)
            stored = {kv_.key: kv_.mod_revision for kv_ in r.kvs}
            for key, revision in acknowledged:
                self.assertEqual(stored.get(key), revision,
                                 "%s: put %s acknowledged at %d" % (endpoint, key, revision))
        # The members are at one revision.
        revisions = set()
        for endpoint in endpoints:
            kv = rpc.KVStub(grpc.insecure_channel(endpoint))
            top = kv.Range(pb.RangeRequest(key=b"w", range_end=b"x", count_only=True), timeout=10)
            revisions.add(top.header.revision)
        self.assertEqual(len(revisions), 1, "members at different revisions: %s" % revisions)


if __name__ == "__main__":
    unittest.main()
