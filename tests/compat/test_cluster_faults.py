"""Three strata-servers as a cluster, through faults a process sees: a
member killed -9 and restarted under a bank workload (every read of all
accounts sums to the total, every acknowledged write is there after, and
the history of Txn clients, some through etcd's own Go client given every
member's endpoint, is strictly serializable in revision order),
/health and /metrics as a member goes and comes back, a member whose
write-ahead log fails (it answers so at once and says so on /health, it
does not hang), and members that
speak mutual TLS (the peer port refuses plain text and strangers). In the
plain build only (tests/compat/CMakeLists.txt): they are mostly waiting,
and the server paths they run are under ASan in test_cluster.py."""
import os
import shutil
import tempfile
import time
import unittest
import urllib.error
import urllib.request

import grpc

from kill_under_load import KillUnderLoad
from servers import StrataCluster, etcdctl


class ClusterFaults(unittest.TestCase):
    def setUp(self):
        self.cluster = StrataCluster.started_for(self)

    def test_bank_with_a_member_killed_and_restarted(self):
        KillUnderLoad(self.cluster, lambda: 2, down_s=1.0).check(self)

    def test_health_follows_the_shards(self):
        def get(port, path):
            try:
                with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path),
                                            timeout=10) as r:
                    return r.status, r.read().decode()
            except urllib.error.HTTPError as e:
                return e.code, e.read().decode()

        port = self.cluster.metrics_ports[0]
        self.assertEqual(get(port, "/health"), (200, '{"health":"true"}'))
        status, metrics = get(port, "/metrics")
        self.assertEqual(status, 200)
        self.assertIn("strata_cluster_members 3", metrics)
        self.assertIn("strata_cluster_member_loop_responsive 1", metrics)
        victim = self.cluster.members[2]
        victim.kill()
        status, body = get(port, "/readyz")
        self.assertEqual(status, 503)
        self.assertIn("a read of every shard did not answer", body)
        victim.start()
        deadline = time.time() + 10
        while get(port, "/health")[0] != 200 and time.time() < deadline:
            time.sleep(0.2)
        self.assertEqual(get(port, "/health"), (200, '{"health":"true"}'))


class LogFailure(unittest.TestCase):
    """m1's log fails (fsync and writes of its wal- files fail once a file
    exists: tests/faults/fault_shim.c). What it holds for durability can
    never be covered: its clients get "storage failed" at once instead of
    waiting forever, and its /health names the log."""

    def test_a_member_whose_log_fails_answers_so(self):
        root = tempfile.mkdtemp(prefix="strata-cluster-")
        self.addCleanup(shutil.rmtree, root, ignore_errors=True)
        arm = os.path.join(root, "arm")
        env = {"LD_PRELOAD": os.environ["STRATA_FAULT_SHIM"], "STRATA_FAULT_PATH": "wal-",
               "STRATA_FAULT_OP": "fdatasync,fsync,pwrite,write", "STRATA_FAULT_ARMED_IF": arm}
        cluster = StrataCluster(root, member_env={1: env}).start()
        self.addCleanup(lambda: [m.kill() for m in cluster.members])
        endpoint = cluster.endpoints()[1]
        etcdctl(endpoint, "put", "before", "1")
        open(arm, "w").close()
        failed = 0
        for i in range(12):
            began = time.time()
            _, err = etcdctl(endpoint, "put", "k%d" % i, "v", check=False)
            self.assertLess(time.time() - began, 3, "a put on the failed member waited")
            failed += "storage failed" in err
        self.assertGreater(failed, 0, "no put met the failed log")
        try:
            urllib.request.urlopen("http://127.0.0.1:%d/readyz" % cluster.metrics_ports[1],
                                   timeout=10)
            self.fail("/readyz answered 200 on a member whose log failed")
        except urllib.error.HTTPError as e:
            self.assertEqual(e.code, 503)
            self.assertIn("the write-ahead log failed", e.read().decode())


class PeerTls(unittest.TestCase):
    """Members that speak TLS to each other (https:// peer URLs, etcd's
    --peer-* flags) with client certificates required: they serve as one
    cluster, and the peer port refuses plain text and strangers."""

    def test_members_over_mutual_tls(self):
        from test_tls import Certificates
        certs = Certificates()
        self.addCleanup(certs.cleanup)
        cluster = StrataCluster.started_for(
            self, "strata-peer-tls-", peer_scheme="https", extra_args=[
                "--peer-cert-file", certs.path("server.pem"),
                "--peer-key-file", certs.path("server.key"),
                "--peer-trusted-ca-file", certs.path("ca.pem"), "--peer-client-cert-auth"])
        a, b, c = cluster.endpoints()
        etcdctl(a, "put", "k", "over-tls")
        out, _ = etcdctl(c, "txn", stdin="\nput t1 x\nput t2 x\nput t3 x\n\n\n")
        self.assertTrue(out.startswith("SUCCESS"), out)
        out, _ = etcdctl(b, "get", "", "--prefix", "--keys-only")
        self.assertEqual(out.split(), ["k", "t1", "t2", "t3"])

        peer = "127.0.0.1:%d" % cluster.peer_ports[0]

        def connects(credentials):
            channel = (grpc.secure_channel(peer, credentials) if credentials
                       else grpc.insecure_channel(peer))
            try:
                grpc.channel_ready_future(channel).result(timeout=2)
                return True
            except grpc.FutureTimeoutError:
                return False
            finally:
                channel.close()

        def read(name):
            with open(certs.path(name), "rb") as f:
                return f.read()

        self.assertTrue(connects(grpc.ssl_channel_credentials(
            read("ca.pem"), read("server.key"), read("server.pem"))), "a member connects")
        self.assertFalse(connects(None), "plain text is refused")
        self.assertFalse(connects(grpc.ssl_channel_credentials(
            read("ca.pem"), read("stranger.key"), read("stranger.pem"))),
            "a certificate from another CA is refused")


    def test_members_over_auto_tls(self):
        """--peer-auto-tls, as etcd's: each member makes its own certificate
        and checks nobody's; the peer port still refuses plain text."""
        cluster = StrataCluster.started_for(self, "strata-peer-auto-tls-", peer_scheme="https",
                                            extra_args=["--peer-auto-tls"])
        a, b, c = cluster.endpoints()
        out, _ = etcdctl(a, "txn", stdin="\nput t1 x\nput t2 x\nput t3 x\nput t4 x\n\n\n")
        self.assertTrue(out.startswith("SUCCESS"), out)
        out, _ = etcdctl(c, "get", "t", "--prefix", "--keys-only")
        self.assertEqual(out.split(), ["t1", "t2", "t3", "t4"])
        channel = grpc.insecure_channel("127.0.0.1:%d" % cluster.peer_ports[1])
        with self.assertRaises(grpc.FutureTimeoutError, msg="plain text is refused"):
            grpc.channel_ready_future(channel).result(timeout=2)
        channel.close()
        for m in cluster.members:
            self.assertNotIn("No match found for server name", m.log())


if __name__ == "__main__":
    unittest.main()
