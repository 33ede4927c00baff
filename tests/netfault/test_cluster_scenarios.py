"""The distributed-MVCC article's named scenarios, on three strata-server
processes over TCP (tests/cluster_sim/test_scenarios.py plays them on the
Maelstrom node's simulated network). Faults come from STRATA_PEER_FAULTS
(server/peer_faults.h): a member killed right after a kind of message has
left it, a kind held until a file appears, sent late, sent twice; a
partition is cut by netfault Links (proxied_cluster.py).

In each, m0 coordinates a Txn over etcd's API that writes keys owned by m1
and m2 (two-phase commit: prepares on both, the record on m1, the lower
shard), and readers go through m1 or m2. Reads are read-only Txns (one
snapshot). What must hold: every read is atomic (all old values or all
new), agrees with what the writer was told, and comes within a bound,
never blocked for good by an orphaned intent; afterwards no intent is
left on any shard."""
import os
import shutil
import sys
import tempfile
import threading
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "compat"))
import grpc  # noqa: E402
import xxhash  # noqa: E402

from bank import Bank  # noqa: E402
from history_clients import HistoryClients  # noqa: E402
from proxied_cluster import ProxiedCluster  # noqa: E402
from servers import StrataCluster, python_stubs  # noqa: E402

python_stubs()
import rpc_pb2 as pb  # noqa: E402
import rpc_pb2_grpc as rpc  # noqa: E402

READ_BOUND = 8.0  # s: a participant aborts a record whose heartbeats stopped 1 s ago
DRAIN_BOUND = 15.0  # s: every intent resolved


def owner(key, members=3):
    """The member whose shard holds `key`: ShardMap::OnePerNode's equal
    ranges of XXH3 over the engine key (tag 0x01, then the etcd key)."""
    h = xxhash.xxh3_64_intdigest(b"\x01" + key)
    return max(i for i in range(members) if (i << 64) // members <= h)


def keys_of(member, prefix, count):
    keys, i = [], 0
    while len(keys) < count:
        key = b"%s/%d" % (prefix, i)
        if owner(key) == member:
            keys.append(key)
        i += 1
    return keys


def kv(endpoint):
    return rpc.KVStub(grpc.insecure_channel(endpoint))


def write(endpoint, values, timeout=10):
    """A Txn putting `values`; its response, or the grpc.RpcError."""
    ops = [pb.RequestOp(request_put=pb.PutRequest(key=k, value=v)) for k, v in values.items()]
    try:
        return kv(endpoint).Txn(pb.TxnRequest(success=ops), timeout=timeout)
    except grpc.RpcError as e:
        return e


def read(endpoint, keys, timeout=READ_BOUND):
    """One read-only Txn of `keys`: ({key: value or None}, revision)."""
    ops = [pb.RequestOp(request_range=pb.RangeRequest(key=k)) for k in keys]
    r = kv(endpoint).Txn(pb.TxnRequest(success=ops), timeout=timeout)
    values = {}
    for k, op in zip(keys, r.responses):
        kvs = op.response_range.kvs
        values[k] = kvs[0].value if kvs else None
    return values, r.header.revision


class Call(threading.Thread):
    """`fn()` on a thread of its own; `result` once `done`."""

    def __init__(self, fn):
        super().__init__(daemon=True)
        self.fn, self.result, self.done = fn, None, threading.Event()
        self.start()

    def run(self):
        try:
            self.result = self.fn()
        except grpc.RpcError as e:
            self.result = e
        self.done.set()


class Scenarios(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="strata-scenarios-files-")
        self.addCleanup(shutil.rmtree, self.dir, ignore_errors=True)

    def file(self, name):
        return os.path.join(self.dir, name)

    def release(self, name):
        open(self.file(name), "w").close()

    def metric(self, cluster, member, name):
        url = "http://127.0.0.1:%d/metrics" % cluster.metrics_ports[member]
        with urllib.request.urlopen(url, timeout=10) as r:
            for line in r.read().decode().splitlines():
                if line.startswith(name + " "):
                    return float(line.split()[1])
        self.fail("no %s on m%d's /metrics" % (name, member))

    def assertIntentsDrain(self, cluster, members=(0, 1, 2)):
        deadline = time.time() + DRAIN_BOUND
        left = {}
        while time.time() < deadline:
            left = {m: self.metric(cluster, m, "strata_cluster_shard_intents") for m in members}
            if not any(left.values()):
                return
            time.sleep(0.2)
        self.fail("intents still pending after %.0f s: %s" % (DRAIN_BOUND, left))

    def assertAtomic(self, values, old, new, expect=None, context=""):
        """All old or all new; `expect` ("old"/"new") says which, if known."""
        got = "old" if values == old else "new" if values == new else None
        self.assertIsNotNone(got, "a read saw part of a transaction%s: %s" % (context, values))
        if expect:
            self.assertEqual(got, expect, "a read saw the %s values, not the %s%s"
                             % (got, expect, context))

    def wait_for_line(self, member, text, bound=5.0):
        deadline = time.time() + bound
        while time.time() < deadline:
            with member._lock:
                for line in member.lines:
                    if text in line:
                        return line
            time.sleep(0.02)
        self.fail("m0 never logged %r:\n%s" % (text, member.log()))

    def two_shard_keys(self, cluster, prefix):
        """Two keys on m1 and two on m2, written with old values by a Txn
        through m1; returns (keys, old, new)."""
        keys = keys_of(1, prefix, 2) + keys_of(2, prefix, 2)
        old = {k: b"old" for k in keys}
        new = {k: b"new" for k in keys}
        r = write(cluster.endpoints()[1], old)
        self.assertNotIsInstance(r, grpc.RpcError, "writing the old values: %s" % r)
        return keys, old, new

    def test_coordinator_dies_after_prepare(self):
        """m0 is killed -9 right after (a) its first shard_prepare has gone
        out, (b) both, (c) its record_commit. Nothing after that message
        leaves it. In (a) and (b) the record never committed: a reader
        through m1 sees the old values within READ_BOUND (m1 or m2 pushes
        the record, whose heartbeats stopped, and aborts it). In (c) the
        record took the commit: the reader sees the new values though m0
        sent no resolve. Either way the intents drain, and m0 restarted
        reads the same."""
        variants = [("first prepare", "crash-after=shard_prepare:1", "old"),
                    ("both prepares", "crash-after=shard_prepare:2", "old"),
                    ("record_commit", "crash-after=record_commit", "new")]
        cluster = StrataCluster.started_for(
            self, "strata-scenarios-",
            member_env={0: {"STRATA_PEER_FAULTS": variants[0][1]}})
        m0 = cluster.members[0]
        for n, (variant, faults, expect) in enumerate(variants):
            with self.subTest(variant=variant):
                if n > 0:
                    m0.env["STRATA_PEER_FAULTS"] = faults
                    m0.start()
                keys, old, new = self.two_shard_keys(cluster, b"dies%d" % n)
                r = write(m0.endpoint, new)
                self.assertIsInstance(r, grpc.RpcError, "m0 answered although it was to die")
                m0.proc.wait(timeout=10)
                self.wait_for_line(m0, "killing this process")
                orphaned = sum(self.metric(cluster, m, "strata_cluster_shard_intents")
                               for m in (1, 2))
                self.assertGreater(orphaned, 0, "m0 died leaving no intent: the scenario "
                                                "did not happen (%s)" % variant)
                began = time.time()
                values, _ = read(cluster.endpoints()[1], keys)
                self.assertLess(time.time() - began, READ_BOUND)
                self.assertAtomic(values, old, new, expect, " after m0 died (%s)" % variant)
                self.assertIntentsDrain(cluster, members=(1, 2))
                m0.env["STRATA_PEER_FAULTS"] = ""
                m0.start()
                values, _ = read(m0.endpoint, keys)
                self.assertAtomic(values, old, new, expect, " through m0 restarted (%s)" % variant)
                m0.kill()

    def test_pending_intents_partitioned_primary_and_a_lagging_shard(self):
        """On one cluster, in turn (m0 holds record_commit until a file
        appears, twice, and sends m2 its resolves 300 ms late):

        A reader meets a pending intent: while m0's record_commit is held
        (the record PENDING, m0 alive and heartbeating), a read of an
        intent's key through m1 must not answer; once released, the read
        returns the new values (its snapshot came after the prepares) and
        the writer its success.

        A partitioned primary: the held record_commit is released into a
        cut between m0 and m1 (the record's shard) for 1.5 s. After the
        heal, m0 answers within the RPC bound, and a read agrees with the
        answer.

        A lagging shard: a write acknowledged while m2's resolve is still
        on its way; a read through m1 right after must see it on m2's keys,
        waiting for the resolve or learning the outcome from the record,
        never missing it."""
        cluster = ProxiedCluster.started_for(self, "strata-scenarios-", member_env={0: {
            "STRATA_PEER_FAULTS": "hold=record_commit:%s;hold=record_commit:%s;"
                                  "delay=shard_resolve@m2:300" % (self.file("first"),
                                                                  self.file("second"))}})
        m0 = cluster.members[0]
        endpoints = cluster.endpoints()

        # A reader meets a pending intent.
        keys, old, new = self.two_shard_keys(cluster, b"pending")
        writer = Call(lambda: write(m0.endpoint, new))
        self.wait_for_line(m0, "holding record_commit to m1 until " + self.file("first"))
        time.sleep(0.05)
        reader = Call(lambda: read(endpoints[1], keys))
        time.sleep(0.5)
        self.assertFalse(reader.done.is_set(),
                         "a read answered %s while an intent's record was PENDING"
                         % (reader.result,))
        self.assertFalse(writer.done.is_set(), "the Txn answered while its record_commit was held")
        self.release("first")
        self.assertTrue(reader.done.wait(5) and writer.done.wait(5), "nothing answered once released")
        self.assertIsInstance(writer.result, pb.TxnResponse, str(writer.result))
        self.assertIsInstance(reader.result, tuple, str(reader.result))
        values, revision = reader.result
        self.assertGreaterEqual(revision, writer.result.header.revision)
        self.assertAtomic(values, old, new, "new", " once the record committed")

        # A partitioned primary.
        keys, old, new = self.two_shard_keys(cluster, b"primary")
        writer = Call(lambda: write(m0.endpoint, new, timeout=20))
        self.wait_for_line(m0, "holding record_commit to m1 until " + self.file("second"))
        cluster.cut("m0", "m1")
        self.release("second")
        time.sleep(1.5)
        cluster.heal()
        self.assertTrue(writer.done.wait(8), "m0 did not answer within 8 s of the heal")
        r = writer.result
        expect = "new" if isinstance(r, pb.TxnResponse) else None
        if isinstance(r, grpc.RpcError) and "too many requests" in (r.details() or ""):
            expect = "old"  # a conflict: the record was aborted
        values, _ = read(endpoints[2], keys)
        self.assertAtomic(values, old, new, expect,
                          " after the partition (the writer got %s)" % (r if expect != "new"
                                                                         else "success"))

        # A lagging shard.
        keys, old, new = self.two_shard_keys(cluster, b"lagging")
        r = write(m0.endpoint, new)
        self.assertIsInstance(r, pb.TxnResponse, str(r))
        waiting = self.metric(cluster, 2, "strata_cluster_shard_intents")
        values, revision = read(endpoints[1], keys)
        self.assertGreaterEqual(revision, r.header.revision)
        self.assertAtomic(values, old, new, "new", " on a lagging shard")
        self.assertGreater(waiting, 0, "m2 had resolved its intents before the read began: "
                                       "the scenario did not happen")
        self.assertIntentsDrain(cluster)

    def test_duplicated_and_reordered_messages(self):
        """Every member sends a fifth of its peer messages twice and every
        message up to 20 ms late (so they overtake each other): the bank's
        sums hold, acknowledged writes stay, the Txns' history is strictly
        serializable, and no intent is left."""
        cluster = StrataCluster.started_for(
            self, "strata-scenarios-",
            member_env={i: {"STRATA_PEER_FAULTS": "duplicate=*:20;jitter=*:20"} for i in range(3)})
        bank = Bank(cluster.endpoints()).start()
        history = HistoryClients(cluster.endpoints()).start()
        try:
            time.sleep(4.0)
        finally:
            bank.stop()
            history.stop()
        bank.check(self)
        history.check(self)
        self.assertGreater(len(bank.transfers), 10, "too few transfers to mean anything")
        self.assertIntentsDrain(cluster)


if __name__ == "__main__":
    unittest.main()
