"""strata-ctl against strata-server: the strata.v1 service (interactive
transactions, history, changes, stats) next to etcd's API, which etcdctl
drives. Two interactive transactions race through real processes."""
import json
import os
import subprocess
import unittest

from servers import StrataServer, etcdctl, free_port, strata_ctl_binary


class StrataCtl(unittest.TestCase):
    def setUp(self):
        self.server = StrataServer().start()

    def tearDown(self):
        self.server.stop()

    def ctl(self, *args, stdin=None, check=True):
        p = subprocess.run([strata_ctl_binary(), "--endpoints", self.server.endpoint] + list(args),
                           input=stdin, capture_output=True, text=True, timeout=30)
        if check:
            self.assertEqual(p.returncode, 0, p.stderr + p.stdout)
        return p

    def test_history_changes_and_get_at_a_revision(self):
        for args in [("put", "a", "1"), ("put", "a", "2"), ("del", "a"), ("put", "a", "3"),
                     ("put", "b", "x")]:
            etcdctl(self.server.endpoint, *args)
        self.assertEqual(self.ctl("history", "a").stdout,
                         "2\tPUT\t1\n3\tPUT\t2\n4\tDELETE\n5\tPUT\t3\n")
        h = json.loads(self.ctl("history", "a", "-w", "json").stdout)
        self.assertEqual([v["revision"] for v in h["versions"]], [2, 3, 4, 5])
        self.assertEqual(h["versions"][3]["version"], 1, "the version restarts after a delete")
        self.assertEqual(self.ctl("get", "a", "--rev", "3").stdout, "a\n2\n")
        self.assertEqual(self.ctl("changes", "--since", "3").stdout,
                         "4\ta\tDELETE\n5\ta\tPUT\t3\n6\tb\tPUT\tx\n")
        self.assertEqual(self.ctl("changes", "--since", "1", "--prefix", "b").stdout,
                         "6\tb\tPUT\tx\n")
        etcdctl(self.server.endpoint, "compact", "4")
        p = self.ctl("history", "a", "--from", "2", check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("required revision has been compacted", p.stderr)
        self.assertEqual(self.ctl("history", "a").stdout, "5\tPUT\t3\n")

    def test_interactive_transaction_reads_its_writes_and_commits_one_revision(self):
        etcdctl(self.server.endpoint, "put", "a", "1")
        out = self.ctl("txn", stdin="get a\nput a 10\nget a\nput c hello world\ncommit\n").stdout
        lines = out.splitlines()
        self.assertTrue(lines[0].startswith("begun "))
        self.assertEqual(lines[1:], ["a", "1", "OK", "a", "10", "OK", "committed at revision 3"])
        self.assertEqual(etcdctl(self.server.endpoint, "get", "c", "--print-value-only")[0],
                         "hello world\n")
        got = json.loads(etcdctl(self.server.endpoint, "get", "a", "-w", "json")[0])
        self.assertEqual(got["kvs"][0]["mod_revision"], 3)

    def test_racing_transactions_one_commits_one_conflicts(self):
        etcdctl(self.server.endpoint, "put", "x", "0")
        procs = [subprocess.Popen([strata_ctl_binary(), "--endpoints", self.server.endpoint, "txn"],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
                 for _ in range(2)]
        # Both read x before either commits.
        for p in procs:
            p.stdin.write("get x\n")
            p.stdin.flush()
        for p in procs:
            self.assertTrue(p.stdout.readline().startswith("begun"))
            self.assertEqual(p.stdout.readline(), "x\n")
            self.assertEqual(p.stdout.readline(), "0\n")
        outs = []
        for i, p in enumerate(procs):
            out, _ = p.communicate("put x %d\ncommit\n" % (i + 1), timeout=30)
            outs.append(out)
        self.assertIn("committed at revision", outs[0])
        self.assertIn("transaction conflict on key 'x'", outs[1])
        self.assertEqual(etcdctl(self.server.endpoint, "get", "x", "--print-value-only")[0], "1\n")

    def test_stats_name_the_oldest_open_transaction(self):
        p = subprocess.Popen([strata_ctl_binary(), "--endpoints", self.server.endpoint, "txn"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        begun = p.stdout.readline()
        txn_id = int(begun.split()[1])
        stats = json.loads(self.ctl("stats", "-w", "json").stdout)
        self.assertEqual(stats["active_txns"], 1)
        self.assertEqual(stats["oldest_txn_id"], txn_id)
        self.assertEqual(stats["min_active_snapshot"], stats["revision"])
        p.communicate("abort\n", timeout=30)
        stats = json.loads(self.ctl("stats", "-w", "json").stdout)
        self.assertEqual(stats["active_txns"], 0)
        self.assertIn("| revision |", self.ctl("stats", "-w", "table").stdout)

    def test_endpoint_health_and_status(self):
        etcdctl(self.server.endpoint, "put", "a", "1")
        self.assertRegex(self.ctl("endpoint", "health").stdout,
                         r"^127\.0\.0\.1:\d+ is healthy: a linearizable read took [\d.]+ms\n$")
        health = json.loads(self.ctl("endpoint", "health", "-w", "json").stdout)
        self.assertEqual([(h["endpoint"], h["health"]) for h in health],
                         [(self.server.endpoint, True)])
        st = json.loads(self.ctl("endpoint", "status", "-w", "json").stdout)
        self.assertEqual(len(st), 1)
        self.assertEqual((st[0]["revision"], st[0]["version"], st[0]["gc_held_by"], st[0]["keys"]),
                         (2, "3.4.23", "nothing", 1))
        # One endpoint that answers and one that does not: both reported, exit 1.
        dead = "127.0.0.1:%d" % free_port()
        p = subprocess.run([strata_ctl_binary(), "--endpoints", self.server.endpoint + "," + dead,
                            "endpoint", "health"], capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 1)
        self.assertIn(self.server.endpoint + " is healthy", p.stdout)
        self.assertIn(dead + " is unhealthy: a read failed", p.stderr)

    def test_endpoint_health_reports_an_alarm(self):
        full = StrataServer(extra_args=["--quota-backend-bytes", "60000"]).start()
        self.addCleanup(full.stop)
        for _ in range(100):
            _, err = etcdctl(full.endpoint, "put", "big", "b" * 4000, check=False)
            if err:
                break
        p = subprocess.run([strata_ctl_binary(), "--endpoints", full.endpoint, "endpoint",
                            "health"], capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 1)
        self.assertIn("is unhealthy: active alarm(s): NOSPACE", p.stderr)


if __name__ == "__main__":
    unittest.main()
