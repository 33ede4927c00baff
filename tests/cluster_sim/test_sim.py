"""Tests of the cluster simulator and its checker.

Why both halves: a checker that never fails proves nothing, so (c) feeds it
hand-made histories with one known anomaly each and requires it to name it;
(a) and (b) then run the real strata-node (single node, as the cluster does
not exist yet) and require a clean verdict, also across SIGKILL + restart.

Run from /work/main:  python3 -m unittest tests/cluster_sim/test_sim.py
"""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
import unittest
from typing import Any, Optional

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from checker import check  # noqa: E402
from history import FAIL, INFO, OK, History, Op, Txn  # noqa: E402
from clients import ClientPool  # noqa: E402
from run import DEFAULT_BINARY, Scenario, run_scenario  # noqa: E402
from sim import NetConfig, Sim, Stats  # noqa: E402


def txn(client: str, start: int, commit: Optional[int], ops: list[tuple[str, str, Any]],
        outcome: str = OK, isolation: str = "serializable", read_only: bool = False) -> Txn:
    return Txn(client=client, node="n1", isolation=isolation, invoke_time=0.0,
               start_ts=start, commit_ts=commit, outcome=outcome,
               ops=[Op(f, k, v) for f, k, v in ops], read_only=read_only)


def final(start: int, reads: dict[str, Any]) -> Txn:
    return txn("final", start, start, [("r", k, v) for k, v in reads.items()],
               isolation="snapshot", read_only=True)


def hist(*txns: Txn) -> History:
    h = History()
    for t in txns:
        h.add(t)
    return h


class CheckerCatchesBadHistories(unittest.TestCase):
    def assertCaught(self, h: History, fin: Optional[Txn], words: str) -> None:
        v = check(h, fin)
        self.assertFalse(v.ok, "checker accepted a bad history")
        self.assertTrue(any(words in e for e in v.errors), f"expected '{words}' in {v.errors}")

    def test_good_history_passes(self) -> None:
        h = hist(txn("c1", 1, 2, [("r", "x", None), ("w", "x", "a")]),
                 txn("c2", 3, 4, [("r", "x", "a"), ("w", "x", "b"), ("r", "x", "b")]))
        self.assertTrue(check(h, final(5, {"x": "b"})).ok)

    def test_lost_write(self) -> None:
        h = hist(txn("c1", 1, 2, [("w", "x", "a")]))
        self.assertCaught(h, final(5, {"x": None}), "lost or phantom write")

    def test_write_skew_under_serializable(self) -> None:
        t1 = txn("c1", 1, 3, [("r", "x", None), ("r", "y", None), ("w", "x", "a")])
        t2 = txn("c2", 2, 4, [("r", "x", None), ("r", "y", None), ("w", "y", "b")])
        self.assertCaught(hist(t1, t2), final(5, {"x": "a", "y": "b"}), "not serializable")

    def test_write_skew_allowed_under_snapshot(self) -> None:
        t1 = txn("c1", 1, 3, [("r", "x", None), ("r", "y", None), ("w", "x", "a")], isolation="snapshot")
        t2 = txn("c2", 2, 4, [("r", "x", None), ("r", "y", None), ("w", "y", "b")], isolation="snapshot")
        self.assertTrue(check(hist(t1, t2), final(5, {"x": "a", "y": "b"})).ok)

    def test_lost_update_under_snapshot(self) -> None:
        t1 = txn("c1", 1, 3, [("r", "x", None), ("w", "x", "a")], isolation="snapshot")
        t2 = txn("c2", 2, 4, [("r", "x", None), ("w", "x", "b")], isolation="snapshot")
        self.assertCaught(hist(t1, t2), final(5, {"x": "b"}), "lost update")

    def test_read_of_aborted_write(self) -> None:
        t1 = txn("c1", 1, None, [("w", "x", "a")], outcome=FAIL)
        t2 = txn("c2", 2, 3, [("r", "x", "a"), ("w", "y", "b")])
        self.assertCaught(hist(t1, t2), final(5, {"x": None, "y": "b"}), "read of an aborted write")

    def test_stale_snapshot_read(self) -> None:
        t1 = txn("c1", 1, 2, [("w", "x", "a")])
        t2 = txn("c2", 3, None, [("r", "x", None)], outcome=FAIL, isolation="snapshot")
        self.assertCaught(hist(t1, t2), final(5, {"x": "a"}), "committed state there is")

    def test_indefinite_write_may_or_may_not_commit(self) -> None:
        t1 = txn("c1", 1, None, [("w", "x", "a")], outcome=INFO)
        self.assertTrue(check(hist(t1), final(5, {"x": "a"})).ok)
        self.assertTrue(check(hist(t1), final(5, {"x": None})).ok)

    def test_indefinite_write_seen_then_unseen(self) -> None:
        t1 = txn("c1", 1, None, [("w", "x", "a")], outcome=INFO)
        t2 = txn("c2", 4, 4, [("r", "x", "a")])          # so t1 committed at <= 4
        self.assertCaught(hist(t1, t2), final(9, {"x": None}), "observed committed")


class SimulatorRoutesNodeMessages(unittest.TestCase):
    """Node-to-node routing through fake_node.py (strata-node has no peer messages yet)."""

    def relay(self, net: NetConfig) -> tuple[Optional[dict[str, Any]], Stats]:
        d = tempfile.mkdtemp(prefix="strata-sim-test-")
        fake = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fake_node.py")
        sim = Sim(lambda _id: [sys.executable, fake], 3, d, 1, net)
        pool = ClientPool(sim, 1, 0.3)
        out: list[Optional[dict[str, Any]]] = []

        def prog():  # type: ignore[no-untyped-def]
            out.append((yield "n1", {"type": "relay", "to": "n2"}))

        try:
            sim.start_all()
            pool.clients[0].run(prog())
            while not pool.clients[0].done:
                sim.step()
        finally:
            sim.stop_all()
            shutil.rmtree(d, ignore_errors=True)
        return out[0], sim.stats

    def test_delivers(self) -> None:
        reply, st = self.relay(NetConfig(latency_ms=(20, 30)))
        self.assertEqual(reply and reply["via"], "n1")
        self.assertEqual(st.node_msgs, 1)

    def test_drop(self) -> None:
        reply, st = self.relay(NetConfig(drop=1.0))
        self.assertIsNone(reply)
        self.assertEqual(st.dropped, 1)

    def test_duplicate(self) -> None:
        reply, st = self.relay(NetConfig(dup=1.0))
        self.assertIsNotNone(reply)
        self.assertEqual(st.duplicated, 1)

    def test_partition(self) -> None:
        reply, st = self.relay(NetConfig(partitions=[(0, 100, [{"n1"}, {"n2", "n3"}])]))
        self.assertIsNone(reply)
        self.assertEqual(st.partitioned, 1)
        reply, _ = self.relay(NetConfig(partitions=[(0, 100, [{"n1", "n2"}, {"n3"}])]))
        self.assertIsNotNone(reply)


class SingleNodeScenarios(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        # A missing binary is a failure, not a skip: these are the real runs.
        if not os.access(DEFAULT_BINARY, os.X_OK):
            raise AssertionError(f"{DEFAULT_BINARY} is not built "
                                 "(cmake --build build/release --target strata-node)")

    def run_ok(self, sc: Scenario) -> dict[str, object]:
        res = run_scenario(sc)
        self.assertTrue(res.verdict.ok, f"{res.summary}\n{res.verdict}\nrun dir: {res.run_dir}")
        self.assertGreater(int(res.summary["commits"]), 100, res.summary)
        return res.summary

    def test_serializable(self) -> None:
        self.run_ok(Scenario(seconds=2, clients=8, seed=11, isolation="serializable"))

    def test_snapshot(self) -> None:
        self.run_ok(Scenario(seconds=2, clients=8, seed=12, isolation="snapshot"))

    def test_kill_and_restart_with_data_dir(self) -> None:
        for iso, seed in (("serializable", 13), ("snapshot", 14)):
            with self.subTest(iso=iso):
                s = self.run_ok(Scenario(seconds=2.5, clients=8, seed=seed, isolation=iso,
                                         kill_every_ms=500, down_ms=100, timeout_ms=300))
                self.assertGreaterEqual(int(s["kills"]), 4, s)


if __name__ == "__main__":
    unittest.main()
