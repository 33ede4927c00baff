"""A bank over etcd's API, for cluster tests with faults: accounts moved
between by compare-and-swap Txns (the two accounts usually on different
shards), readers checking that every read of all accounts sums to the
total, and writers of unique keys whose acknowledged writes must all be
there afterwards. Runs against any list of endpoints; clients spread over
them and treat RPC errors (a member down or cut off) as "try again"."""
import random
import threading
import time

import grpc

from servers import Workers, python_stubs

python_stubs()
import rpc_pb2 as pb  # noqa: E402
import rpc_pb2_grpc as rpc  # noqa: E402

ACCOUNTS = 8
BALANCE = 100
ALL = dict(key=b"acc/", range_end=b"acc0")


class Bank(Workers):
    def __init__(self, endpoints, transfers=4, readers=2, writers=3, timeout=5, tag=""):
        super().__init__([(self._transfer, (i,)) for i in range(transfers)] +
                         [(self._read, (i,)) for i in range(readers)] +
                         [(self._put, (i,)) for i in range(writers)])
        self.kvs = [rpc.KVStub(grpc.insecure_channel(e)) for e in endpoints]
        self.names = [b"acc/%d" % i for i in range(ACCOUNTS)]
        self.timeout = timeout
        # The writers' keys: "w<tag>.<writer>/<n>", apart from other runs'.
        self.put_prefix = b"w%s." % tag.encode()
        self.lock = threading.Lock()
        self.violations, self.transfers, self.reads, self.acked_puts = [], [], [], []
        self.unanswered_puts = []  # (key, value) of puts that got an error: maybe made
        self.errors = 0  # requests that failed (a shard unavailable)
        self.slowest = 0.0  # seconds, the longest a transfer (read and Txn) took

    def start(self):
        self.kvs[0].Txn(pb.TxnRequest(success=[
            pb.RequestOp(request_put=pb.PutRequest(key=k, value=b"%d" % BALANCE))
            for k in self.names]), timeout=10)
        return super().start()

    def transfers_between(self, start, end):
        with self.lock:
            return sum(1 for t in self.transfers if start <= t <= end)

    def check(self, test):
        """Every read summed to the total; every acknowledged put is there
        at its revision; the accounts sum to the total now."""
        test.assertEqual(self.violations, [], "reads whose accounts did not sum to the total")
        test.assertGreater(len(self.reads), 10)
        test.assertGreater(len(self.acked_puts), 20)
        # Through the first member, which may have been restarted moments
        # ago: its channel may still be backing off from the outage, so the
        # reads wait for it to connect (within their timeout).
        kv = self.kvs[0]
        for key, value, rev in self.acked_puts:
            r = kv.Range(pb.RangeRequest(key=key), timeout=10, wait_for_ready=True)
            test.assertEqual(len(r.kvs), 1, key)
            test.assertEqual((r.kvs[0].value, r.kvs[0].mod_revision), (value, rev), key)
        final = kv.Range(pb.RangeRequest(**ALL), timeout=10, wait_for_ready=True)
        test.assertEqual(sum(int(x.value) for x in final.kvs), ACCOUNTS * BALANCE)

    def _failed(self):
        # A shard is unavailable (a member down or cut off): try again.
        with self.lock:
            self.errors += 1
        time.sleep(0.05)

    def _transfer(self, i):
        rng = random.Random(i)
        kv = self.kvs[i % len(self.kvs)]
        while not self.stop_event.is_set():
            began = time.time()
            try:
                r = kv.Range(pb.RangeRequest(**ALL), timeout=self.timeout)
                by_key = {x.key: x for x in r.kvs}
                src, dst = rng.sample(self.names, 2)
                amount = rng.randint(1, 10)
                s, d = by_key[src], by_key[dst]
                t = pb.TxnRequest(
                    compare=[pb.Compare(key=src, target=pb.Compare.MOD, result=pb.Compare.EQUAL,
                                        mod_revision=s.mod_revision),
                             pb.Compare(key=dst, target=pb.Compare.MOD, result=pb.Compare.EQUAL,
                                        mod_revision=d.mod_revision)],
                    success=[pb.RequestOp(request_put=pb.PutRequest(
                                 key=src, value=b"%d" % (int(s.value) - amount))),
                             pb.RequestOp(request_put=pb.PutRequest(
                                 key=dst, value=b"%d" % (int(d.value) + amount)))])
                if kv.Txn(t, timeout=self.timeout).succeeded:
                    with self.lock:
                        self.transfers.append(time.time())
            except grpc.RpcError:
                self._failed()
            with self.lock:
                self.slowest = max(self.slowest, time.time() - began)

    def _read(self, i):
        kv = self.kvs[i % len(self.kvs)]
        while not self.stop_event.is_set():
            try:
                r = kv.Range(pb.RangeRequest(**ALL), timeout=self.timeout)
            except grpc.RpcError:
                self._failed()
                continue
            total = sum(int(x.value) for x in r.kvs)
            with self.lock:
                self.reads.append(r.header.revision)
                if len(r.kvs) != ACCOUNTS or total != ACCOUNTS * BALANCE:
                    self.violations.append((r.header.revision, total, len(r.kvs)))

    def _put(self, i):
        kv = self.kvs[i % len(self.kvs)]
        n = 0
        while not self.stop_event.is_set():
            key, value = self.put_prefix + b"%d/%d" % (i, n), b"v%d" % n
            n += 1
            try:
                rev = kv.Put(pb.PutRequest(key=key, value=value),
                             timeout=self.timeout).header.revision
                with self.lock:
                    self.acked_puts.append((key, value, rev))
            except grpc.RpcError:
                with self.lock:
                    self.unanswered_puts.append((key, value))
                self._failed()
