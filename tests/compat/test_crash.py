"""kill -9 under concurrent clients: every acknowledged write is there
after the restart (at its revision), revisions keep rising, and a watch
resumed from the last revision it saw continues exactly, with nothing lost
or repeated. Rounds and writers: STRATA_CRASH_ROUNDS, STRATA_CRASH_WRITERS.
"""
import os
import random
import shutil
import tempfile
import threading
import time
import unittest

import grpc

from servers import RequestQueue, StrataServer, python_stubs

python_stubs()
import rpc_pb2 as pb  # noqa: E402
import rpc_pb2_grpc as rpc  # noqa: E402


class Writer(threading.Thread):
    """Writes its own keys in order; records what was acknowledged."""

    def __init__(self, endpoint, index, stop):
        super().__init__(daemon=True)
        self.kv = rpc.KVStub(grpc.insecure_channel(endpoint))
        self.index = index
        self.stop = stop
        self.acked = []  # (key, value, revision)
        self.counter = 0

    def run(self):
        rng = random.Random(self.index)
        while not self.stop.is_set():
            key = b"w%d/k%d" % (self.index, rng.randint(0, 9))
            value = b"%d-%d" % (self.index, self.counter)
            self.counter += 1
            try:
                if rng.random() < 0.5:
                    r = self.kv.Put(pb.PutRequest(key=key, value=value), timeout=5)
                else:
                    t = pb.TxnRequest(success=[pb.RequestOp(request_put=pb.PutRequest(
                        key=key, value=value))])
                    r = self.kv.Txn(t, timeout=5)
                self.acked.append((key, value, r.header.revision))
            except grpc.RpcError:
                return  # the server died: what was not acknowledged may or may not be there


def watch_all(endpoint, start, out, stop):
    """Collects every event from `start` on until the stream breaks."""
    channel = grpc.insecure_channel(endpoint)
    requests = RequestQueue(pb.WatchRequest(create_request=pb.WatchCreateRequest(
        key=b"\x00", range_end=b"\x00", start_revision=start)))
    try:
        for resp in rpc.WatchStub(channel).Watch(iter(requests)):
            for e in resp.events:
                out.append((e.kv.key, e.kv.value, e.kv.mod_revision))
            if stop.is_set():
                break
    except grpc.RpcError:
        pass
    requests.close()
    channel.close()


class CrashTest(unittest.TestCase):
    def test_kill_nine_under_load(self):
        rounds = int(os.environ.get("STRATA_CRASH_ROUNDS", "4"))
        writers = int(os.environ.get("STRATA_CRASH_WRITERS", "4"))
        data = tempfile.mkdtemp(prefix="strata-crash-")
        self.addCleanup(shutil.rmtree, data, True)
        rng = random.Random(7)
        acked = []
        events = []
        last_revision = 1
        for round_ in range(rounds):
            server = StrataServer(data_dir=data, extra_args=["--sync", "batch"]).start()
            self.addCleanup(server.kill)
            kv = rpc.KVStub(grpc.insecure_channel(server.endpoint))
            # After a restart: everything acknowledged so far is there.
            self.check_acknowledged(kv, acked)
            current = kv.Range(pb.RangeRequest(key=b"x")).header.revision
            self.assertGreaterEqual(current, last_revision, "revisions went back")
            # The watch resumes where the last one stopped.
            watch_stop = threading.Event()
            resumed_from = events[-1][2] + 1 if events else 1
            watcher = threading.Thread(target=watch_all,
                                       args=(server.endpoint, resumed_from, events, watch_stop),
                                       daemon=True)
            watcher.start()
            stop = threading.Event()
            threads = [Writer(server.endpoint, round_ * 100 + i, stop) for i in range(writers)]
            for t in threads:
                t.start()
            time.sleep(rng.uniform(0.5, 1.5))
            server.kill()
            stop.set()
            watch_stop.set()
            for t in threads:
                t.join(timeout=10)
                acked.extend(t.acked)
            watcher.join(timeout=10)
            if acked:
                last_revision = max(r for _, _, r in acked)
            self.assertTrue(all(len(t.acked) > 0 for t in threads), "a writer got nothing done")
        server = StrataServer(data_dir=data).start()
        self.addCleanup(server.stop)
        self.assertIn("recovery: reading", server.log(), "recovery says what it replays")
        kv = rpc.KVStub(grpc.insecure_channel(server.endpoint))
        self.check_acknowledged(kv, acked)
        # Finish the watch, then check it against the writes.
        watch_stop = threading.Event()
        kv.Put(pb.PutRequest(key=b"zz-end", value=b"end"))
        end_revision = kv.Range(pb.RangeRequest(key=b"zz-end")).header.revision
        resumed_from = events[-1][2] + 1 if events else 1
        done = threading.Event()

        def final_watch():
            watch_all(server.endpoint, resumed_from, events, done)

        watcher = threading.Thread(target=final_watch, daemon=True)
        watcher.start()
        deadline = time.time() + 20
        while (not events or events[-1][2] < end_revision) and time.time() < deadline:
            time.sleep(0.05)
        done.set()
        revisions = [r for _, _, r in events]
        self.assertEqual(revisions, sorted(revisions), "events out of order")
        self.assertEqual(len(set((k, r) for k, _, r in events)), len(events), "an event twice")
        # Every revision from 2 to the end has its event: nothing lost.
        self.assertEqual(sorted(set(revisions)), list(range(2, end_revision + 1)))
        seen = {(k, v, r) for k, v, r in events}
        for write in acked:
            self.assertIn(write, seen, "an acknowledged write has no event")
        print("crash test: %d kills, %d acknowledged writes, %d events watched across restarts"
              % (rounds, len(acked), len(events)))

    def check_acknowledged(self, kv, acked):
        latest = {}
        for key, value, revision in acked:
            if revision > latest.get(key, (0, b""))[0]:
                latest[key] = (revision, value)
        for key, value, revision in acked:
            r = kv.Range(pb.RangeRequest(key=key, revision=revision))
            self.assertEqual(len(r.kvs), 1, "lost: %r at %d" % (key, revision))
            self.assertEqual(r.kvs[0].value, value)
            self.assertEqual(r.kvs[0].mod_revision, revision)
        for key, (revision, value) in latest.items():
            r = kv.Range(pb.RangeRequest(key=key))
            self.assertGreaterEqual(r.kvs[0].mod_revision, revision)


if __name__ == "__main__":
    unittest.main()
