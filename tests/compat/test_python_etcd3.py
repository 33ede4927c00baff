"""Debian's python3-etcd3 (0.12, a client we did not write) against
strata-server: its own API for puts, gets, prefixes, transactions, watches,
leases, locks, compaction and status, with the answers etcd gives; and
its member calls against a sharded cluster with replicated shards."""
import json
import threading
import time
import unittest

import etcd3
import etcd3.exceptions
import grpc

from servers import StrataCluster, StrataServer, etcdctl, free_port


class PythonEtcd3(unittest.TestCase):
    def setUp(self):
        self.server = StrataServer().start()
        host, port = self.server.endpoint.split(":")
        self.client = etcd3.client(host=host, port=int(port), timeout=10)

    def tearDown(self):
        self.client.close()
        self.server.stop()

    def test_put_get_and_metadata(self):
        self.client.put("/app/a", "1")
        self.client.put("/app/a", "2")
        value, meta = self.client.get("/app/a")
        self.assertEqual(value, b"2")
        self.assertEqual(meta.version, 2)
        self.assertEqual(meta.create_revision, 2)
        self.assertEqual(meta.mod_revision, 3)
        self.client.put("/app/b", "x")
        self.client.put("/other", "y")
        keys = sorted(m.key for _, m in self.client.get_prefix("/app/"))
        self.assertEqual(keys, [b"/app/a", b"/app/b"])
        self.assertTrue(self.client.delete("/app/a"))
        self.assertEqual(self.client.get("/app/a"), (None, None))
        self.client.delete_prefix("/app/")
        self.assertEqual(list(self.client.get_prefix("/app/")), [])

    def test_transaction_on_mod_revision(self):
        self.client.put("k", "v1")
        _, meta = self.client.get("k")
        ok, _ = self.client.transaction(
            compare=[self.client.transactions.mod("k") == meta.mod_revision],
            success=[self.client.transactions.put("k", "v2")],
            failure=[self.client.transactions.get("k")])
        self.assertTrue(ok)
        ok, responses = self.client.transaction(
            compare=[self.client.transactions.mod("k") == meta.mod_revision],
            success=[self.client.transactions.put("k", "v3")],
            failure=[self.client.transactions.get("k")])
        self.assertFalse(ok)
        self.assertEqual(responses[0][0][0], b"v2")

    def test_watch_from_a_revision_and_live(self):
        self.client.put("w", "a")
        _, meta = self.client.get("w")
        events, cancel = self.client.watch("w", start_revision=meta.mod_revision)
        got = []

        def collect():
            for e in events:
                got.append((type(e).__name__, e.value))
                if len(got) == 3:
                    cancel()
                    return

        t = threading.Thread(target=collect, daemon=True)
        t.start()
        time.sleep(0.3)
        self.client.put("w", "b")
        self.client.delete("w")
        t.join(timeout=10)
        self.assertEqual(got, [("PutEvent", b"a"), ("PutEvent", b"b"), ("DeleteEvent", b"")])

    def test_watch_from_a_compacted_revision_is_an_error(self):
        for i in range(5):
            self.client.put("c", str(i))
        _, meta = self.client.get("c")
        self.client.compact(meta.mod_revision)
        events, cancel = self.client.watch("c", start_revision=2)
        with self.assertRaises(etcd3.exceptions.RevisionCompactedError) as ctx:
            for _ in events:
                pass
        self.assertEqual(ctx.exception.compacted_revision, meta.mod_revision)
        cancel()

    def test_lease_and_lock(self):
        lease = self.client.lease(ttl=30)
        self.client.put("leased", "v", lease=lease)
        self.assertEqual(lease.remaining_ttl > 0, True)
        self.assertEqual(lease.keys, [b"leased"])
        lease.refresh()
        lease.revoke()
        self.assertEqual(self.client.get("leased"), (None, None))
        # (A second locker waiting is tested with etcdctl: this library's
        # retry loop fails against Debian's tenacity before it asks the
        # server anything.)
        with self.client.lock("mylock", ttl=10) as lock:
            self.assertTrue(lock.is_acquired())
            self.assertEqual(self.client.get("/locks/mylock")[0], lock.uuid)
        self.assertEqual(self.client.get("/locks/mylock"), (None, None))

    def test_grpc_health_service(self):
        import grpc
        channel = grpc.insecure_channel(self.server.endpoint)
        check = channel.unary_unary("/grpc.health.v1.Health/Check",
                                    request_serializer=lambda b: b,
                                    response_deserializer=lambda b: b)
        # An empty HealthCheckRequest (the whole server); status 1 = SERVING.
        self.assertEqual(check(b"", timeout=5), b"\x08\x01")
        channel.close()

    def test_status_and_members(self):
        status = self.client.status()
        self.assertEqual(status.version, "3.4.23")
        self.assertEqual(len(list(self.client.members)), 1)


class ShardedClusterMembers(unittest.TestCase):
    """Its add_member, members and remove_member against a sharded cluster
    with replicated shards (docs/REPLICATION.md, "Members join and
    leave"), and the refusals as it maps them."""

    def setUp(self):
        self.cluster = StrataCluster.started_for(self, prefix="strata-etcd3-members-", n=3,
                                                 extra_args=["--replication-factor", "3"])
        self.endpoints = self.cluster.endpoints()

    def wait_members(self, endpoint, count, timeout=10):
        deadline = time.time() + timeout
        while True:
            out, _ = etcdctl(endpoint, "member", "list", "-w", "json")
            listed = json.loads(out).get("members", [])
            if len(listed) == count or time.time() > deadline:
                return listed
            time.sleep(0.1)

    def test_add_list_and_remove(self):
        client = etcd3.client(*self.endpoints[0].split(":"), timeout=10)
        self.addCleanup(client.close)
        url = "http://127.0.0.1:%d" % free_port()
        added = client.add_member([url])
        self.assertNotEqual(added.id, 0)
        self.assertEqual(list(added.peer_urls), [url])
        with self.assertRaises(etcd3.exceptions.PreconditionFailedError):
            client.add_member([url])
        other = etcd3.client(*self.endpoints[1].split(":"), timeout=10)
        self.addCleanup(other.close)
        deadline = time.time() + 10
        while added.id not in {m.id for m in other.members} and time.time() < deadline:
            time.sleep(0.1)
        self.assertIn(added.id, {m.id for m in other.members})
        # A first member holding replicas is refused, naming the drain.
        m1 = [m for m in other.members if m.name == "m1"][0]
        with self.assertRaises(etcd3.exceptions.PreconditionFailedError) as held:
            other.remove_member(m1.id)
        # (python3-etcd3 raises its own exception while handling gRPC's.)
        self.assertIn("shard drain m1", held.exception.__context__.details())
        # The one added, never started, holds nothing: removed.
        other.remove_member(added.id)
        for endpoint in self.endpoints:
            listed = self.wait_members(endpoint, 3)
            self.assertEqual(sorted(m["name"] for m in listed), ["m0", "m1", "m2"], endpoint)
        with self.assertRaises(grpc.RpcError) as gone:
            client.remove_member(added.id)
        self.assertEqual(gone.exception.code(), grpc.StatusCode.NOT_FOUND)
        self.assertEqual(gone.exception.details(), "etcdserver: member not found")


if __name__ == "__main__":
    unittest.main()
