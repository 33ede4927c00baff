"""Clients over etcd's API whose history is checked by the project's
transaction checker (tests/cluster_sim/checker.py), for cluster tests with
faults.

Each client runs Txns on a few keys: a write Txn reads two keys and puts
unique values to two (its revision C is its commit timestamp, and etcd's
rules make it atomic at C, so it is recorded as starting at C - 1 and
committing at C), or a read-only Txn of three keys (recorded at its
header revision). The checker replays the committed Txns in revision
order: every read must equal the state just before its revision (so
writes are serializable in revision order, with no lost update, no read
of a failed or unknown write that cannot have happened, nothing
acknowledged lost at the final read). On top of that, revision order
must follow real time: a request that began after another was answered
has a higher revision (a read's snapshot no lower), which together is
strict serializability, etcd's guarantee.

An RPC error other than "too many requests" (the conflict retries ran
out: nothing was written) leaves a write's outcome unknown: it is
recorded as indefinite, and the checker accepts reads of it only where
it can have committed."""
import json
import os
import random
import subprocess
import sys
import threading
import time

import grpc

from servers import Workers, python_stubs

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "cluster_sim"))
import checker  # noqa: E402
from history import FAIL, INFO, OK, History, Op, Txn  # noqa: E402

python_stubs()
import rpc_pb2 as pb  # noqa: E402
import rpc_pb2_grpc as rpc  # noqa: E402



def _range(key):
    return pb.RequestOp(request_range=pb.RangeRequest(key=key))


def _value(resp):
    kvs = resp.response_range.kvs
    return kvs[0].value.decode() if kvs else None


class HistoryClients(Workers):
    def __init__(self, endpoints, clients=3, timeout=5, tag=""):
        super().__init__([(self._client, (i,)) for i in range(clients)])
        # Keys and values of their own: runs against one cluster stay apart.
        self.tag = tag
        self.keys = [b"h%s/%d" % (tag.encode(), i) for i in range(8)]
        self.kvs = [rpc.KVStub(grpc.insecure_channel(e)) for e in endpoints]
        self.timeout = timeout
        self.history = History()
        self.revisions = []  # (invoke, complete, revision, is_write) of answered requests
        self.lock = threading.Lock()
        self.started = time.time()

    def _now(self):
        return time.time() - self.started

    def _client(self, i):
        rng = random.Random(1000 + i)
        kv = self.kvs[i % len(self.kvs)]
        n = 0
        while not self.stop_event.is_set():
            name = "c%d" % i
            invoked = self._now()
            if rng.random() < 0.3:
                keys = rng.sample(self.keys, 3)
                try:
                    r = kv.Txn(pb.TxnRequest(success=[_range(k) for k in keys]),
                               timeout=self.timeout)
                except grpc.RpcError:
                    time.sleep(0.05)
                    continue  # a read that failed says nothing
                ops = [Op("r", k.decode(), _value(x)) for k, x in zip(keys, r.responses)]
                self._record(Txn(client=name, node=str(i), isolation="serializable",
                                 invoke_time=invoked, complete_time=self._now(),
                                 start_ts=r.header.revision, outcome=OK, ops=ops,
                                 read_only=True), False)
                continue
            reads, writes = rng.sample(self.keys, 2), rng.sample(self.keys, 2)
            values = ["%s%s-%d-%d" % (self.tag, name, n, j) for j in range(2)]
            n += 1
            request = pb.TxnRequest(success=[_range(k) for k in reads] + [
                pb.RequestOp(request_put=pb.PutRequest(key=k, value=v.encode()))
                for k, v in zip(writes, values)])
            put_ops = [Op("w", k.decode(), v) for k, v in zip(writes, values)]
            try:
                r = kv.Txn(request, timeout=self.timeout)
            except grpc.RpcError as e:
                definite = e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
                self._record(Txn(client=name, node=str(i), isolation="serializable",
                                 invoke_time=invoked, complete_time=self._now(),
                                 start_ts=None if definite else 0,
                                 outcome=FAIL if definite else INFO, ops=put_ops,
                                 error=e.details()), None)
                time.sleep(0.05)
                continue
            ops = [Op("r", k.decode(), _value(x)) for k, x in zip(reads, r.responses)] + put_ops
            self._record(Txn(client=name, node=str(i), isolation="serializable",
                             invoke_time=invoked, complete_time=self._now(),
                             start_ts=r.header.revision - 1, commit_ts=r.header.revision,
                             outcome=OK, ops=ops), True)

    def _record(self, txn, is_write):
        with self.lock:
            self.history.add(txn)
            if is_write is not None:
                rev = txn.commit_ts if is_write else txn.start_ts
                self.revisions.append((txn.invoke_time, txn.complete_time, rev, is_write))

    def real_time_violations(self):
        """Requests whose revision is below one answered before they began
        (for a write, not above it)."""
        done = sorted(self.revisions, key=lambda r: r[1])
        bad, highest, j = [], 0, 0
        for invoked, _, rev, is_write in sorted(self.revisions):
            while j < len(done) and done[j][1] < invoked:
                highest = max(highest, done[j][2])
                j += 1
            if rev < highest or (is_write and rev == highest):
                bad.append((invoked, rev, highest))
        return bad

    def check(self, test):
        """Serializable in revision order, revisions in real-time order,
        nothing acknowledged lost."""
        kv = self.kvs[0]  # maybe restarted moments ago: wait for its channel
        r = kv.Txn(pb.TxnRequest(success=[_range(k) for k in self.keys]), timeout=10,
                   wait_for_ready=True)
        final = Txn(client="final", node="0", isolation="serializable", invoke_time=self._now(),
                    start_ts=r.header.revision, outcome=OK, read_only=True,
                    ops=[Op("r", k.decode(), _value(x)) for k, x in zip(self.keys, r.responses)])
        committed = sum(1 for t in self.history.txns if t.outcome == OK and not t.read_only)
        test.assertGreater(committed, 20, "too few Txns committed to say anything")
        verdict = checker.check(self.history, final)
        test.assertTrue(verdict.ok, "the history is not serializable in revision order:\n" +
                        "\n".join(verdict.errors[:10]))
        test.assertEqual(self.real_time_violations()[:5], [],
                         "revisions out of real-time order: (began at, revision, answered before)")


def clientv3_history_binary():
    """tests/compat/clientv3_history built with etcd's Go client from
    Debian's golang-etcd-server-dev (offline), once per checkout under
    build/deps, sharing the Go cache of the e2e suite's build."""
    here = os.path.dirname(os.path.abspath(__file__))
    source = os.path.join(here, "clientv3_history", "main.go")
    deps = os.path.join(here, "..", "..", "build", "deps")
    binary = os.path.join(deps, "clientv3-history", "clientv3-history")
    if os.path.exists(binary) and os.path.getmtime(binary) >= os.path.getmtime(source):
        return binary
    os.makedirs(os.path.dirname(binary), exist_ok=True)
    partial = "%s.%d" % (binary, os.getpid())
    env = dict(os.environ, GO111MODULE="off", GOPATH="/usr/share/gocode",
               GOCACHE=os.path.join(deps, "etcd-e2e", "gocache"))
    built = subprocess.run(["go", "build", "-o", partial, "main.go"],
                           cwd=os.path.dirname(source), env=env, capture_output=True)
    if built.returncode != 0:
        raise RuntimeError("building clientv3_history failed:\n" + built.stderr.decode())
    os.replace(partial, binary)  # atomic: a concurrent build just wins the race
    return binary


class ClientV3History(HistoryClients):
    """The same Txn shapes and checks as HistoryClients, but the clients are
    etcd's own Go client (clientv3_history/main.go) in one process, each
    given every endpoint: clientv3's balancer picks the member and fails
    over."""

    def __init__(self, endpoints, clients=3, timeout=5, tag=""):
        super().__init__(endpoints, clients=0, timeout=timeout, tag=tag)
        self.keys = [b"g%s/%d" % (tag.encode(), i) for i in range(8)]
        self.args = [clientv3_history_binary(), "-endpoints", ",".join(endpoints),
                     "-clients", str(clients), "-tag", tag, "-timeout", "%ds" % timeout]
        self.proc = None

    def start(self):
        self.started = time.time()
        self.proc = subprocess.Popen(self.args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        return self

    def stop(self):
        out, err = self.proc.communicate(timeout=60)  # closing stdin stops the clients
        if self.proc.returncode != 0:
            raise AssertionError("clientv3_history exited with %d:\n%s"
                                 % (self.proc.returncode, err.decode()[-2000:]))
        for line in out.decode().splitlines():
            r = json.loads(line)
            reads = [Op("r", k, v) for k, v in (r["reads"] or [])]
            writes = [Op("w", k, v) for k, v in (r["writes"] or [])]
            common = dict(client=r["client"], node=r["client"], isolation="serializable",
                          invoke_time=r["invoke"], complete_time=r["complete"])
            if r["outcome"] != "ok":
                definite = r["outcome"] == "fail"
                self._record(Txn(start_ts=None if definite else 0,
                                 outcome=FAIL if definite else INFO, ops=writes,
                                 error=r.get("error"), **common), None)
            elif r["read_only"]:
                self._record(Txn(start_ts=r["revision"], outcome=OK, ops=reads, read_only=True,
                                 **common), False)
            else:
                self._record(Txn(start_ts=r["revision"] - 1, commit_ts=r["revision"],
                                 outcome=OK, ops=reads + writes, **common), True)
