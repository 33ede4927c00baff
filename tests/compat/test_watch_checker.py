"""A watch checker: concurrent writers (puts, deletes, multi-key Txns),
compaction, and watchers that disconnect and resume from the revision after
the last they saw. Checked against a watcher that never disconnects:
 - no event lost, duplicated or reordered (a resumed watcher's events are
   exactly the full watcher's for its range, except where it was told the
   revisions were compacted);
 - atomic: a revision's events are never split across responses;
 - bookmarkable: a progress response promises no later event at or below
   its revision.
"""
import os
import queue
import random
import threading
import time
import unittest

import grpc

from servers import RequestQueue, StrataServer, python_stubs

python_stubs()
import rpc_pb2 as pb  # noqa: E402
import rpc_pb2_grpc as rpc  # noqa: E402

PREFIXES = [b"a/", b"b/", b"c/"]


def prefix_end(p):
    return p[:-1] + bytes([p[-1] + 1])


class Stream:
    """One Watch stream with one watcher; responses land in a queue."""

    def __init__(self, channel, create):
        self.requests = RequestQueue(pb.WatchRequest(create_request=create))
        self.responses = queue.Queue()
        self.call = rpc.WatchStub(channel).Watch(iter(self.requests))
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        try:
            for r in self.call:
                self.responses.put(r)
        except grpc.RpcError:
            pass
        self.responses.put(None)

    def progress(self):
        self.requests.put(pb.WatchRequest(progress_request=pb.WatchProgressRequest()))

    def close(self):
        self.requests.close()
        self.call.cancel()


class WatchChecker(unittest.TestCase):
    def setUp(self):
        self.server = StrataServer().start()
        self.channel = grpc.insecure_channel(self.server.endpoint)
        self.kv = rpc.KVStub(self.channel)

    def tearDown(self):
        self.channel.close()
        self.server.stop()

    def check_responses(self, responses, label):
        """Atomic and bookmarkable, over one stream's responses."""
        seen_revisions = set()
        progress = 0
        for r in responses:
            revs = {e.kv.mod_revision for e in r.events}
            for rev in revs:
                self.assertNotIn(rev, seen_revisions, "%s: revision %d split" % (label, rev))
                self.assertGreater(rev, progress,
                                   "%s: event %d after progress %d" % (label, rev, progress))
            seen_revisions |= revs
            if not r.events and not r.created and not r.canceled:
                progress = max(progress, r.header.revision)

    def test_resuming_watchers_see_exactly_what_happened(self):
        seconds = float(os.environ.get("STRATA_WATCH_SECONDS", "4"))
        stop = threading.Event()
        full = Stream(self.channel, pb.WatchCreateRequest(key=b"\x00", range_end=b"\x00",
                                                          start_revision=1, prev_kv=True))

        def writer(seed):
            rng = random.Random(seed)
            kv = rpc.KVStub(self.channel)
            while not stop.is_set():
                p = rng.choice(PREFIXES)
                c = rng.random()
                if c < 0.6:
                    kv.Put(pb.PutRequest(key=p + b"%d" % rng.randint(0, 5), value=b"%d" % seed))
                elif c < 0.8:
                    kv.DeleteRange(pb.DeleteRangeRequest(key=p + b"%d" % rng.randint(0, 5)))
                else:
                    ops = [pb.RequestOp(request_put=pb.PutRequest(key=q + b"t", value=b"x"))
                           for q in PREFIXES]
                    kv.Txn(pb.TxnRequest(success=ops))

        def compactor():
            while not stop.is_set():
                time.sleep(0.7)
                rev = self.kv.Range(pb.RangeRequest(key=b"x")).header.revision
                try:
                    self.kv.Compact(pb.CompactionRequest(revision=max(1, rev - 50)))
                except grpc.RpcError:
                    pass

        results = {}

        def resuming(prefix, seed):
            rng = random.Random(seed)
            events, responses, gaps = [], [], []
            next_rev = 1
            deadline = time.time() + seconds
            while time.time() < deadline:
                s = Stream(self.channel, pb.WatchCreateRequest(
                    key=prefix, range_end=prefix_end(prefix), start_revision=next_rev,
                    prev_kv=True))
                until = time.time() + rng.uniform(0.1, 0.6)
                while time.time() < until:
                    if rng.random() < 0.2:
                        s.progress()
                    try:
                        r = s.responses.get(timeout=0.05)
                    except queue.Empty:
                        continue
                    if r is None:
                        break
                    responses.append(r)
                    if r.canceled and r.compact_revision:
                        gaps.append((next_rev, r.compact_revision))
                        next_rev = r.compact_revision
                        break
                    for e in r.events:
                        events.append(e)
                        next_rev = e.kv.mod_revision + 1
                s.close()
            results[prefix] = (events, responses, gaps)

        threads = [threading.Thread(target=writer, args=(i,)) for i in range(3)]
        threads.append(threading.Thread(target=compactor))
        watchers = [threading.Thread(target=resuming, args=(p, i)) for i, p in
                    enumerate(PREFIXES)]
        for t in threads + watchers:
            t.start()
        for t in watchers:
            t.join()
        stop.set()
        for t in threads:
            t.join()
        end = self.kv.Range(pb.RangeRequest(key=b"x")).header.revision
        full_events, full_responses = [], []
        while not full_events or full_events[-1].kv.mod_revision < end:
            r = full.responses.get(timeout=10)
            self.assertIsNotNone(r)
            full_responses.append(r)
            full_events.extend(r.events)
        full.close()
        self.check_responses(full_responses, "full")
        revs = [e.kv.mod_revision for e in full_events]
        self.assertEqual(revs, sorted(revs))
        self.assertEqual(sorted(set(revs)), list(range(2, end + 1)),
                         "the never-disconnected watcher missed revisions")
        total = 0
        for prefix, (events, responses, gaps) in results.items():
            self.check_responses(responses, prefix.decode())
            last = events[-1].kv.mod_revision if events else 0

            def covered(rev):
                return not any(lo <= rev < hi for lo, hi in gaps)

            # At a compaction revision itself the previous version is gone
            # (compaction kept the newer one), so prev_kv cannot be there.
            resumed_at = {hi for _, hi in gaps}

            def row(e):
                prev = None if e.kv.mod_revision in resumed_at else e.prev_kv.value
                return (e.kv.key, e.kv.mod_revision, e.kv.value, prev, e.type)

            want = [row(e) for e in full_events if e.kv.key.startswith(prefix) and
                    e.kv.mod_revision <= last and covered(e.kv.mod_revision)]
            got = [row(e) for e in events]
            self.assertEqual(got, want, "watcher %r differs from the full watch" % prefix)
            total += len(got)
        self.assertGreater(total, 100, "too little happened to check anything")
        print("watch checker: %d revisions, %d resumed-watcher events, compaction gaps %s"
              % (end, total, {p.decode(): len(g) for p, (_, _, g) in results.items()}))


if __name__ == "__main__":
    unittest.main()
