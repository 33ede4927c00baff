#!/usr/bin/env python3
"""Run one simulated scenario against real strata-node processes and check it.

Why a library function plus a CLI: test_sim.py runs the same scenarios as a
person does from the shell, so a failure seen in `make test` reproduces with
the printed command line (seed included).
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from checker import Verdict, check  # noqa: E402
from clients import Client, ClientPool, final_read_program, txn_program  # noqa: E402
from history import FAIL, INFO, OK, History, Txn  # noqa: E402
from sim import NetConfig, Sim  # noqa: E402

# The node under test: $STRATA_NODE_BINARY (ctest sets it to the build's
# own binary), else the Release build.
DEFAULT_BINARY = os.environ.get("STRATA_NODE_BINARY") or os.path.normpath(
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "build", "release",
                 "strata-node"))


@dataclass
class Scenario:
    nodes: int = 1
    clients: int = 8
    seconds: float = 5.0
    seed: Optional[int] = None
    isolation: str = "serializable"
    keys: int = 5
    timeout_ms: float = 1000.0
    kill_every_ms: float = 0.0
    down_ms: float = 100.0
    # > 0: every this many ms a random shard is placed on random nodes (as
    # many as --replication-factor in node_args; strata-node's shard_place)
    move_every_ms: float = 0.0
    data_dir_root: Optional[str] = None
    net: NetConfig = field(default_factory=NetConfig)
    binary: str = DEFAULT_BINARY
    node_args: list[str] = field(default_factory=list)
    run_dir: Optional[str] = None
    keep: bool = False
    # > 0: after the final read, poll every node's mvcc_stats until all report
    # "intents": 0 (at most this many seconds); the result is summary["intents_left"]
    drain_intents_s: float = 0.0
    # called with the Sim before the nodes start: install rules/triggers, trace_messages
    setup: Optional[Callable[[Sim], None]] = None
    # "txn" (the raw txn API + checker.py) or a Maelstrom workload of workloads.py:
    # "lin-kv", "list-append", "rw-register"
    workload: str = "txn"


@dataclass
class Result:
    verdict: Verdict
    summary: dict[str, object]
    run_dir: str


def run_scenario(sc: Scenario) -> Result:
    if sc.workload != "txn":
        from workloads import run_workload
        return run_workload(sc)
    seed = sc.seed if sc.seed is not None else random.SystemRandom().randrange(1 << 31)
    run_dir = sc.run_dir or tempfile.mkdtemp(prefix="strata-sim-")
    os.makedirs(run_dir, exist_ok=True)
    data_root = sc.data_dir_root
    if sc.kill_every_ms and not data_root:
        data_root = os.path.join(run_dir, "data")  # a kill without durability loses everything

    def argv(node_id: str) -> list[str]:
        a = [sc.binary, "--isolation", sc.isolation, *sc.node_args]
        if data_root:
            os.makedirs(os.path.join(data_root, node_id), exist_ok=True)
            a += ["--data-dir", os.path.join(data_root, node_id)]
        return a

    sim = Sim(argv, sc.nodes, run_dir, seed, sc.net)
    if sc.setup is not None:
        sc.setup(sim)
    rng = random.Random(sim.rng.random())  # workload randomness, separate from the network's
    history = History(os.path.join(run_dir, "history.jsonl"))
    keys = [f"k{i}" for i in range(sc.keys)]
    pool = ClientPool(sim, sc.clients, sc.timeout_ms / 1000.0)
    seqs = {c.name: itertools.count(1) for c in pool.clients}
    sim.start_all()
    if sc.kill_every_ms:
        sim.schedule_kills(sc.kill_every_ms / 1000.0, sc.down_ms / 1000.0, sc.seconds)
    moves = schedule_moves(sim, sc)
    wall0 = time.monotonic()
    try:
        while sim.now() < sc.seconds:
            for c in pool.clients:
                if c.done:
                    c.run(txn_program(c.name, seqs[c.name], rng, sim.ids, keys, sc.isolation,
                                      history, sim.now))
            sim.step()
        # Drain: every client finishes its transaction (each request times out at worst).
        drain_until = sim.now() + 8 * sc.timeout_ms / 1000.0 + sc.down_ms / 1000.0
        while not all(c.done for c in pool.clients) and sim.now() < drain_until:
            sim.step()
        for nid in sim.ids:  # a node killed near the end is restarted now (restart is idempotent)
            sim.restart(nid)
        final_out: list[Txn] = []
        fc = Client("cfinal", sim, max(sc.timeout_ms / 1000.0, 2.0))
        pool.by_name["cfinal"] = fc
        fc.run(final_read_program(rng, sim.ids, keys, final_out, sim.now))
        final_until = sim.now() + 10 * max(sc.timeout_ms / 1000.0, 2.0)
        while not fc.done and sim.now() < final_until:
            sim.step()
        intents_left = drain_intents(sim, sc.drain_intents_s) if sc.drain_intents_s > 0 else None
    finally:
        sim.stop_all()
    history.save()
    final = final_out[0] if final_out else None
    verdict = check(history, final)
    if final is None or final.outcome != OK:
        verdict = Verdict(False, verdict.errors + [f"final read did not complete: "
                                                   f"{final.error if final else 'not started'}"])
    with open(os.path.join(run_dir, "final.json"), "w") as f:
        f.write(final.to_json() if final else "null")
    txns = history.txns
    summary: dict[str, object] = {
        "seed": seed,
        "transactions": len(txns),
        "commits": sum(t.outcome == OK for t in txns),
        "conflicts": sum(t.outcome == FAIL and bool(t.error) and "conflict" in t.error.lower()
                         for t in txns),
        "failed": sum(t.outcome == FAIL for t in txns),
        "indefinite": sum(t.outcome == INFO for t in txns),
    }
    if moves:
        summary["moves"] = moves_placed(moves)
    return finish_run(sc, sim, wall0, summary, verdict, intents_left, run_dir)


def schedule_moves(sim: Sim, sc: Any) -> list[Any]:
    """The shard_place calls of sc.move_every_ms (none if 0)."""
    if not sc.move_every_ms:
        return []
    args = sc.node_args
    factor = next((int(args[i + 1]) for i, a in enumerate(args[:-1])
                   if a == "--replication-factor"), 0)
    if factor < 2:
        raise ValueError("moving replicas needs --node-arg=--replication-factor --node-arg=N, N >= 2")
    return sim.schedule_moves(sc.move_every_ms / 1000.0, sc.seconds, min(factor, sc.nodes))


def moves_placed(calls: list[Any]) -> dict[str, object]:
    """How the shard_place calls were answered: placed, refused (the first
    refusal's text: a node down, a leader changing), or not at all."""
    placed = [c for c in calls if c.reply and c.reply.get("type") == "shard_place_ok"]
    refused = [c for c in calls if c.reply and c.reply.get("type") == "error"]
    return {"placed": len(placed), "refused": len(refused),
            "unanswered": len(calls) - len(placed) - len(refused),
            "first_refusal": refused[0].reply.get("text") if refused else None}


def finish_run(sc: Any, sim: Sim, wall0: float, summary: dict[str, object], verdict: Verdict,
               intents_left: Optional[dict[str, Any]], run_dir: str) -> "Result":
    """Adds the network's figures and the intents left to `summary`, fails the
    verdict if intents were left, and removes the run directory of a passing
    run unless asked to keep it. Shared by every workload."""
    summary.update({
        "kills": sim.stats.kills,
        "node_msgs": sim.stats.node_msgs,
        "dropped": sim.stats.dropped,
        "duplicated": sim.stats.duplicated,
        "partitioned": sim.stats.partitioned,
        "wall_s": round(time.monotonic() - wall0, 2),
    })
    if intents_left is not None:
        summary["intents_left"] = intents_left
        if any(v != 0 for v in intents_left.values()):
            verdict = Verdict(False, verdict.errors + [
                f"write intents left {sc.drain_intents_s:g}s after the run: {intents_left}"])
    if verdict.ok and not sc.keep and not sc.run_dir:
        shutil.rmtree(run_dir, ignore_errors=True)
    return Result(verdict, summary, run_dir)


def drain_intents(sim: Sim, seconds: float) -> dict[str, Any]:
    """Polls mvcc_stats on every node until each reports "intents": 0, for at
    most about `seconds` (each request may wait 1 s more). Returns the last answer per node: the count, or a string
    saying why there is none (no reply / no "intents" field)."""
    until = sim.now() + seconds
    left: dict[str, Any] = {}
    while True:
        for nid in sim.ids:
            r = sim.rpc(nid, {"type": "mvcc_stats"}, timeout=1.0)
            if r is None:
                left[nid] = "no reply"
            elif "intents" not in r:
                left[nid] = f"no 'intents' in {r.get('type')}"
            else:
                left[nid] = r["intents"]
        # a node without the field will not grow one: stop waiting then too
        if (all(v == 0 or (isinstance(v, str) and v.startswith("no '")) for v in left.values())
                or sim.now() >= until):
            return left
        sim.sleep(0.05)


def _range(s: str) -> tuple[float, float]:
    a, _, b = s.partition("-")
    return float(a), float(b or a)


def _partition(s: str) -> tuple[float, float, list[set[str]]]:
    """'T0-T1:n1,n2/n3' -> between T0 and T1 seconds, {n1,n2} and {n3} are cut apart."""
    times, _, groups = s.partition(":")
    t0, t1 = _range(times)
    return t0, t1, [set(g.split(",")) for g in groups.split("/")]


def main(argv: Optional[list[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--nodes", type=int, default=1)
    p.add_argument("--workload", choices=["txn", "lin-kv", "list-append", "rw-register"],
                   default="txn", help="txn: raw txn API (checker.py); the others: Maelstrom "
                   "workloads checked by workloads.py")
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--seed", type=int)
    p.add_argument("--isolation", choices=["serializable", "snapshot"], default="serializable")
    p.add_argument("--keys", type=int, default=5)
    p.add_argument("--timeout-ms", type=float, default=1000.0)
    p.add_argument("--kill-every", type=float, default=0.0, metavar="MS")
    p.add_argument("--down-ms", type=float, default=100.0)
    p.add_argument("--move-every", type=float, default=0.0, metavar="MS",
                   help="place a random shard on random nodes every MS (needs replicas)")
    p.add_argument("--data-dir-root")
    p.add_argument("--latency-ms", type=_range, default=(0.0, 0.0), metavar="A-B")
    p.add_argument("--drop", type=float, default=0.0)
    p.add_argument("--dup", type=float, default=0.0)
    p.add_argument("--partition", type=_partition, action="append", default=[],
                   metavar="T0-T1:n1,n2/n3")
    p.add_argument("--clients-on-network", action="store_true",
                   help="client requests/replies cross the simulated network too")
    p.add_argument("--drain-intents", type=float, default=0.0, metavar="S",
                   help="after the run, require every node's mvcc_stats intents to reach 0 "
                        "within S seconds")
    p.add_argument("--binary", default=DEFAULT_BINARY)
    p.add_argument("--node-arg", action="append", default=[], help="extra strata-node argument")
    p.add_argument("--run-dir")
    p.add_argument("--keep", action="store_true", help="keep the run directory on success too")
    a = p.parse_args(argv)
    sc = Scenario(nodes=a.nodes, clients=a.clients, seconds=a.seconds, seed=a.seed,
                  isolation=a.isolation, keys=a.keys, timeout_ms=a.timeout_ms,
                  kill_every_ms=a.kill_every, down_ms=a.down_ms, move_every_ms=a.move_every,
                  data_dir_root=a.data_dir_root,
                  net=NetConfig(a.latency_ms, a.drop, a.dup, a.partition, a.clients_on_network),
                  binary=a.binary, node_args=a.node_arg, run_dir=a.run_dir, keep=a.keep,
                  drain_intents_s=a.drain_intents, workload=a.workload)
    res = run_scenario(sc)
    print(json.dumps(res.summary))
    print(f"checker: {res.verdict}")
    if not res.verdict.ok or a.keep or a.run_dir:
        print(f"run directory: {res.run_dir}")
    return 0 if res.verdict.ok else 1


if __name__ == "__main__":
    sys.exit(main())
