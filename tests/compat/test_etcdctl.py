"""A scripted etcdctl session (Debian's etcd-client 3.4.23, a client we did
not write) against strata-server, each step's output compared with what
the reference etcd 3.4.23 prints for the same step, after replacing the
identifiers that differ by nature (member and cluster ids, lease ids), and
with the exact text for the steps whose output is fixed.
"""
import json
import re
import subprocess
import time
import unittest

import os
import shutil
import tempfile

from servers import (EtcdServer, StrataServer, etcdctl, etcdctl_binary, strata_binary,
                     strata_ctl_binary)

IDS = re.compile(r'("cluster_id":|"member_id":|"leader":|"lease":|"ClusterID" : |"MemberID" : )\d+')
HEX_LEASE = re.compile(r"\b[0-9a-f]{16}\b")


def normalize(text):
    text = IDS.sub(r"\1ID", text)
    text = HEX_LEASE.sub("LEASE", text)
    return text


class EtcdctlSession(unittest.TestCase):
    def setUp(self):
        self.strata = StrataServer().start()
        self.etcd = EtcdServer().start()

    def tearDown(self):
        self.strata.stop()
        self.etcd.stop()

    def both(self, *args, stdin=None, check=True):
        """Runs one etcdctl step on both servers; returns strata's output
        after checking it is etcd's."""
        out_s, err_s = etcdctl(self.strata.endpoint, *args, stdin=stdin, check=check)
        out_e, err_e = etcdctl(self.etcd.endpoint, *args, stdin=stdin, check=check)
        self.assertEqual(normalize(out_s), normalize(out_e), "etcdctl %s" % " ".join(args))
        if not check:
            last = lambda e: e.strip().splitlines()[-1] if e.strip() else ""
            self.assertEqual(last(err_s), last(err_e), "etcdctl %s (error)" % " ".join(args))
        return out_s, err_s

    def watch_both(self, *args, writes=(), seconds=1.5):
        outs = []
        for server in (self.strata, self.etcd):
            p = subprocess.Popen([etcdctl_binary(), "--endpoints", server.endpoint, "watch"] +
                                 list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 env=dict(os.environ, ETCDCTL_API="3"))
            time.sleep(0.5)
            for w in writes:
                etcdctl(server.endpoint, *w)
            time.sleep(seconds)
            p.terminate()
            out, _ = p.communicate(timeout=10)
            outs.append(out.decode())
        self.assertEqual(normalize(outs[0]), normalize(outs[1]), "etcdctl watch %s" % " ".join(args))
        return outs[0]

    def test_session(self):
        # Put and get, in every output format etcdctl has.
        self.assertEqual(self.both("put", "greeting", "hello")[0], "OK\n")
        out = self.both("get", "greeting", "-w", "json")[0]
        got = json.loads(out)
        self.assertEqual(got["header"]["revision"], 2)
        self.assertEqual(got["kvs"][0]["create_revision"], 2)
        self.assertEqual(got["kvs"][0]["version"], 1)
        self.assertEqual(got["count"], 1)
        self.both("get", "greeting")
        self.both("get", "greeting", "-w", "fields")
        self.both("put", "greeting", "hi", "--prev-kv")
        self.both("put", "greeting", "hey", "--prev-kv", "-w", "json")
        for k in ["k1", "k2", "k3", "other"]:
            self.both("put", k, "v-" + k)
        # Range options.
        self.assertEqual(self.both("get", "k", "--prefix", "--keys-only")[0],
                         "k1\n\nk2\n\nk3\n\n")
        self.both("get", "k", "--prefix", "--limit", "2", "-w", "json")
        self.both("get", "k1", "k3")
        self.both("get", "k2", "--from-key")
        self.both("get", "k", "--prefix", "--sort-by", "MODIFY", "--order", "DESCEND")
        self.both("get", "k", "--prefix", "--sort-by", "VALUE", "--order", "ASCEND")
        self.both("get", "k", "--prefix", "--print-value-only")
        self.both("get", "greeting", "--rev", "3", "-w", "json")
        self.both("get", "greeting", "--consistency", "s")
        self.both("get", "", "--prefix", "-w", "json")
        # Errors, with etcd's text.
        _, err = self.both("get", "greeting", "--rev", "1000", check=False)
        self.assertIn("etcdserver: mvcc: required revision is a future revision", err)
        # Delete.
        self.assertEqual(self.both("del", "k1")[0], "1\n")
        self.both("del", "k", "--prefix", "--prev-kv")
        self.assertEqual(self.both("del", "nothing")[0], "0\n")
        # Transactions, from etcdctl's interactive syntax on stdin.
        txn = 'mod("greeting") > "0"\n\nput t1 yes\nget greeting\n\nput t1 no\n\n'
        self.assertEqual(self.both("txn", stdin=txn)[0], "SUCCESS\n\nOK\n\ngreeting\nhey\n")
        self.both("txn", "-w", "json", stdin='value("greeting") = "nope"\n\n\nput t2 x\n\n')
        self.both("txn", stdin='version("t1") = "1"\ncreate("t1") > "0"\n\ndel t1\n\n\n')
        # Watch: history from a revision, then live events, with prev_kv.
        self.both("put", "w", "1")
        rev = json.loads(self.both("get", "w", "-w", "json")[0])["header"]["revision"]
        out = self.watch_both("--rev", str(rev), "w", "--prev-kv", writes=[("put", "w", "2"),
                                                                             ("del", "w")])
        self.assertEqual(out, "PUT\nw\n1\nPUT\nw\n1\nw\n2\nDELETE\nw\n2\nw\n\n")
        self.watch_both("--prefix", "w", "-w", "json", writes=[("put", "w3", "x")])
        # Compaction and what it does to old revisions.
        self.assertEqual(self.both("compact", str(rev))[0], "compacted revision %d\n" % rev)
        _, err = self.both("get", "w", "--rev", str(rev - 1), check=False)
        self.assertIn("etcdserver: mvcc: required revision has been compacted", err)
        _, err = self.both("compact", str(rev), check=False)
        self.assertIn("etcdserver: mvcc: required revision has been compacted", err)
        # Leases (each server picks its own ids, so each step runs per server).
        outputs = []
        for server in (self.strata, self.etcd):
            run = lambda *a: normalize(etcdctl(server.endpoint, *a)[0])
            grant = etcdctl(server.endpoint, "lease", "grant", "100")[0]
            lease = grant.split()[1]
            outputs.append([
                normalize(grant),
                run("put", "leased", "v", "--lease", lease),
                run("get", "leased", "-w", "json"),
                re.sub(r"remaining\(\d+s\)", "remaining(N)",
                       run("lease", "timetolive", lease, "--keys")),
                run("lease", "keep-alive", "--once", lease),
                run("lease", "list"),
                run("lease", "revoke", lease),
                run("get", "leased"),
            ])
        self.assertEqual(outputs[0], outputs[1])
        self.assertEqual(outputs[0][0], "lease LEASE granted with TTL(100s)\n")
        self.assertIn("attached keys([leased])", outputs[0][3])
        _, err = self.both("put", "x", "v", "--lease", "1234abcd", check=False)
        self.assertIn("etcdserver: requested lease not found", err)
        # Endpoint and member views.
        out = etcdctl(self.strata.endpoint, "endpoint", "status", "-w", "json")[0]
        status = json.loads(out)[0]["Status"]
        self.assertEqual(status["version"], "3.4.23")
        self.assertEqual(status["header"]["revision"],
                         json.loads(etcdctl(self.strata.endpoint, "get", "x", "-w",
                                            "json")[0])["header"]["revision"])
        out = etcdctl(self.strata.endpoint, "member", "list", "-w", "json")[0]
        self.assertEqual(len(json.loads(out)["members"]), 1)

    def test_lock_and_elect(self):
        env = dict(os.environ, ETCDCTL_API="3")
        for server in (self.strata, self.etcd):
            out, _ = etcdctl(server.endpoint, "lock", "mylock", "echo", "locked")
            self.assertEqual(out, "locked\n")
            # Two lockers in turn: the second waits for the first to release.
            first = subprocess.Popen([etcdctl_binary(), "--endpoints", server.endpoint, "lock",
                                      "shared", "sleep", "1"], env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(0.3)
            start = time.time()
            out, _ = etcdctl(server.endpoint, "lock", "shared", "echo", "second")
            self.assertEqual(out, "second\n")
            self.assertGreater(time.time() - start, 0.4, "the lock did not exclude")
            first.wait(timeout=10)
            # A candidate campaigns; an observer sees it lead.
            candidate = subprocess.Popen([etcdctl_binary(), "--endpoints", server.endpoint,
                                          "elect", "election", "candidate"], env=env,
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(1.0)
            observer = subprocess.Popen([etcdctl_binary(), "--endpoints", server.endpoint,
                                         "elect", "-l", "election"], env=env,
                                        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            time.sleep(1.0)
            observer.terminate()
            out, _ = observer.communicate(timeout=10)
            candidate.terminate()
            candidate.wait(timeout=10)
            self.assertIn(b"candidate", out)


class SpaceQuota(unittest.TestCase):
    """--quota-backend-bytes: past it, the NOSPACE alarm and etcd's error for
    writes that add data; compaction makes room, disarming lets writes in."""

    def test_nospace_alarm(self):
        server = StrataServer(extra_args=["--quota-backend-bytes", "60000"]).start()
        self.addCleanup(server.stop)
        big = "b" * 4000
        refused = None
        for i in range(100):
            _, err = etcdctl(server.endpoint, "put", "big", big, check=False)
            if err:
                refused = err
                break
        self.assertIsNotNone(refused, "the quota never refused a write")
        self.assertIn("etcdserver: mvcc: database space exceeded", refused)
        out, _ = etcdctl(server.endpoint, "alarm", "list")
        self.assertRegex(out, r"^memberID:\d+ alarm:NOSPACE \n$")
        _, err = etcdctl(server.endpoint, "put", "small", "x", check=False)
        self.assertIn("database space exceeded", err)
        _, err = etcdctl(server.endpoint, "lease", "grant", "10", check=False)
        self.assertIn("database space exceeded", err)
        self.assertEqual(etcdctl(server.endpoint, "get", "big", "--print-value-only")[0],
                         big + "\n", "reads go on")
        rev = json.loads(etcdctl(server.endpoint, "get", "big", "-w", "json")[0])["header"][
            "revision"]
        etcdctl(server.endpoint, "compact", str(rev))
        etcdctl(server.endpoint, "defrag")
        out, _ = etcdctl(server.endpoint, "alarm", "disarm")
        self.assertRegex(out, r"^memberID:\d+ alarm:NOSPACE \n$")
        self.assertEqual(etcdctl(server.endpoint, "alarm", "list")[0], "")
        self.assertEqual(etcdctl(server.endpoint, "put", "small", "x")[0], "OK\n")


class AutoCompaction(unittest.TestCase):
    """--auto-compaction-mode/--auto-compaction-retention, as etcd's flags."""

    def compact_revision(self, server):
        out, _ = etcdctl(server.endpoint, "endpoint", "hashkv", "-w", "json")
        return json.loads(out)[0]["HashKV"].get("compact_revision", 0)

    def wait_for_compaction(self, server, seconds, at_least=1):
        """The compaction revision once the server compacted on its own to
        at least `at_least`, or what it is after `seconds`."""
        deadline = time.time() + seconds
        while self.compact_revision(server) < at_least and time.time() < deadline:
            time.sleep(0.2)
        return self.compact_revision(server)

    def test_revision_mode_keeps_the_last_n_revisions(self):
        server = StrataServer(extra_args=["--auto-compaction-mode", "revision",
                                          "--auto-compaction-retention", "10"]).start()
        self.addCleanup(server.stop)
        for i in range(40):
            etcdctl(server.endpoint, "put", "k", str(i))
        # It looks every second, so on a loaded machine it may compact while
        # the puts still run: what counts is where it settles.
        compacted = self.wait_for_compaction(server, 10, at_least=41 - 10 - 1)
        self.assertGreaterEqual(compacted, 41 - 10 - 1)
        self.assertLessEqual(compacted, 41 - 10)
        _, err = etcdctl(server.endpoint, "get", "k", "--rev", "5", check=False)
        self.assertIn("required revision has been compacted", err)
        self.assertEqual(etcdctl(server.endpoint, "get", "k", "--rev", "35",
                                 "--print-value-only")[0], "33\n")

    def test_periodic_mode_keeps_the_retention_of_time(self):
        server = StrataServer(extra_args=["--auto-compaction-retention", "2s"]).start()
        self.addCleanup(server.stop)
        for i in range(5):
            etcdctl(server.endpoint, "put", "k", str(i))
        self.assertGreater(self.wait_for_compaction(server, 15), 1, "nothing compacted after 2 s")
        p = subprocess.run([strata_binary(), "--in-memory", "--auto-compaction-retention", "soon"],
                           capture_output=True, text=True, timeout=10)
        self.assertNotEqual(p.returncode, 0, "a malformed retention must be refused")


class SnapshotSaveAndRestore(unittest.TestCase):
    """`etcdctl snapshot save` from strata-server, `strata-ctl snapshot
    restore` into a new directory, and a server started on it answers as
    the old one did: keys, history above the compaction, leases."""

    def test_round_trip(self):
        work = tempfile.mkdtemp(prefix="strata-snap-")
        self.addCleanup(shutil.rmtree, work, True)
        old = StrataServer(data_dir=os.path.join(work, "old")).start()
        self.addCleanup(old.stop)
        for i in range(50):
            etcdctl(old.endpoint, "put", "k%d" % (i % 7), "v%d" % i)
        etcdctl(old.endpoint, "del", "k3")
        etcdctl(old.endpoint, "compact", "20")
        lease = etcdctl(old.endpoint, "lease", "grant", "600")[0].split()[1]
        etcdctl(old.endpoint, "put", "leased", "x", "--lease", lease)
        path = os.path.join(work, "snap.db")
        out, _ = etcdctl(old.endpoint, "snapshot", "save", path)
        self.assertEqual(out, "Snapshot saved at %s\n" % path)
        views = [("get", "", "--prefix", "-w", "json"), ("get", "k1", "--rev", "30", "-w", "json"),
                 ("get", "k1", "--rev", "20", "-w", "json"),
                 # The same history hashes the same: the restore lost nothing.
                 ("endpoint", "hashkv", "--rev", "50")]
        before = [etcdctl(old.endpoint, *v)[0].replace(old.endpoint, "EP") for v in views]
        old.stop()

        restored = os.path.join(work, "restored")
        p = subprocess.run([strata_ctl_binary(), "snapshot", "restore", path, "--data-dir",
                            restored], capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("revision 53, compacted at 20", p.stdout)
        new = StrataServer(data_dir=restored).start()
        self.addCleanup(new.stop)
        after = [etcdctl(new.endpoint, *v)[0].replace(new.endpoint, "EP") for v in views]
        self.assertEqual(after, before)
        _, err = etcdctl(new.endpoint, "get", "k1", "--rev", "19", check=False)
        self.assertIn("required revision has been compacted", err)
        out, _ = etcdctl(new.endpoint, "lease", "timetolive", lease, "--keys")
        self.assertIn("attached keys([leased])", out)
        # A second restore into the same place is refused; a damaged file too.
        p = subprocess.run([strata_ctl_binary(), "snapshot", "restore", path, "--data-dir",
                            restored], capture_output=True, text=True, timeout=60)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("already holds a store", p.stderr)
        with open(path, "r+b") as f:
            f.seek(40)
            f.write(b"X")
        p = subprocess.run([strata_ctl_binary(), "snapshot", "restore", path, "--data-dir",
                            os.path.join(work, "other")], capture_output=True, text=True,
                           timeout=60)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("checksum does not match", p.stderr)


if __name__ == "__main__":
    unittest.main()
