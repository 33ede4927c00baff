"""Tests of the cluster simulator and its checker.

Why both halves: a checker that never fails proves nothing, so (c) feeds it
hand-made histories with one known anomaly each and requires it to name it;
(a) and (b) then run the real strata-node (single node, as the cluster does
not exist yet) and require a clean verdict, also across SIGKILL + restart.

The scenario hooks of sim.py (rules, triggers, the test's own requests,
clients on the network) are proven with fake_node.py in SimulatorHooks, so
test_scenarios.py can trust them while the cluster they target is built.

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
from sim import Call, NetConfig, Sim, Stats  # noqa: E402


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
            # The client's 0.3 s count from its request: on a loaded machine
            # a fake node's start alone can take longer.
            self.assertTrue(sim.wait_ready(5.0), "fake nodes did not answer init")
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


class SimulatorHooks(unittest.TestCase):
    """The scenario hooks (rules, triggers, call/rpc, clients on the network),
    proven with fake_node.py so test_scenarios.py can rely on them."""

    def setUp(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="strata-sim-test-")
        self.addCleanup(shutil.rmtree, self.dir, True)

    def sim(self, net: Optional[NetConfig] = None) -> Sim:
        fake = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fake_node.py")
        sim = Sim(lambda _id: [sys.executable, fake], 3, self.dir, 1, net)
        self.addCleanup(sim.stop_all)
        sim.start_all()
        self.assertTrue(sim.wait_ready(5.0), "fake nodes did not answer init")
        return sim

    def relay(self, sim: Sim, kinds: list[str], src: str = "n1", to: str = "n2") -> Call:
        return sim.call(src, {"type": "relay", "to": to, "kinds": kinds})

    def kinds_replied(self, c: Call) -> list[str]:
        return sorted(b["kind"] for b in c.replies if b["type"] == "relay_ok")

    def test_rpc_gets_reply_or_times_out(self) -> None:
        sim = self.sim()
        self.assertEqual(sim.rpc("n1", {"type": "echo"}, 2.0)["type"], "echo_ok")
        t0 = sim.now()
        self.assertIsNone(sim.rpc("n1", {"type": "nothing"}, 0.2))
        self.assertGreaterEqual(sim.now() - t0, 0.2)

    def test_drop_rule_first_k_only(self) -> None:
        sim = self.sim()
        r = sim.drop(src="n1", dest="n2", type="a", count=2)
        c = self.relay(sim, ["a", "a", "a", "b"])
        sim.run_until(lambda: len(c.replies) >= 2, 2.0)
        sim.sleep(0.1)
        self.assertEqual(self.kinds_replied(c), ["a", "b"])   # two of the three a's dropped
        self.assertEqual(len(r.seen), 2)
        self.assertEqual(sim.stats.rule_dropped, 2)

    def test_patterns_select_src_dest_type(self) -> None:
        sim = self.sim()
        sim.drop(src={"n2", "n3"}, type="hop")          # n1's hops are not matched
        self.assertIsNotNone(sim.rpc("n1", {"type": "relay", "to": "n2"}, 1.0))
        self.assertIsNone(sim.rpc("n2", {"type": "relay", "to": "n3"}, 0.3))
        sim.drop(dest="n3")
        self.assertIsNone(sim.rpc("n1", {"type": "relay", "to": "n3"}, 0.3))
        self.assertIsNotNone(sim.rpc("n1", {"type": "relay", "to": "n2"}, 1.0))

    def test_delay_rule(self) -> None:
        sim = self.sim()
        sim.delay(300, src="n1", dest="n2")
        slow = self.relay(sim, ["hop"], to="n2")
        fast = self.relay(sim, ["hop"], to="n3")
        self.assertTrue(sim.run_until(lambda: slow.done and fast.done, 2.0))
        self.assertGreaterEqual(slow.elapsed, 0.3)
        self.assertLess(fast.elapsed, 0.2)
        self.assertEqual(sim.stats.rule_delayed, 1)

    def test_hold_until_released(self) -> None:
        sim = self.sim()
        r = sim.hold(type="hop")
        c = self.relay(sim, ["hop"])
        sim.sleep(0.3)
        self.assertFalse(c.done)
        self.assertEqual(len(r.held), 1)
        self.assertEqual(sim.release(r), 1)
        self.assertTrue(sim.run_until(lambda: c.done, 1.0))
        self.assertGreaterEqual(c.elapsed, 0.3)
        # released: later matches pass
        self.assertIsNotNone(sim.rpc("n1", {"type": "relay", "to": "n3"}, 1.0))
        # a release goes through the rules added meanwhile
        r2 = sim.hold(type="hop")
        c2 = self.relay(sim, ["hop"])
        sim.run_until(lambda: bool(r2.held), 1.0)
        sim.cut_link("n1", "n2")
        sim.release(r2)
        sim.sleep(0.2)
        self.assertFalse(c2.done)
        self.assertEqual(sim.stats.rule_dropped, 1)

    def test_observe_records_and_passes(self) -> None:
        sim = self.sim()
        r = sim.observe(type="hop")
        self.assertIsNotNone(sim.rpc("n1", {"type": "relay", "to": "n2"}, 1.0))
        self.assertEqual([(m["src"], m["dest"]) for _, m in r.seen], [("n1", "n2")])

    def test_trigger_kills_sender_right_after_nth_send(self) -> None:
        for deliver in (True, False):
            with self.subTest(deliver=deliver):
                self.setUp()
                sim = self.sim()
                t = sim.kill_after_send("n1", type={"a", "b", "c"}, nth=2, deliver=deliver)
                c = self.relay(sim, ["a", "b", "c"])   # all three in one write
                self.assertTrue(sim.run_until(lambda: t.fired, 2.0))
                self.assertFalse(sim.nodes["n1"].up)
                self.assertEqual(t.message["body"]["type"], "b")
                sim.sleep(0.2)
                # "a" went out before; "b" per `deliver`; "c" was written after: never left
                self.assertEqual(self.kinds_replied(c), ["a", "b"] if deliver else ["a"])
                self.assertEqual(sim.stats.kills, 1)

    def test_trigger_on_type_of_other_node_keeps_loop_running(self) -> None:
        sim = self.sim()
        # n2 dies the moment n1 sends it a hop, so n2 never answers
        t = sim.on_send(lambda: sim.kill("n2"), src="n1", type="hop")
        self.assertIsNone(sim.rpc("n1", {"type": "relay", "to": "n2"}, 0.3))
        self.assertTrue(t.fired)
        self.assertIsNotNone(sim.rpc("n1", {"type": "relay", "to": "n3"}, 1.0))
        sim.restart("n2")
        self.assertTrue(sim.wait_ready(2.0))
        self.assertIsNotNone(sim.rpc("n1", {"type": "relay", "to": "n2"}, 1.0))

    def test_cut_link_and_partition_now(self) -> None:
        sim = self.sim()
        sim.cut_link("n1", "n2", seconds=0.3)
        self.assertIsNone(sim.rpc("n1", {"type": "relay", "to": "n2"}, 0.1))
        self.assertIsNotNone(sim.rpc("n1", {"type": "relay", "to": "n3"}, 1.0))
        sim.sleep(0.3)
        self.assertIsNotNone(sim.rpc("n1", {"type": "relay", "to": "n2"}, 1.0))
        sim.partition_now([{"n1"}, {"n2", "n3"}], 0.3)
        self.assertIsNone(sim.rpc("n1", {"type": "relay", "to": "n3"}, 0.1))
        self.assertIsNotNone(sim.rpc("n2", {"type": "relay", "to": "n3"}, 1.0))
        sim.sleep(0.3)
        self.assertIsNotNone(sim.rpc("n1", {"type": "relay", "to": "n3"}, 1.0))

    def test_clients_off_network_by_default(self) -> None:
        sim = self.sim(NetConfig(latency_ms=(100, 100), partitions=[(0, 100, [{"cx"}, {"n1"}])]))
        c = sim.call("n1", {"type": "echo"})
        self.assertTrue(sim.run_until(lambda: c.done, 1.0))
        self.assertLess(c.elapsed, 0.1)

    def test_clients_on_network(self) -> None:
        sim = self.sim(NetConfig(latency_ms=(100, 100), clients_on_network=True))
        before = sim.stats.client_msgs
        c = sim.call("n1", {"type": "echo"})
        self.assertTrue(sim.run_until(lambda: c.done, 1.0))
        self.assertGreaterEqual(c.elapsed, 0.2)        # request and reply both cross it
        self.assertEqual(sim.stats.client_msgs - before, 2)
        # a client named in a group is cut from the other groups; one in no group is not
        sim.partition_now([{"cx", "n1"}, {"n2"}], 10)
        self.assertIsNone(sim.rpc("n2", {"type": "echo"}, 0.5))
        self.assertIsNotNone(sim.rpc("n1", {"type": "echo"}, 0.5))
        self.assertIsNotNone(sim.rpc("n2", {"type": "echo"}, 0.5, src="cy"))
        # rules see client traffic too
        sim.drop(src="cy")
        self.assertIsNone(sim.rpc("n1", {"type": "echo"}, 0.5, src="cy"))

    def test_random_faults_stay_node_to_node(self) -> None:
        sim = self.sim(NetConfig(drop=1.0, dup=1.0, clients_on_network=True))
        self.assertIsNotNone(sim.rpc("n1", {"type": "echo"}, 1.0))
        self.assertIsNone(sim.rpc("n1", {"type": "relay", "to": "n2"}, 0.3))
        self.assertEqual(sim.stats.dropped, 1)


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
