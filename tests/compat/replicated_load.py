"""Writers for a replicated strata cluster (--cluster-mode replicated) and
the checks after a fault: what the members' /metrics say about their Raft
group, and that every acknowledged put is on every member at the revision
its reply named. Used by test_replicated (kills) and
tests/netfault/test_replicated_partitions (partitions)."""
import re
import threading
import time
import urllib.request

import grpc

from servers import python_stubs

python_stubs()
import rpc_pb2 as pb  # noqa: E402
import rpc_pb2_grpc as rpc  # noqa: E402


def raft_metrics(port):
    """A member's strata_raft_* figures ({} if it does not answer)."""
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5) as r:
            text = r.read().decode()
    except OSError:
        return {}
    out = {}
    for line in text.splitlines():
        m = re.match(r"^(strata_raft_\w+) ([0-9.e+-]+)$", line)
        if m:
            out[m.group(1)] = float(m.group(2))
    return out


def leader_of(cluster, among=None):
    """The index of the member that says it leads (of `among`, default all
    running), or None."""
    for i, port in enumerate(cluster.metrics_ports):
        if among is not None and i not in among:
            continue
        if cluster.members[i].proc.poll() is None and \
                raft_metrics(port).get("strata_raft_is_leader") == 1:
            return i
    return None


class Writers:
    """One thread per endpoint putting fresh keys (prefix w<i>-) until
    stopped; records what was acknowledged, with its revision, and what
    failed (whose outcome is unknown)."""

    def __init__(self, endpoints, timeout=3):
        self.endpoints = endpoints
        self.timeout = timeout
        self.acknowledged = []  # (key, revision, time)
        self.failures = []      # (endpoint index, grpc code, time)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(i,))
                         for i in range(len(endpoints))]

    def start(self):
        for t in self._threads:
            t.start()
        return self

    def stop(self):
        self._stop.set()
        for t in self._threads:
            t.join()

    def count(self):
        with self._lock:
            return len(self.acknowledged)

    def wait_for_more(self, n, timeout=10):
        """True once n more puts than now were acknowledged."""
        target = self.count() + n
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.count() >= target:
                return True
            time.sleep(0.01)
        return False

    def _run(self, i):
        kv = rpc.KVStub(grpc.insecure_channel(self.endpoints[i]))
        n = 0
        while not self._stop.is_set():
            key = b"w%d-%06d" % (i, n)
            n += 1
            try:
                r = kv.Put(pb.PutRequest(key=key, value=key), timeout=self.timeout)
            except grpc.RpcError as e:
                with self._lock:
                    self.failures.append((i, e.code(), time.time()))
                time.sleep(0.05)
                continue
            with self._lock:
                self.acknowledged.append((key, r.header.revision, time.time()))

    def check_everywhere(self, test):
        """Every acknowledged put on every member at its revision, and the
        members at one revision."""
        revisions = set()
        for endpoint in self.endpoints:
            kv = rpc.KVStub(grpc.insecure_channel(endpoint))
            deadline = time.time() + 10
            while True:
                r = kv.Range(pb.RangeRequest(key=b"w", range_end=b"x"), timeout=10)
                if r.count >= len(self.acknowledged) or time.time() > deadline:
                    break
                time.sleep(0.1)
            stored = {item.key: item.mod_revision for item in r.kvs}
            for key, revision, _ in self.acknowledged:
                test.assertEqual(stored.get(key), revision,
                                 "%s: put %s acknowledged at %d" % (endpoint, key, revision))
            revisions.add(r.header.revision)
        test.assertEqual(len(revisions), 1, "members at different revisions: %s" % revisions)
