"""The operator's HTTP port (--listen-metrics-urls): /metrics parsed by
Debian's Prometheus client library, its figures checked against what
etcdctl and strata-ctl see, etcd's metric names checked against the
reference etcd 3.4.23's own /metrics, and /health, /livez, /readyz as etcd
answers them."""
import json
import os
import re
import subprocess
import tempfile
import time
import unittest
import urllib.error
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from servers import EtcdServer, StrataServer, etcdctl, free_port, strata_ctl_binary


def get(port, path):
    """(status, body) of GET http://127.0.0.1:port/path."""
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=20) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def families(port):
    status, text = get(port, "/metrics")
    assert status == 200, status
    return {f.name: f for f in text_string_to_metric_families(text)}


def value(fams, name, **labels):
    """The sample of family `name` (its base name) whose labels include `labels`."""
    for f in fams.values():
        for s in f.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
    raise KeyError("%s%s not exported" % (name, labels))


def metrics_port(server):
    m = re.search(r"\(metrics port (\d+)\)", server.log())
    assert m, server.log()
    return int(m.group(1))


class Metrics(unittest.TestCase):
    def start(self, *extra, durable=True):
        d = tempfile.mkdtemp(prefix="strata-metrics-") if durable else None
        s = StrataServer(data_dir=d, extra_args=["--listen-metrics-urls",
                                                 "http://127.0.0.1:0"] + list(extra))
        self.addCleanup(s.stop)
        s.start()
        deadline = time.time() + 10
        while "metrics port" not in s.log() and time.time() < deadline:
            time.sleep(0.02)
        return s, metrics_port(s)

    def test_figures_match_what_clients_see(self):
        s, port = self.start()
        for i in range(5):
            etcdctl(s.endpoint, "put", "k%d" % i, "v")
        etcdctl(s.endpoint, "del", "k0")
        etcdctl(s.endpoint, "get", "k", "--prefix")
        status = json.loads(etcdctl(s.endpoint, "endpoint", "status", "-w", "json")[0])[0]
        fams = families(port)
        self.assertEqual(value(fams, "etcd_debugging_mvcc_current_revision"),
                         status["Status"]["header"]["revision"])
        self.assertEqual(value(fams, "etcd_debugging_mvcc_keys_total"), 4)
        self.assertEqual(value(fams, "etcd_server_has_leader"), 1)
        self.assertEqual(value(fams, "grpc_server_handled_total", grpc_method="Put",
                               grpc_service="etcdserverpb.KV", grpc_code="OK"), 5)
        self.assertEqual(value(fams, "etcd_mvcc_put_total"), 5)
        self.assertEqual(value(fams, "etcd_mvcc_delete_total"), 1)
        self.assertEqual(fams["grpc_server_handling_seconds"].type, "histogram")
        # Durable: every write waited for an fsync, and the histograms say so.
        syncs = value(fams, "strata_wal_syncs_total")
        self.assertGreaterEqual(syncs, 6)
        self.assertEqual(value(fams, "etcd_disk_wal_fsync_duration_seconds_count"), syncs)
        self.assertEqual(value(fams, "strata_wal_group_commit_records_count"), syncs)
        self.assertEqual(value(fams, "strata_shard_resolved_revision", shard="0"),
                         status["Status"]["header"]["revision"])
        # A failed request is counted under its code.
        etcdctl(s.endpoint, "get", "k1", "--rev", "100", check=False)
        self.assertEqual(value(families(port), "grpc_server_handled_total", grpc_method="Range",
                               grpc_code="OutOfRange"), 1)

    def test_every_strata_metric_is_documented(self):
        _, port = self.start()
        with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "docs",
                               "METRICS.md")) as f:
            doc = f.read()
        ours = [name for name in families(port) if name.startswith("strata_")]
        self.assertGreater(len(ours), 20)
        for name in ours:
            self.assertIn("`" + name, doc, name + " is not in docs/METRICS.md")

    def test_what_holds_gc_back_is_named(self):
        s, port = self.start(durable=False)
        etcdctl(s.endpoint, "put", "a", "1")
        txn = subprocess.Popen([strata_ctl_binary(), "--endpoints", s.endpoint, "txn"],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.addCleanup(txn.kill)
        txn.stdin.write("get a\n")
        txn.stdin.flush()
        begun = txn.stdout.readline()
        self.assertTrue(begun.startswith("begun "), begun)
        txn_id = re.search(r"\d+", begun).group(0)
        for i in range(3):
            etcdctl(s.endpoint, "put", "a", str(i))
        fams = families(port)
        self.assertEqual(value(fams, "strata_gc_held_by_revision", kind="transaction", id=txn_id),
                         2, "the open transaction reads at revision 2")
        self.assertEqual(value(fams, "strata_txn_active"), 1)
        txn.stdin.write("abort\n")
        txn.stdin.close()
        txn.wait(timeout=10)
        fams = families(port)
        with self.assertRaises(KeyError):
            value(fams, "strata_gc_held_by_revision", kind="transaction")

    def test_etcd_names_are_etcds(self):
        """Every etcd_* and grpc_* family strata exports, the reference etcd
        exports too, with the same type."""
        s, port = self.start(durable=True)
        etcdctl(s.endpoint, "put", "a", "1")
        ours = families(port)
        ref_port = free_port()
        # --metrics extensive: etcd's grpc_server_handling_seconds too.
        ref = EtcdServer(extra_args=["--listen-metrics-urls", "http://127.0.0.1:%d" % ref_port,
                                     "--metrics", "extensive"])
        self.addCleanup(ref.stop)
        ref.start()
        etcdctl(ref.endpoint, "put", "a", "1")
        theirs = families(ref_port)
        for name, fam in ours.items():
            if not name.startswith(("etcd_", "grpc_", "process_")):
                self.assertTrue(name.startswith("strata_"), name)
                continue
            with self.subTest(name):
                self.assertTrue(name in theirs, "etcd has no %s" % name)
                self.assertEqual(fam.type, theirs[name].type)

    def test_health_livez_readyz_and_an_alarm(self):
        s, port = self.start("--quota-backend-bytes", "60000", durable=False)
        self.assertEqual(get(port, "/health"), (200, '{"health":"true"}'))
        self.assertEqual(get(port, "/livez"), (200, "ok\n"))
        self.assertEqual(get(port, "/readyz"), (200, "ok\n"))
        self.assertEqual(get(port, "/nothing-here")[0], 404)
        for _ in range(100):
            _, err = etcdctl(s.endpoint, "put", "big", "b" * 4000, check=False)
            if err:
                break
        self.assertIn("database space exceeded", err)
        self.assertEqual(get(port, "/health"), (503, '{"health":"false"}'))
        self.assertEqual(get(port, "/health"), (503, '{"health":"false"}'))
        status, body = get(port, "/readyz")
        self.assertEqual(status, 503)
        self.assertIn("NOSPACE", body)
        self.assertEqual(get(port, "/livez"), (200, "ok\n"), "alive all the same")
        self.assertEqual(s.log().count("health: unhealthy"), 1, "logged once, not per probe")
        fams = families(port)
        # A counter without _total, as etcd names it (the parser adds it).
        self.assertEqual(value(fams, "etcd_server_health_failures_total"), 3)

    def test_a_flood_of_idle_connections_ends_without_harm(self):
        """Connections that send nothing hold the port's few workers for a
        read timeout each and the rest wait in the kernel; once they go, a
        scrape is served at once and the server is as it was."""
        import socket
        s, port = self.start(durable=False)
        idle = []
        for _ in range(200):
            c = socket.socket()
            c.setblocking(False)
            c.connect_ex(("127.0.0.1", port))  # no wait: the kernel queues it or not
            idle.append(c)
        time.sleep(1)
        for c in idle:
            c.close()
        start = time.time()
        self.assertEqual(get(port, "/livez"), (200, "ok\n"))
        # A server that kept each closed connection for its read timeout
        # would take 200 x 2 s / 4 workers = 100 s here. An honest one can
        # still take seconds: while the kernel's accept queue drains, the
        # scrape's SYN is dropped and TCP sends it again after 1, 3 and 7 s
        # (5.0 s seen under the ASan stage's load).
        self.assertLess(time.time() - start, 10, "the port stayed blocked after the flood")
        self.assertEqual(get(port, "/health"), (200, '{"health":"true"}'))
        etcdctl(s.endpoint, "put", "after", "flood")

    def test_a_watch_client_that_never_reads_is_held_back_and_cleaned_up(self):
        """Each watch create past the stream's 10,000 watchers is answered
        with a cancel that is always queued; a client that sends creates and
        never reads is held back by flow control once 4,096 replies wait,
        and when it goes its watchers go too."""
        import grpc
        from servers import RequestQueue, python_stubs
        python_stubs()
        import rpc_pb2 as pb
        import rpc_pb2_grpc as rpc
        s, port = self.start(durable=False)
        channel = grpc.insecure_channel(s.endpoint)
        self.addCleanup(channel.close)
        sent = 200000
        requests = RequestQueue()
        for _ in range(sent):
            requests.put(pb.WatchRequest(create_request=pb.WatchCreateRequest(key=b"k")))
        call = rpc.WatchStub(channel).Watch(iter(requests))  # never read
        deadline = time.time() + 30
        received = 0
        while time.time() < deadline:
            time.sleep(0.5)
            now = value(families(port), "grpc_server_msg_received_total",
                        grpc_method="Watch", grpc_service="etcdserverpb.Watch")
            if now == received and now > 0:
                break  # the server stopped taking requests
            received = now
        self.assertGreaterEqual(received, 10000)
        self.assertLess(received, sent / 2, "the server went on reading a client that never reads")
        self.assertEqual(value(families(port), "etcd_debugging_mvcc_watcher_total"), 10000)
        call.cancel()
        requests.close()
        for _ in range(100):
            if value(families(port), "etcd_debugging_mvcc_watcher_total") == 0:
                break
            time.sleep(0.1)
        self.assertEqual(value(families(port), "etcd_debugging_mvcc_watcher_total"), 0,
                         "the stream's watchers outlived it")
        etcdctl(s.endpoint, "put", "k", "after")

    def test_a_port_in_use_stops_the_start_with_a_sentence(self):
        import socket
        taken = socket.socket()
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        self.addCleanup(taken.close)
        from servers import strata_binary
        p = subprocess.run([strata_binary(), "--in-memory", "--listen-client-urls",
                            "http://127.0.0.1:0", "--listen-metrics-urls",
                            "http://127.0.0.1:%d" % taken.getsockname()[1]],
                           capture_output=True, text=True, timeout=30)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("cannot listen on 127.0.0.1:%d" % taken.getsockname()[1], p.stderr)


if __name__ == "__main__":
    unittest.main()
