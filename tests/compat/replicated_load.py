"""Writers and watchers for a replicated strata cluster (--cluster-mode
replicated) and the checks after a fault: what the members' /metrics say
about their Raft group, that every acknowledged put is on every member at
the revision its reply named, and that watchers which move to another
member when theirs fails (as etcd's clients do) see every revision once, in
order. Used by test_replicated (kills) and
tests/netfault/test_replicated_partitions (partitions)."""
import re
import threading
import time
import urllib.request

import grpc

from servers import RequestQueue, python_stubs

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

    def check_everywhere(self, test, endpoints=None, one_revision=True):
        """Every acknowledged put on every member (of `endpoints`, default
        all) at its revision, and (`one_revision`: one Raft group, not a
        sharded cluster, whose members read at their own snapshots) those
        members at one revision."""
        revisions = set()
        for endpoint in endpoints or self.endpoints:
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
        if one_revision:
            test.assertEqual(len(revisions), 1, "members at different revisions: %s" % revisions)


class Watchers:
    """One watcher per endpoint on the writers' keys (w..x) from revision
    `start` on. When its stream fails (its member killed or cut off) it
    resumes on the next member from the revision after the last it saw, as
    etcd's clients do, and counts the move."""

    def __init__(self, endpoints, start):
        self.endpoints = endpoints
        self.start_revision = start
        self.events = [[] for _ in endpoints]  # per watcher: (revision, key)
        self.moves = [0 for _ in endpoints]
        self.cancels = []                     # (watcher, reason): never expected
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._streams = {}
        self._threads = [threading.Thread(target=self._run, args=(i,), daemon=True)
                         for i in range(len(endpoints))]

    def start(self):
        for t in self._threads:
            t.start()
        return self

    def _run(self, i):
        at = i
        while not self._stop.is_set():
            with self._lock:
                seen = self.events[i]
                start = seen[-1][0] + 1 if seen else self.start_revision
            requests = RequestQueue(pb.WatchRequest(create_request=pb.WatchCreateRequest(
                key=b"w", range_end=b"x", start_revision=start)))
            channel = grpc.insecure_channel(self.endpoints[at])
            stream = rpc.WatchStub(channel).Watch(iter(requests))
            with self._lock:
                self._streams[i] = stream
            try:
                for resp in stream:
                    if resp.canceled:
                        with self._lock:
                            self.cancels.append((i, resp.cancel_reason or
                                                 "compacted at %d" % resp.compact_revision))
                        return
                    with self._lock:
                        self.events[i].extend((e.kv.mod_revision, e.kv.key)
                                              for e in resp.events)
            except grpc.RpcError:
                pass
            finally:
                requests.close()
                channel.close()
            if self._stop.is_set():
                return
            at = (at + 1) % len(self.endpoints)
            with self._lock:
                self.moves[i] += 1
            time.sleep(0.1)

    def wait_until(self, revision, timeout=15):
        deadline = time.time() + timeout
        while time.time() < deadline:
            with self._lock:
                if all(e and e[-1][0] >= revision for e in self.events):
                    return True
            time.sleep(0.05)
        return False

    def stop(self):
        self._stop.set()
        with self._lock:
            streams = list(self._streams.values())
        for stream in streams:
            stream.cancel()
        for t in self._threads:
            t.join(timeout=10)

    def check(self, test, writers):
        """Each watcher saw every put of the writers' keys once, in order of
        revision, without a gap: the revisions of the keys a member holds
        (each key is put once), the acknowledged ones at their revisions."""
        r = rpc.KVStub(grpc.insecure_channel(self.endpoints[0])).Range(
            pb.RangeRequest(key=b"w", range_end=b"x"), timeout=10)
        want = sorted(item.mod_revision for item in r.kvs if item.mod_revision >=
                      self.start_revision)
        final = want[-1] if want else self.start_revision
        test.assertTrue(self.wait_until(final), "watchers short of revision %d: %s"
                        % (final, [e[-1][0] if e else None for e in self.events]))
        self.stop()
        test.assertEqual(self.cancels, [], "watchers cancelled")
        for i, events in enumerate(self.events):
            revisions = [rev for rev, _ in events if rev <= final]
            test.assertEqual(revisions, want, "watcher %d: a gap, a repeat or disorder" % i)
            by_key = {key: rev for rev, key in events}
            for key, revision, _ in writers.acknowledged:
                test.assertEqual(by_key.get(key), revision, "watcher %d missed %s" % (i, key))
        return len(want)
