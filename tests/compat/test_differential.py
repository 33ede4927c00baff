"""Differential test: the same seeded random sequence of etcd v3 requests
against strata-server and the reference etcd 3.4.23; every response field
must be equal (but the member's identity in headers, which differs by
nature). Covers Range with every option, Put with every option, DeleteRange,
Txn with compares on every target and operator and nested Txns, Compact,
leases (client-chosen ids, so both sides agree), and watches replayed from
random revisions with filters and prev_kv.

STRATA_DIFF_SEEDS and STRATA_DIFF_OPS make it longer (defaults keep it to
seconds); a failure prints the seed and the step to replay.
"""
import os
import random
import shutil
import tempfile
import time
import unittest

import grpc
from google.protobuf.json_format import MessageToDict

from servers import EtcdServer, RequestQueue, StrataServer, python_stubs

python_stubs()
import rpc_pb2 as pb  # noqa: E402  (generated at build time from etcd's protos)
import rpc_pb2_grpc as rpc  # noqa: E402

KEYS = [b"a", b"a1", b"a2", b"ab", b"b", b"b\x00", b"c", b"c/1", b"c/2", b"\xff"]
VALUES = [b"", b"x", b"y", b"zz", b"\x00\x01"]


class Client:
    def __init__(self, endpoint):
        self.channel = grpc.insecure_channel(endpoint)
        self.kv = rpc.KVStub(self.channel)
        self.lease = rpc.LeaseStub(self.channel)
        self.watch = rpc.WatchStub(self.channel)
        self.maintenance = rpc.MaintenanceStub(self.channel)

    def call(self, method, request):
        try:
            return ("ok", method(request, timeout=10))
        except grpc.RpcError as e:
            return ("error", e.code().name, e.details())


def strip(message):
    d = MessageToDict(message, preserving_proto_field_name=True)

    def walk(x):
        if isinstance(x, dict):
            for k in ("cluster_id", "member_id", "raft_term"):
                x.pop(k, None)
            for v in x.values():
                walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)
    walk(d)
    return d


def normalize(result):
    if result[0] == "ok":
        return ("ok", strip(result[1]))
    return result


class Generator:
    def __init__(self, rng):
        self.r = rng
        self.leases = []
        self.next_lease = 1000

    def key(self):
        return self.r.choice(KEYS)

    def span(self):
        """(key, range_end): a key, a range, a prefix or from-key."""
        k = self.key()
        c = self.r.random()
        if c < 0.4:
            return k, b""
        if c < 0.6:
            return k, self.key()  # may be inverted: must be empty
        if c < 0.8:
            return k, k[:-1] + bytes([k[-1] + 1]) if k and k[-1] < 255 else b"\x00"
        return k, b"\x00"

    def range(self, current):
        k, end = self.span()
        r = pb.RangeRequest(key=k, range_end=end)
        if self.r.random() < 0.3:
            r.revision = self.r.randint(0, current + 1)
        sort = self.r.random() < 0.3
        if sort:
            r.sort_order = self.r.choice([pb.RangeRequest.ASCEND, pb.RangeRequest.DESCEND,
                                          pb.RangeRequest.NONE])
            r.sort_target = self.r.choice([pb.RangeRequest.KEY, pb.RangeRequest.KEY,
                                           pb.RangeRequest.VERSION, pb.RangeRequest.CREATE,
                                           pb.RangeRequest.MOD, pb.RangeRequest.VALUE])
        # etcd's sort is not stable: a limit on a sort with ties would make
        # the two servers keep different (equally right) keys.
        if self.r.random() < 0.3 and (not sort or r.sort_target == pb.RangeRequest.KEY):
            r.limit = self.r.randint(1, 3)
        r.keys_only = self.r.random() < 0.15
        r.count_only = self.r.random() < 0.1
        r.serializable = self.r.random() < 0.2
        if self.r.random() < 0.15:
            r.min_mod_revision = self.r.randint(0, current)
        if self.r.random() < 0.15:
            r.max_mod_revision = self.r.randint(0, current)
        if self.r.random() < 0.15:
            r.min_create_revision = self.r.randint(0, current)
        if self.r.random() < 0.15:
            r.max_create_revision = self.r.randint(0, current)
        return r

    def put(self, in_txn=False):
        r = pb.PutRequest(key=self.key(), value=self.r.choice(VALUES))
        r.prev_kv = self.r.random() < 0.3
        if self.leases and self.r.random() < 0.2:
            r.lease = self.r.choice(self.leases)
        elif self.r.random() < 0.03:
            r.lease = 424242  # not granted
        # Not inside a Txn: etcd 3.4.23 panics when an earlier op of the Txn
        # deleted the key (its check looks before the Txn, the apply after).
        if not in_txn and self.r.random() < 0.08:
            r.ignore_value = True
            r.value = b""
        if not in_txn and self.r.random() < 0.08:
            r.ignore_lease = True
            r.lease = 0
        return r

    def delete(self):
        k, end = self.span()
        return pb.DeleteRangeRequest(key=k, range_end=end, prev_kv=self.r.random() < 0.4)

    def compare(self, current):
        k, end = self.span() if self.r.random() < 0.3 else (self.key(), b"")
        c = pb.Compare(key=k, range_end=end)
        c.result = self.r.choice([pb.Compare.EQUAL, pb.Compare.GREATER, pb.Compare.LESS,
                                  pb.Compare.NOT_EQUAL])
        t = self.r.choice(["version", "create", "mod", "value", "lease"])
        if t == "version":
            c.target, c.version = pb.Compare.VERSION, self.r.randint(0, 3)
        elif t == "create":
            c.target, c.create_revision = pb.Compare.CREATE, self.r.randint(0, current)
        elif t == "mod":
            c.target, c.mod_revision = pb.Compare.MOD, self.r.randint(0, current)
        elif t == "value":
            c.target, c.value = pb.Compare.VALUE, self.r.choice(VALUES)
        else:
            c.target, c.lease = pb.Compare.LEASE, self.r.choice(self.leases + [0])
        return c

    def ops(self, current, depth):
        ops = []
        for _ in range(self.r.randint(0, 3)):
            c = self.r.random()
            if c < 0.35:
                ops.append(pb.RequestOp(request_range=self.range(current)))
            elif c < 0.7:
                ops.append(pb.RequestOp(request_put=self.put(in_txn=True)))
            elif c < 0.9 or depth > 0:
                d = self.delete()
                if d.range_end == b"\x00":
                    # A delete to the end may write a key a put of the same
                    # Txn writes too (etcd's duplicate check lets it through);
                    # strata replays such a revision from history with only
                    # the key's last change (docs/ETCD-COMPAT.md), so keep
                    # that case out of the replayed watches.
                    d.range_end = b""
                ops.append(pb.RequestOp(request_delete_range=d))
            else:
                ops.append(pb.RequestOp(request_txn=self.txn(current, depth + 1)))
        return ops

    def txn(self, current, depth=0):
        t = pb.TxnRequest()
        for _ in range(self.r.randint(0, 2)):
            t.compare.append(self.compare(current))
        t.success.extend(self.ops(current, depth))
        t.failure.extend(self.ops(current, depth))
        return t


class Differential(unittest.TestCase):
    maxDiff = None
    def setUp(self):
        # Durable, so that the sequence can restart it halfway: after that,
        # watches replay from the engine's history instead of the in-memory
        # ring, and recovery is compared with etcd too.
        self.data = tempfile.mkdtemp(prefix="strata-diff-")
        self.strata = StrataServer(data_dir=self.data).start()
        self.etcd = EtcdServer().start()
        self.clients = [Client(self.strata.endpoint), Client(self.etcd.endpoint)]

    def tearDown(self):
        for c in self.clients:
            c.channel.close()
        self.strata.stop()
        self.etcd.stop()
        shutil.rmtree(self.data, ignore_errors=True)

    def restart_strata(self):
        self.clients[0].channel.close()
        self.strata.stop()
        self.strata.start()
        self.clients[0] = Client(self.strata.endpoint)

    def both(self, step, name, request):
        results = [normalize(c.call(getattr(getattr(c, svc), method), request))
                   for c in self.clients for svc, method in [name.split(".")]]
        self.assertEqual(results[0], results[1], "step %s: %s %s" % (step, name, request))
        return results[0]

    def current(self):
        r = self.clients[1].kv.Range(pb.RangeRequest(key=b"\x00", range_end=b"\x00",
                                                     count_only=True))
        return r.header.revision

    def run_seed(self, seed, ops):
        rng = random.Random(seed)
        g = Generator(rng)
        current = 1
        for step in range(ops):
            if step == ops // 2:
                self.restart_strata()
            c = rng.random()
            if c < 0.25:
                self.both((seed, step), "kv.Range", g.range(current))
            elif c < 0.5:
                self.both((seed, step), "kv.Put", g.put())
            elif c < 0.6:
                self.both((seed, step), "kv.DeleteRange", g.delete())
            elif c < 0.85:
                self.both((seed, step), "kv.Txn", g.txn(current))
            elif c < 0.88:
                rev = rng.randint(0, current + 1)
                self.both((seed, step), "kv.Compact",
                          pb.CompactionRequest(revision=rev, physical=True))
            elif c < 0.92:
                g.next_lease += rng.randint(1, 3)
                # Negative ids too: etcd's lessor takes any id but 0.
                lease = rng.choice([g.next_lease, -g.next_lease, g.leases[0] if g.leases else 7])
                r = self.both((seed, step), "lease.LeaseGrant",
                              pb.LeaseGrantRequest(ID=lease, TTL=rng.choice([60, 3600])))
                if r[0] == "ok":
                    g.leases.append(lease)
            elif c < 0.95:
                lease = rng.choice(g.leases + [99999])
                self.both((seed, step), "lease.LeaseRevoke", pb.LeaseRevokeRequest(ID=lease))
                if lease in g.leases:
                    g.leases.remove(lease)
            else:
                lease = rng.choice(g.leases + [99999])
                results = [c.lease.LeaseTimeToLive(pb.LeaseTimeToLiveRequest(ID=lease, keys=True))
                           for c in self.clients]
                a, b = [(r.ID, r.grantedTTL, sorted(r.keys), r.TTL == -1) for r in results]
                self.assertEqual(a, b, "step %s: TimeToLive %d" % ((seed, step), lease))
            current = self.current()
        # Watches replayed from random revisions must deliver the same events.
        for w in range(6):
            k, end = g.span()
            start = rng.randint(1, current)
            create = pb.WatchCreateRequest(key=k, range_end=end, start_revision=start,
                                           prev_kv=rng.random() < 0.5)
            if rng.random() < 0.2:
                create.filters.append(rng.choice([pb.WatchCreateRequest.NOPUT,
                                                  pb.WatchCreateRequest.NODELETE]))
            results = [self.collect_watch(c, create, current) for c in self.clients]
            self.assertEqual(results[0], results[1],
                             "seed %d: watch %s" % (seed, create))

    def collect_watch(self, client, create, until):
        """Events of a watch from create.start_revision, or its cancellation:
        read until the stream has been quiet for a while after its last
        event reached revision `until` (etcd 3.4.23 answers a progress
        request before a catching-up watcher is synced, etcd#15220, so
        progress cannot mark the end here)."""
        import queue
        import threading
        requests = RequestQueue(pb.WatchRequest(create_request=create))
        stream = client.watch.Watch(iter(requests), timeout=15)
        responses = queue.Queue()

        def read():
            try:
                for resp in stream:
                    responses.put(resp)
            except grpc.RpcError:
                pass
            responses.put(None)

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        events, cancel = [], None
        try:
            while True:
                try:
                    resp = responses.get(timeout=0.6)
                except queue.Empty:
                    break  # quiet: everything up to `until` was delivered
                if resp is None:
                    break
                if resp.canceled:
                    cancel = (resp.compact_revision, resp.cancel_reason, resp.watch_id)
                    break
                for e in resp.events:
                    events.append(MessageToDict(e, preserving_proto_field_name=True))
        finally:
            requests.close()
            stream.cancel()
            reader.join(timeout=5)
        return events, cancel

    def test_random_sequences(self):
        seeds = int(os.environ.get("STRATA_DIFF_SEEDS", "3"))
        ops = int(os.environ.get("STRATA_DIFF_OPS", "300"))
        base = int(os.environ.get("STRATA_DIFF_BASE_SEED", "1"))
        for seed in range(base, base + seeds):
            with self.subTest(seed=seed):
                if seed != base:
                    self.tearDown()
                    self.setUp()
                self.run_seed(seed, ops)


if __name__ == "__main__":
    unittest.main()
