#!/usr/bin/env python3
"""Cluster throughput / latency benchmark over the cluster_sim harness.

For each node count (default 1, 3, 5) and each workload it starts a fresh
in-memory cluster of real `strata-node` processes under
tests/cluster_sim/sim.py (zero simulated latency, no faults), runs C
closed-loop clients for D seconds and reports committed txn/s, aborts,
client-observed latency percentiles of committed transactions and the share
of one-phase commits (from every node's `mvcc_stats`). Every transaction is
one Maelstrom `txn` request, so the round trips inside it are the node's own.

Workloads (keys are strings "k<i>"; their owning shard is discovered by
sending `mvcc_get` to n1 and watching where its `forward` goes):
  single  [["r",a,null],["w",k1,v],...]  a and 2-4 written keys all on ONE shard
  multi   [["r",a,null],["w",k1,v],...]  2-4 written keys on DISTINCT shards
          (at most min(4, nodes)); a on any shard. With 1 node = `single`.
  append  [["r",k,null],["append",k2,v]] on uniformly random keys (Maelstrom
          txn-list-append style; may be single- or multi-shard)
Each request goes to a random node (the coordinator).

Latencies are measured in the Python client loop and include the simulator's
Python routing of every client and node-to-node message (JSON decode/encode,
a timer heap, one process on a 2-core box shared with the nodes). The
`--ceiling` runs (default on) show how much of that is harness:
  * echo:   the same client loop against fake_node.py `echo` through the sim
            (the harness's own request ceiling, no store at all);
  * direct: the 1-node `single` workload written straight to one strata-node's
            stdin without the sim (no routing layer; still the Python client).
CPU columns: py_cpu = CPU cores used by this Python process (clients + sim),
node_cpu = CPU cores used by all node processes together, over the run.

Usage (from the repo root, after building build/release/strata-node):
  python3 bench/cluster_bench.py                       # full default run, ~3 min
The 1PC share counts commits from warmup on (mvcc_stats read before the
warmup and after the run); it is a ratio, so that does not bias it.
  python3 bench/cluster_bench.py --nodes 3 --seconds 2 --repeat 1 --workloads single,multi
"""
from __future__ import annotations

import argparse
import json
import math
import os
import random
import selectors
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable, Optional

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "cluster_sim"))
from sim import Sim  # noqa: E402  (the project's simulator, used read-only)

ABORT_CODES = {30, 14}  # txn-conflict, abort
CLK_TCK = os.sysconf("SC_CLK_TCK")


def proc_cpu_s(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime
    except (OSError, IndexError, ValueError):
        return 0.0


def pct(sorted_vals: list[float], p: float) -> Optional[float]:
    if not sorted_vals:
        return None
    # nearest rank: the smallest value with at least p% of the values at or below it
    i = max(0, min(len(sorted_vals) - 1, math.ceil(round(p * len(sorted_vals) / 100.0, 9)) - 1))
    return sorted_vals[i]


# ---------------------------------------------------------------- transports
class SimTransport:
    """Clients talk to nodes through the project's Sim (node messages routed by it)."""

    def __init__(self, sim: Sim) -> None:
        self.sim = sim

    def set_handler(self, fn: Callable[[dict[str, Any]], None]) -> None:
        self.sim.on_client_msg = fn

    def send(self, msg: dict[str, Any]) -> None:
        self.sim.send_from_client(msg)

    def step(self, wait: float) -> None:
        self.sim.step(wait)

    def pids(self) -> list[int]:
        return [n.proc.pid for n in self.sim.nodes.values() if n.proc is not None]

    def node_msgs(self) -> int:
        return self.sim.stats.node_msgs


class DirectTransport:
    """One strata-node, requests written straight to its stdin (no Sim)."""

    def __init__(self, argv: list[str], run_dir: str) -> None:
        err = open(os.path.join(run_dir, "direct.stderr"), "wb")
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=err, bufsize=0)
        err.close()
        os.set_blocking(self.proc.stdout.fileno(), False)
        self.sel = selectors.DefaultSelector()
        self.sel.register(self.proc.stdout, selectors.EVENT_READ)
        self.buf = b""
        self.handler: Callable[[dict[str, Any]], None] = lambda m: None
        self.send({"src": "c0", "dest": "n1", "body": {"type": "init", "msg_id": 0,
                                                       "node_id": "n1", "node_ids": ["n1"]}})
        got: list[dict[str, Any]] = []
        self.handler = got.append
        t = time.monotonic()
        while not got and time.monotonic() - t < 5:
            self.step(0.05)

    def set_handler(self, fn: Callable[[dict[str, Any]], None]) -> None:
        self.handler = fn

    def send(self, msg: dict[str, Any]) -> None:
        self.proc.stdin.write((json.dumps(msg) + "\n").encode())

    def step(self, wait: float) -> None:
        if not self.sel.select(wait):
            return
        chunk = self.proc.stdout.read(1 << 16)
        if not chunk:
            return
        self.buf += chunk
        *lines, self.buf = self.buf.split(b"\n")
        for line in lines:
            if line.strip():
                self.handler(json.loads(line))

    def pids(self) -> list[int]:
        return [self.proc.pid]

    def node_msgs(self) -> int:
        return 0

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()


# ---------------------------------------------------------------- workloads
class Workload:
    def __init__(self, name: str, shard_keys: dict[str, list[str]], node_ids: list[str],
                 rng: random.Random) -> None:
        self.name = name
        self.shard_keys = shard_keys
        self.shards = sorted(shard_keys)
        self.all_keys = [k for s in self.shards for k in shard_keys[s]]
        self.node_ids = node_ids
        self.rng = rng
        self.counter = 0

    def next_body(self) -> tuple[str, dict[str, Any]]:
        """(coordinator node, request body without msg_id)."""
        r = self.rng
        self.counter += 1
        v = self.counter
        if self.name == "echo":
            return r.choice(self.node_ids), {"type": "echo"}
        if self.name == "append":
            k, k2 = r.choice(self.all_keys), r.choice(self.all_keys)
            ops = [["r", k, None], ["append", k2, v]]
        else:
            n_writes = r.randint(2, 4)
            if self.name == "single":
                keys = self.shard_keys[r.choice(self.shards)]
                picked = r.sample(keys, n_writes + 1)
                read, writes = picked[0], picked[1:]
            else:  # multi: distinct shards
                n_writes = max(2, min(n_writes, len(self.shards))) if len(self.shards) > 1 else n_writes
                if len(self.shards) > 1:
                    shards = r.sample(self.shards, n_writes)
                    writes = [r.choice(self.shard_keys[s]) for s in shards]
                else:
                    writes = r.sample(self.all_keys, n_writes)
                read = r.choice(self.all_keys)
                while read in writes:
                    read = r.choice(self.all_keys)
            ops = [["r", read, None]] + [["w", k, v] for k in writes]
        return r.choice(self.node_ids), {"type": "txn", "txn": ops}


def run_clients(tr: Any, wl: Workload, clients: int, seconds: float, warmup: float,
                timeout_s: float) -> dict[str, Any]:
    """Closed loop: each client keeps one request in flight. Counts only
    replies to requests sent inside the measured window [warmup, warmup+seconds)."""
    now = time.monotonic
    ids = [f"c{i + 1}" for i in range(clients)]
    inflight: dict[str, tuple[int, float]] = {}  # client -> (msg_id, sent_at)
    next_id = [0]
    t_start = now()
    t_meas, t_end = t_start + warmup, t_start + warmup + seconds
    lat: list[float] = []
    res = {"ok": 0, "aborts": 0, "errors": 0, "timeouts": 0, "error_codes": {}}

    def send(c: str) -> None:
        if now() >= t_end:
            return
        next_id[0] += 1
        node, body = wl.next_body()
        body["msg_id"] = next_id[0]
        inflight[c] = (next_id[0], now())
        tr.send({"src": c, "dest": node, "body": body})

    def on_reply(msg: dict[str, Any]) -> None:
        c, body = msg.get("dest"), msg.get("body", {})
        cur = inflight.get(c)
        if cur is None or body.get("in_reply_to") != cur[0]:
            return  # late reply to a timed-out request
        t = now()
        sent = cur[1]
        del inflight[c]
        if sent >= t_meas:
            typ = body.get("type")
            if typ in ("txn_ok", "echo_ok"):
                res["ok"] += 1
                lat.append(t - sent)
            elif typ == "error":
                code = body.get("code")
                res["error_codes"][str(code)] = res["error_codes"].get(str(code), 0) + 1
                res["aborts" if code in ABORT_CODES else "errors"] += 1
        send(c)

    tr.set_handler(on_reply)
    pids = tr.pids()
    cpu0 = sum(proc_cpu_s(p) for p in pids)
    py0 = time.process_time()
    msgs0 = tr.node_msgs()
    for c in ids:
        send(c)
    last_scan = now()
    meas_cpu: Optional[tuple[float, float, int]] = None
    while True:
        t = now()
        if meas_cpu is None and t >= t_meas:
            meas_cpu = (sum(proc_cpu_s(p) for p in pids), time.process_time(), tr.node_msgs())
        if t >= t_end and (not inflight or t >= t_end + timeout_s):
            break
        tr.step(0.005)
        if t - last_scan > 0.05:
            last_scan = t
            for c, (_, sent) in list(inflight.items()):
                if t - sent > timeout_s:
                    del inflight[c]
                    if sent >= t_meas:
                        res["timeouts"] += 1
                    send(c)
    t_done = now()
    if meas_cpu is None:
        meas_cpu = (cpu0, py0, msgs0)
    span = t_done - t_meas
    lat.sort()
    done = res["ok"] + res["aborts"]
    out = {
        "txn_per_s": res["ok"] / seconds,
        "aborts_per_s": res["aborts"] / seconds,
        "abort_pct": 100.0 * res["aborts"] / done if done else 0.0,
        "committed": res["ok"], "aborted": res["aborts"], "errors": res["errors"],
        "timeouts": res["timeouts"], "error_codes": res["error_codes"],
        "p50_ms": None, "p90_ms": None, "p99_ms": None, "p999_ms": None,
        "node_cpu_cores": (sum(proc_cpu_s(p) for p in pids) - meas_cpu[0]) / span,
        "py_cpu_cores": (time.process_time() - meas_cpu[1]) / span,
        "node_msgs_per_txn": ((tr.node_msgs() - meas_cpu[2]) / (res["ok"] + res["aborts"] + res["errors"])
                              if (res["ok"] + res["aborts"] + res["errors"]) else 0.0),
    }
    for name, p in (("p50_ms", 50), ("p90_ms", 90), ("p99_ms", 99), ("p999_ms", 99.9)):
        v = pct(lat, p)
        out[name] = None if v is None else v * 1000.0
    return out


# ---------------------------------------------------------------- cluster setup
def start_sim(argv: Callable[[str], list[str]], n: int, run_dir: str, seed: int) -> Sim:
    sim = Sim(argv, n, run_dir, seed)
    sim.start_all()
    if not sim.wait_ready(10.0):
        sim.stop_all()
        raise SystemExit(f"nodes did not answer init (see {run_dir})")
    return sim


def discover_shards(sim: Sim, per_shard: int) -> dict[str, list[str]]:
    """Keys per owning node: mvcc_get each candidate via n1, watch n1's forwards."""
    ids = sim.ids
    if len(ids) == 1:
        return {"n1": [f"k{i}" for i in range(per_shard)]}
    owners: dict[str, list[str]] = {i: [] for i in ids}
    rule = sim.observe(src="n1", type="forward")
    i = 0
    while min(len(v) for v in owners.values()) < per_shard:
        if i > 200 * per_shard * len(ids):
            raise SystemExit(f"key discovery failed: {[(k, len(v)) for k, v in owners.items()]}")
        batch = [f"k{j}" for j in range(i, i + 256)]
        i += 256
        rule.seen.clear()
        calls = [sim.call("n1", {"type": "mvcc_get", "key": k}) for k in batch]
        if not sim.run_until(lambda: all(c.done for c in calls), 10.0):
            raise SystemExit("key discovery: n1 did not answer mvcc_get")
        fwd = {}
        for _, msg in rule.seen:
            req = msg["body"].get("request", {})
            if isinstance(req, dict) and "key" in req:
                fwd[req["key"]] = msg["dest"]
        for k in batch:
            owners[fwd.get(k, "n1")].append(k)
    sim.remove_rule(rule)
    return {node: keys[:per_shard] for node, keys in owners.items()}


def cluster_stats(sim: Sim) -> dict[str, Optional[int]]:
    one = two = 0
    have = False
    for node in sim.ids:
        r = sim.rpc(node, {"type": "mvcc_stats"}, 5.0) or {}
        if "commits_one_phase" in r:
            have = True
            one += int(r["commits_one_phase"])
            two += int(r.get("commits_two_phase", 0))
    return {"one_phase": one if have else None, "two_phase": two if have else None}


def one_run(a: argparse.Namespace, n: int, workload: str, rep: int, run_root: str) -> dict[str, Any]:
    run_dir = tempfile.mkdtemp(prefix=f"n{n}-{workload}-{rep}-", dir=run_root)
    seed = a.seed + 1000 * n + 10 * rep + sum(map(ord, workload)) % 7
    rng = random.Random(seed)
    if workload == "echo":
        fake = os.path.join(ROOT, "tests", "cluster_sim", "fake_node.py")
        sim = start_sim(lambda i: [sys.executable, fake], n, run_dir, seed)
        shard_keys = {"n1": ["k0"]}
        tr: Any = SimTransport(sim)
    elif workload == "direct":
        tr = DirectTransport([a.binary], run_dir)
        shard_keys = {"n1": [f"k{i}" for i in range(a.keys_per_shard)]}
        sim = None
    else:
        sim = start_sim(lambda i: [a.binary], n, run_dir, seed)
        shard_keys = discover_shards(sim, a.keys_per_shard)
        tr = SimTransport(sim)
    try:
        wl = Workload("single" if workload == "direct" else workload, shard_keys,
                      ["n1"] if sim is None else sim.ids, rng)
        before = cluster_stats(sim) if sim is not None and workload != "echo" else None
        r = run_clients(tr, wl, a.clients, a.seconds, a.warmup, a.timeout)
        if before is not None:
            after = cluster_stats(sim)
            if after["one_phase"] is not None and before["one_phase"] is not None:
                one = after["one_phase"] - before["one_phase"]
                two = after["two_phase"] - before["two_phase"]
                r["commits_one_phase"], r["commits_two_phase"] = one, two
                r["one_phase_share"] = one / (one + two) if one + two else None
        return r
    finally:
        if sim is not None:
            sim.stop_all()
        else:
            tr.close()


# ---------------------------------------------------------------- report
def fmt(v: Any, nd: int = 2) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:.{nd}f}"
    return str(v)


def median_of(runs: list[dict[str, Any]], key: str) -> Any:
    vals = [r[key] for r in runs if r.get(key) is not None]
    return statistics.median(vals) if vals else None


def main(argv: Optional[list[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--nodes", default="1,3,5", help="comma-separated node counts")
    p.add_argument("--workloads", default="single,multi,append")
    p.add_argument("--seconds", type=float, default=5.0, help="measured seconds per run")
    p.add_argument("--warmup", type=float, default=0.3, help="unmeasured seconds before each run")
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--keys-per-shard", type=int, default=200)
    p.add_argument("--timeout", type=float, default=2.0, help="client request timeout (s)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--no-ceiling", action="store_true", help="skip the echo/direct harness runs")
    p.add_argument("--ceiling-repeat", type=int, default=1, help="repeats of the echo/direct runs")
    p.add_argument("--binary", default=os.environ.get(
        "STRATA_NODE_BINARY", os.path.join(ROOT, "build", "release", "strata-node")))
    p.add_argument("--keep", action="store_true", help="keep the run directories")
    a = p.parse_args(argv)
    if not os.access(a.binary, os.X_OK):
        raise SystemExit(f"no strata-node binary at {a.binary} (build it or pass --binary)")
    node_counts = [int(x) for x in a.nodes.split(",") if x]
    workloads = [w for w in a.workloads.split(",") if w]
    configs = [(n, w) for n in node_counts for w in workloads]
    if not a.no_ceiling:
        configs += [(1, "echo"), (1, "direct")]
    run_root = tempfile.mkdtemp(prefix="cluster_bench-")
    rows = []
    t0 = time.monotonic()
    for n, w in configs:
        runs = []
        reps = a.ceiling_repeat if w in ("echo", "direct") else a.repeat
        for rep in range(reps):
            r = one_run(a, n, w, rep, run_root)
            runs.append(r)
            print(f"# n={n} {w} rep {rep + 1}/{reps}: {r['txn_per_s']:.0f}/s "
                  f"abort {r['abort_pct']:.1f}% p50 {fmt(r['p50_ms'])} ms "
                  f"p99 {fmt(r['p99_ms'])} ms 1pc {fmt(r.get('one_phase_share'), 3)} "
                  f"py_cpu {r['py_cpu_cores']:.2f} node_cpu {r['node_cpu_cores']:.2f}",
                  file=sys.stderr, flush=True)
        med = {k: median_of(runs, k) for k in (
            "txn_per_s", "aborts_per_s", "abort_pct", "p50_ms", "p90_ms", "p99_ms", "p999_ms",
            "one_phase_share", "py_cpu_cores", "node_cpu_cores", "node_msgs_per_txn")}
        row = {"nodes": n, "workload": w, "clients": a.clients, "seconds": a.seconds,
               "repeat": reps, "median": med,
               "single_node": n == 1 and w not in ("echo",),
               "runs": runs}
        rows.append(row)
        print(json.dumps(row, sort_keys=True), flush=True)
    print(f"\nstrata cluster bench: {a.clients} closed-loop clients, {a.seconds:g} s measured "
          f"(+{a.warmup:g} s warmup), median of {a.repeat} (echo/direct: {a.ceiling_repeat}); "
          f"sim latency 0; "
          f"latencies client-observed incl. Python sim routing; wall {time.monotonic() - t0:.0f} s\n")
    print("| nodes | workload | txn/s | vs 1 node | abort % | p50 ms | p90 ms | p99 ms | p99.9 ms "
          "| 1PC share | node msgs/txn | py CPU | node CPU |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    # The same workload on one node, for the ratio column.
    one_node = {row["workload"]: row["median"]["txn_per_s"] for row in rows
                if row["nodes"] == 1 and row["median"]["txn_per_s"]}
    for row in rows:
        m = row["median"]
        w = row["workload"]
        if w == "echo":
            share, label = "-", "echo (harness ceiling: fake node via sim)"
        elif w == "direct":
            share, label = "single node", "single, direct (no sim)"
        else:
            share = "single node" if m["one_phase_share"] is None and row["nodes"] == 1 else (
                "n/a" if m["one_phase_share"] is None else f"{100 * m['one_phase_share']:.1f}%")
            label = w
        base = one_node.get(w)
        ratio = f"×{m['txn_per_s'] / base:.2f}" if base and row["nodes"] > 1 else "-"
        print(f"| {row['nodes']} | {label} | {m['txn_per_s']:.0f} | {ratio} | {fmt(m['abort_pct'], 1)} | "
              f"{fmt(m['p50_ms'])} | {fmt(m['p90_ms'])} | {fmt(m['p99_ms'])} | {fmt(m['p999_ms'])} | "
              f"{share} | {fmt(m['node_msgs_per_txn'], 1)} | {fmt(m['py_cpu_cores'])} | "
              f"{fmt(m['node_cpu_cores'])} |")
    if not a.keep:
        import shutil
        shutil.rmtree(run_root, ignore_errors=True)
    else:
        print(f"\nrun directories kept in {run_root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
