"""Backup and restore: `strata-ctl snapshot save` and `restore` (with their
progress), a point-in-time restore, users and roles carried by the
snapshot, and `strata-server --restore` at start. Checked through etcdctl
and HashKV (equal hashes: equal history)."""
import json
import os
import shutil
import subprocess
import tempfile
import unittest

from servers import StrataServer, etcdctl, strata_binary, strata_ctl_binary


def ctl(*args, check=True):
    p = subprocess.run([strata_ctl_binary()] + list(args), capture_output=True, text=True,
                       timeout=120, stdin=subprocess.DEVNULL)
    if check and p.returncode != 0:
        raise AssertionError("strata-ctl %s: %s" % (" ".join(args), p.stderr))
    return p


def revision(endpoint):
    return int(json.loads(etcdctl(endpoint, "get", "x", "-w", "json")[0])["header"]["revision"])


class BackupAndRestore(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.work = tempfile.mkdtemp(prefix="strata-backup-")
        cls.server = StrataServer(data_dir=os.path.join(cls.work, "old")).start()
        ep = cls.server.endpoint
        for i in range(40):
            etcdctl(ep, "put", "k%d" % (i % 13), "v%d" % i)
        etcdctl(ep, "compact", "20")
        cls.lease = etcdctl(ep, "lease", "grant", "600")[0].split()[1]
        etcdctl(ep, "put", "leased", "x", "--lease", cls.lease)
        etcdctl(ep, "put", "big", "y" * 100000)
        cls.point = revision(ep)  # the point in time restored below
        cls.at_point = etcdctl(ep, "get", "", "--prefix", "--rev", str(cls.point), "-w", "json")[0]
        etcdctl(ep, "lease", "revoke", cls.lease)  # deletes "leased" after the point
        etcdctl(ep, "del", "k1")
        etcdctl(ep, "put", "k2", "after")
        # Users and roles travel with the snapshot (auth stays off here).
        etcdctl(ep, "user", "add", "alice:alicepw")
        etcdctl(ep, "role", "add", "reader")
        etcdctl(ep, "role", "grant-permission", "reader", "read", "k", "--prefix")
        etcdctl(ep, "user", "grant-role", "alice", "reader")
        cls.final = revision(ep)
        cls.snapshot = os.path.join(cls.work, "backup.snap")
        cls.saved = ctl("--endpoints", ep, "snapshot", "save", cls.snapshot)

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        shutil.rmtree(cls.work, ignore_errors=True)

    def restore(self, name, *extra, check=True):
        d = os.path.join(self.work, name)
        return d, ctl("snapshot", "restore", self.snapshot, "--data-dir", d, *extra, check=check)

    def test_save_reports_progress_in_plain_lines(self):
        self.assertIn("Snapshot saved at %s (revision %d" % (self.snapshot, self.final),
                      self.saved.stdout)
        self.assertIn("saving %s: 100%%" % self.snapshot, self.saved.stderr)
        self.assertNotIn("\r", self.saved.stderr)  # not a terminal: no bar redrawn in place

    def test_save_draws_a_bar_on_a_terminal(self):
        import pty
        master, slave = pty.openpty()
        path = os.path.join(self.work, "tty.snap")
        p = subprocess.run([strata_ctl_binary(), "--endpoints", self.server.endpoint, "snapshot",
                            "save", path], stdout=subprocess.PIPE, stderr=slave, timeout=60,
                           stdin=subprocess.DEVNULL)
        os.close(slave)
        drawn = b""
        try:
            while True:
                chunk = os.read(master, 4096)
                if not chunk:
                    break
                drawn += chunk
        except OSError:  # the terminal closed
            pass
        os.close(master)
        self.assertEqual(p.returncode, 0)
        self.assertIn(b"\rsaving " + path.encode() + b" [##############################] 100%",
                      drawn)

    def test_round_trip_keeps_history_leases_and_users(self):
        d, p = self.restore("full")
        self.assertIn("revision %d, compacted at 20" % self.final, p.stdout)
        self.assertIn("restoring %s: 100%%" % self.snapshot, p.stderr)
        new = StrataServer(data_dir=d).start()
        self.addCleanup(new.stop)
        for view in [("get", "", "--prefix", "-w", "json"),
                     ("get", "", "--prefix", "--rev", str(self.point), "-w", "json"),
                     ("endpoint", "hashkv", "--rev", str(self.final), "-w", "json")]:
            want = etcdctl(self.server.endpoint, *view)[0]
            got = etcdctl(new.endpoint, *view)[0]
            strip = lambda s: s.replace(self.server.endpoint, "EP").replace(new.endpoint, "EP")
            self.assertEqual(strip(got), strip(want), view)
        self.assertEqual(etcdctl(new.endpoint, "user", "get", "alice")[0],
                         "User: alice\nRoles: reader\n")
        self.assertIn("[k, l) (prefix k)", etcdctl(new.endpoint, "role", "get", "reader")[0])
        # The password hash came along: alice can log in once auth is on.
        etcdctl(new.endpoint, "user", "add", "root:rootpw")
        etcdctl(new.endpoint, "user", "grant-role", "root", "root")
        etcdctl(new.endpoint, "auth", "enable")
        self.assertEqual(etcdctl(new.endpoint, "--user", "alice:alicepw", "get", "k2",
                                 "--print-value-only")[0], "after\n")

    def test_point_in_time(self):
        d, p = self.restore("pit", "--revision", str(self.point))
        self.assertIn("revision %d" % self.point, p.stdout)
        # "leased" was alive at the point; its lease ended later, so it is
        # granted again for a minute rather than left to live forever.
        self.assertIn("1 leases ended after revision %d were granted again for 60 s" % self.point,
                      p.stdout)
        new = StrataServer(data_dir=d).start()
        self.addCleanup(new.stop)
        self.assertEqual(etcdctl(new.endpoint, "get", "", "--prefix", "-w", "json")[0]
                         .replace(new.endpoint, "EP"),
                         self.at_point.replace(self.server.endpoint, "EP"))
        ttl = etcdctl(new.endpoint, "lease", "timetolive", self.lease, "--keys")[0]
        self.assertIn("attached keys([leased])", ttl)
        remaining = int(ttl.split("remaining(")[1].split("s)")[0])
        self.assertTrue(0 < remaining <= 60, ttl)
        # It goes on from the point: the next write takes the next revision.
        etcdctl(new.endpoint, "put", "new", "1")
        self.assertEqual(revision(new.endpoint), self.point + 1)

    def test_point_in_time_outside_the_snapshot_is_refused_and_writes_nothing(self):
        for rev, why in [(19, "below the snapshot's compaction (20)"),
                         (self.final + 1, "newer than the snapshot")]:
            d, p = self.restore("bad-%d" % rev, "--revision", str(rev), check=False)
            self.assertNotEqual(p.returncode, 0)
            self.assertIn(why, p.stderr)
            self.assertFalse(os.path.exists(d), "a refused restore left " + d)

    def test_server_restores_at_start(self):
        d = os.path.join(self.work, "at-start")
        new = StrataServer(data_dir=d, extra_args=["--restore", self.snapshot,
                                                   "--restore-revision", str(self.point)]).start()
        self.addCleanup(new.stop)
        self.assertIn("restoring %s: 100%%" % self.snapshot, new.log())
        self.assertEqual(revision(new.endpoint), self.point)
        new.stop()
        # Started again with --restore on a directory that now holds a store:
        # refused, rather than overwriting what was written since.
        p = subprocess.run([strata_binary(), "--data-dir", d, "--restore", self.snapshot,
                            "--listen-client-urls", "http://127.0.0.1:0"],
                           capture_output=True, text=True, timeout=60)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("already holds a store", p.stderr)


if __name__ == "__main__":
    unittest.main()
