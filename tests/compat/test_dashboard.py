"""The dashboard (/dashboard on the metrics port) in a real browser.

Headless Chromium (Debian's) loads the page from a strata-server that has
had traffic: writes, a compaction that reclaimed versions, an open
interactive transaction holding GC back, and a key with several versions
and a delete. The test reads the DOM the page built: every panel is there,
its figures are /metrics' figures, the holder is named, and the key's
timeline has one segment per version at the right revisions with the
snapshot and the compaction drawn. It saves a screenshot beside the build
(STRATA_DASHBOARD_SCREENSHOT, default build/dashboard.png).
"""
import html.parser
import json
import os
import shutil
import subprocess
import tempfile
import unittest
import urllib.error
import urllib.request

import grpc

from servers import ROOT, StrataServer, free_port, python_stubs

python_stubs()
import rpc_pb2 as pb  # noqa: E402  (generated at build time)
import rpc_pb2_grpc as rpc  # noqa: E402
import strata_pb2 as v1  # noqa: E402
import strata_pb2_grpc as v1rpc  # noqa: E402

PANELS = ["panel-gc", "panel-resolved", "panel-intents", "panel-gc-bytes", "panel-throughput",
          "panel-store", "panel-timeline"]


def chromium():
    return shutil.which("chromium") or "/usr/bin/chromium"


def run_chromium(url, *extra):
    # --no-sandbox: the tests run as root in CI, where Chromium's sandbox
    # refuses to start. Virtual time lets the page's timers (its polls of
    # /metrics) run without the test waiting for them in real time.
    args = [chromium(), "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
            "--window-size=1280,1100", "--virtual-time-budget=6000",
            "--user-data-dir=" + tempfile.mkdtemp(prefix="strata-chromium-")] + list(extra) + [url]
    p = subprocess.run(args, capture_output=True, text=True, timeout=120)
    if p.returncode != 0:
        raise AssertionError("chromium failed (%d): %s" % (p.returncode, p.stderr[-2000:]))
    return p.stdout


class Dom(html.parser.HTMLParser):
    """Elements by id, their attributes and text, and the timeline's parts."""

    def __init__(self):
        super().__init__()
        self.by_id = {}
        self.stack = []
        self.timeline = []  # (tag, attrs) inside <svg id="timeline">
        self.holders = []   # rows of #gc-holders' body
        self.body = {}
        self._row = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        node = {"tag": tag, "attrs": a, "text": ""}
        if tag == "body":
            self.body = a
        self.stack.append(node)
        if "id" in a:
            self.by_id[a["id"]] = node
        if any(n["attrs"].get("id") == "timeline" for n in self.stack[:-1]):
            self.timeline.append((tag, a))
        if tag == "tr" and any(n["attrs"].get("id") == "gc-holders" for n in self.stack):
            self._row = []
        if tag == "td" and self._row is not None:
            self._row.append("")

    def handle_endtag(self, tag):
        while self.stack:
            node = self.stack.pop()
            if node["tag"] == tag:
                break
        if tag == "tr" and self._row is not None:
            if self._row:
                self.holders.append(self._row)
            self._row = None

    def handle_data(self, data):
        for n in self.stack:
            n["text"] += data
        if self._row:
            self._row[-1] += data


def metrics(port):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=10) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


class DashboardInChromium(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="strata-dashboard-")
        cls.metrics_port = free_port()
        cls.server = StrataServer(data_dir=os.path.join(cls.dir, "data"), extra_args=[
            "--listen-metrics-urls", "http://127.0.0.1:%d" % cls.metrics_port]).start()
        channel = grpc.insecure_channel(cls.server.endpoint)
        kv = rpc.KVStub(channel)
        # Traffic: versions that a compaction then reclaims...
        for i in range(200):
            kv.Put(pb.PutRequest(key=b"load/%d" % (i % 20), value=b"x" * 100))
        compact_at = kv.Range(pb.RangeRequest(key=b"load/0")).header.revision
        kv.Compact(pb.CompactionRequest(revision=compact_at, physical=True))
        # ...a key with a history above the compaction...
        cls.k_revisions = []
        for value in (b"one", b"two", b"three"):
            cls.k_revisions.append(kv.Put(pb.PutRequest(key=b"k", value=value)).header.revision)
        cls.k_delete = kv.DeleteRange(pb.DeleteRangeRequest(key=b"k")).header.revision
        cls.k_revisions.append(kv.Put(pb.PutRequest(key=b"k", value=b"four")).header.revision)
        # ...and an open transaction whose snapshot holds GC back.
        strata = v1rpc.StrataStub(channel)
        begun = strata.Begin(v1.BeginRequest())
        cls.txn_id, cls.txn_snapshot = begun.txn_id, begun.read_revision
        strata.Get(v1.TxnGetRequest(txn_id=cls.txn_id, key=b"k"))
        for i in range(50):
            kv.Put(pb.PutRequest(key=b"after/%d" % i, value=b"y"))
        cls.channel = channel

    @classmethod
    def tearDownClass(cls):
        cls.channel.close()
        cls.server.stop()
        shutil.rmtree(cls.dir, ignore_errors=True)

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.metrics_port, path)

    def test_page_shows_what_metrics_say(self):
        dom = Dom()
        dom.feed(run_chromium(self.url("/dashboard?key=k&interval=500"), "--dump-dom"))
        want = metrics(self.metrics_port)
        for panel in PANELS:
            self.assertIn(panel, dom.by_id, "panel missing: " + panel)
        self.assertIn("hidden", dom.by_id["panel-replicas"]["attrs"],
                      "a lone server has no shard replicas to show")
        self.assertEqual(dom.by_id["status"]["text"].strip(), "live")
        # Live: it read /metrics again and again on its own.
        self.assertGreaterEqual(int(dom.body.get("data-polls", "0")), 3)
        # Figures equal /metrics' (nothing writes while the page loads).
        for element_id, metric in [("current-revision", "etcd_debugging_mvcc_current_revision"),
                                   ("compact-revision", "strata_gc_compact_revision"),
                                   ("low-water-mark", "strata_gc_low_water_mark_revision"),
                                   ("keys", "etcd_debugging_mvcc_keys_total"),
                                   ("versions", "strata_mvcc_versions"),
                                   ("tombstones", "strata_mvcc_tombstones"),
                                   ("gc-bytes", "strata_gc_bytes_reclaimed_total"),
                                   ("gc-versions", "strata_gc_versions_reclaimed_total"),
                                   ("txn-active", "strata_txn_active"),
                                   ("intents", "strata_intents")]:
            with self.subTest(element_id):
                self.assertEqual(float(dom.by_id[element_id]["attrs"]["data-value"]), want[metric])
        self.assertGreater(want["strata_gc_bytes_reclaimed_total"], 0)
        self.assertGreater(want["strata_gc_low_water_mark_revision"], 0)
        # Every gRPC call this test made (259), summed over methods as /metrics has them.
        handled = sum(v for k, v in want.items() if k.startswith("grpc_server_handled_total{"))
        self.assertEqual(handled, 259)
        self.assertEqual(float(dom.by_id["calls-total"]["attrs"]["data-value"]), handled)
        # The holder is named, at its snapshot.
        self.assertIn(["transaction", str(self.txn_id), str(self.txn_snapshot),
                       str(int(want["etcd_debugging_mvcc_current_revision"]) - self.txn_snapshot)],
                      dom.holders)
        # The timeline: a segment per version, the delete, the snapshot, the compaction.
        groups = [(a.get("class"), int(a["data-revision"])) for t, a in dom.timeline
                  if t == "g"]
        self.assertEqual(groups, [("version", r) for r in self.k_revisions[:3]]
                         + [("delete", self.k_delete), ("version", self.k_revisions[3])])
        lines = {(a.get("class"), int(a["data-revision"])) for t, a in dom.timeline
                 if t == "line" and "data-revision" in a}
        self.assertIn(("snapshot", self.txn_snapshot), lines)
        self.assertIn(("horizon", int(want["strata_gc_low_water_mark_revision"])), lines)

    def test_screenshot(self):
        path = os.environ.get("STRATA_DASHBOARD_SCREENSHOT",
                              os.path.join(ROOT, "build", "dashboard.png"))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if os.path.exists(path):
            os.remove(path)
        run_chromium(self.url("/dashboard?key=k&interval=500"), "--screenshot=" + path)
        with open(path, "rb") as f:
            self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")
        self.assertGreater(os.path.getsize(path), 20000)  # a page, not a blank

    def test_key_endpoint(self):
        with urllib.request.urlopen(self.url("/dashboard/key?key=k"), timeout=10) as r:
            data = json.loads(r.read())
        self.assertEqual([v["revision"] for v in data["versions"]],
                         self.k_revisions[:3] + [self.k_delete, self.k_revisions[3]])
        self.assertEqual(data["versions"][0]["value"], "one")
        self.assertTrue(data["versions"][3]["deleted"])
        for bad in ("/dashboard/key", "/dashboard/key?key=k&limit=0",
                    "/dashboard/key?key=k&limit=x"):
            with self.assertRaises(urllib.error.HTTPError) as e:
                urllib.request.urlopen(self.url(bad), timeout=10)
            self.assertEqual(e.exception.code, 400)

    def test_zz_key_timeline_is_off_with_auth(self):
        # Runs last (unittest sorts by name): it turns authentication on and off.
        auth = rpc.AuthStub(self.channel)
        auth.UserAdd(pb.AuthUserAddRequest(name="root", password="pw"))
        auth.UserGrantRole(pb.AuthUserGrantRoleRequest(user="root", role="root"))
        auth.AuthEnable(pb.AuthEnableRequest())
        try:
            with self.assertRaises(urllib.error.HTTPError) as e:
                urllib.request.urlopen(self.url("/dashboard/key?key=k"), timeout=10)
            self.assertEqual(e.exception.code, 403)
            self.assertIn("authentication is enabled", json.loads(e.exception.read())["error"])
        finally:
            token = auth.Authenticate(pb.AuthenticateRequest(name="root", password="pw")).token
            auth.AuthDisable(pb.AuthDisableRequest(), metadata=[("token", token)])


if __name__ == "__main__":
    unittest.main()
