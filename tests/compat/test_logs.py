"""strata-server's log: --log-format json gives one JSON object a line
(level, ts, component, msg), --log-level hides what is below it, and a flood
of refused requests (a limit reached) is one line a minute that says what to
do, not a line per request."""
import json
import subprocess
import time
import unittest

import grpc

from servers import RequestQueue, StrataServer, etcdctl, python_stubs, strata_binary

python_stubs()
import rpc_pb2 as pb  # noqa: E402  (generated at build time)
import rpc_pb2_grpc as rpc  # noqa: E402


class Logs(unittest.TestCase):
    def test_json_lines_and_a_throttled_refusal_with_advice(self):
        s = StrataServer(extra_args=["--log-format", "json", "--max-request-bytes", "2048"])
        s.start()
        try:
            for _ in range(20):
                _, err = etcdctl(s.endpoint, "put", "k", "v" * 4096, check=False)
                self.assertIn("request is too large", err)
            self.assertEqual(etcdctl(s.endpoint, "put", "k", "small")[0], "OK\n")
        finally:
            s.stop()
        lines = [json.loads(l) for l in s.lines]  # every line is JSON
        for l in lines:
            self.assertEqual(set(l), {"level", "ts", "component", "msg"}, l)
            self.assertRegex(l["ts"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        msgs = [l["msg"] for l in lines]
        self.assertTrue(any("ready to serve client requests" in m for m in msgs),
                        "etcd's start-up line, which tools wait for, is in the JSON too")
        refused = [l for l in lines if "refused etcdserverpb.KV/Put" in l["msg"]]
        self.assertEqual(len(refused), 1, "one line for the flood, not one per request")
        self.assertEqual(refused[0]["level"], "warn")
        self.assertIn("--max-request-bytes (2048 bytes)", refused[0]["msg"])

    def test_watch_refusals_are_logged_once_with_advice(self):
        s = StrataServer().start()
        try:
            q = RequestQueue()
            stream = rpc.WatchStub(grpc.insecure_channel(s.endpoint)).Watch(iter(q))
            for i in range(10010):  # 10,000 a stream, then refused
                q.put(pb.WatchRequest(create_request=pb.WatchCreateRequest(key=b"k%d" % i)))
            refused = 0
            for _ in range(10010):
                r = next(stream)
                refused += r.canceled
            q.close()
            stream.cancel()
        finally:
            s.stop()
        self.assertEqual(refused, 10)
        warned = [l for l in s.lines if "refused a watch" in l]
        self.assertEqual(len(warned), 1, warned)
        self.assertIn("watch a prefix or range", warned[0])

    def test_tells_systemd_when_ready_and_when_stopping(self):
        import os
        import signal
        import socket
        import tempfile
        path = os.path.join(tempfile.mkdtemp(prefix="strata-notify-"), "notify")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(path)
        sock.settimeout(20)
        p = subprocess.Popen([strata_binary(), "--in-memory", "--listen-client-urls",
                              "http://127.0.0.1:0"], stderr=subprocess.PIPE, text=True,
                             env=dict(os.environ, NOTIFY_SOCKET=path))
        try:
            self.assertEqual(sock.recv(64), b"READY=1")
            p.send_signal(signal.SIGTERM)
            self.assertEqual(sock.recv(64), b"STOPPING=1")
            _, err = p.communicate(timeout=20)
        finally:
            if p.poll() is None:
                p.kill()
            sock.close()
        self.assertEqual(p.returncode, 0, err)
        # READY comes after the server says it serves (the port is bound).
        self.assertIn("ready to serve client requests", err)

    def test_log_level_hides_info(self):
        # Nothing at info is written, so the harness (which reads the port
        # from a line) is not used here.
        p = subprocess.Popen([strata_binary(), "--in-memory", "--listen-client-urls",
                              "http://127.0.0.1:0", "--log-level", "warn"],
                             stderr=subprocess.PIPE, text=True)
        time.sleep(1)
        p.terminate()
        _, err = p.communicate(timeout=15)
        self.assertEqual(p.returncode, 0)
        self.assertEqual(err, "", "info lines were written at --log-level warn")

    def test_cluster_flags_it_cannot_serve_are_refused_with_a_sentence(self):
        three = "a=http://127.0.0.1:2380,b=http://127.0.0.1:2390,c=http://127.0.0.1:2400"
        cases = [
            (["--name", "z", "--initial-cluster", three],
             "--initial-cluster does not name this member (--name z)"),
            (["--name", "a", "--initial-cluster", three + ",b=http://127.0.0.1:2410"],
             "--initial-cluster names member b twice"),
            (["--name", "a", "--initial-cluster", three, "--initial-cluster-state", "existing",
              "--replication-factor", "1"],
             "a sharded cluster takes a new member only with replicated shards"),
            (["--name", "a", "--initial-cluster", three.replace("http://127.0.0.1:2390",
                                                                "https://127.0.0.1:2390")],
             "https:// peer URLs need --peer-cert-file"),
            (["--name", "a", "--initial-cluster", "a=http://127.0.0.1:2380,b"],
             "--initial-cluster: 'b' is not name=peer-URL"),
        ]
        for flags, sentence in cases:
            p = subprocess.run([strata_binary(), "--in-memory"] + flags, capture_output=True,
                               text=True, timeout=30)
            self.assertEqual(p.returncode, 2, flags)
            self.assertIn(sentence, p.stderr, flags)

    def test_bad_log_flags_are_refused(self):
        for flags in (["--log-level", "loud"], ["--log-format", "xml"]):
            p = subprocess.run([strata_binary(), "--in-memory"] + flags, capture_output=True,
                               text=True, timeout=30)
            self.assertNotEqual(p.returncode, 0)


if __name__ == "__main__":
    unittest.main()
