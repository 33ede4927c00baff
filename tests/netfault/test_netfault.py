"""The fault-injecting proxy (netfault.py) in front of a real strata-server,
driven by etcdctl: each fault is what a client sees, and heal undoes it."""
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "compat"))
from servers import StrataServer, etcdctl  # noqa: E402
from netfault import Link  # noqa: E402


class Faults(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = StrataServer().start()
        cls.link = Link("client->server", ("127.0.0.1", cls.server.port)).start()
        cls.via = "127.0.0.1:%d" % cls.link.port

    @classmethod
    def tearDownClass(cls):
        cls.link.stop()
        cls.server.stop()

    def setUp(self):
        self.link.heal()

    def get(self, key, **kw):
        return etcdctl(self.via, "--command-timeout", "2s", "get", key, "--print-value-only",
                       check=False, **kw)

    def test_a_healthy_link_forwards(self):
        etcdctl(self.via, "put", "k", "v")
        self.assertEqual(self.get("k")[0], "v\n")

    def test_delay_is_felt_both_ways(self):
        etcdctl(self.via, "put", "d", "1")
        self.link.delay(0.3)
        start = time.monotonic()
        self.assertEqual(self.get("d")[0], "1\n")
        self.assertGreaterEqual(time.monotonic() - start, 0.6)  # request and reply

    def test_cut_refuses_and_heal_restores(self):
        self.link.cut()
        out, err = self.get("k")
        self.assertEqual(out, "")
        self.assertTrue(err, "a cut link must fail the request")
        self.link.heal()
        etcdctl(self.via, "put", "k", "after")
        self.assertEqual(self.get("k")[0], "after\n")

    def test_blackhole_times_out_without_an_error_from_the_network(self):
        etcdctl(self.via, "put", "b", "1")
        self.link.blackhole()
        start = time.monotonic()
        out, err = self.get("b")
        self.assertEqual(out, "")
        self.assertIn("deadline", err.lower())  # waited its 2 s, nothing came back
        self.assertGreaterEqual(time.monotonic() - start, 1.9)

    def test_a_schedule_cuts_then_heals(self):
        etcdctl(self.via, "put", "s", "before")
        steps = self.link.run_schedule([(0.0, "cut"), (1.5, "heal")])
        time.sleep(0.2)
        out, err = self.get("s")  # during the cut
        self.assertEqual(out, "")
        self.assertTrue(err)
        steps.join(5)
        self.assertEqual(self.get("s")[0], "before\n")


if __name__ == "__main__":
    unittest.main()
