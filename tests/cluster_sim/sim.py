"""A network simulator for strata-node processes.

Why: the cluster's bugs live in message timing (lost, late, duplicated
messages, partitions, crashes). Maelstrom needs a JVM; this needs only Python.
It starts N real nodes, owns every byte they exchange, and injects faults
from one seeded random.Random, so a failing run can be rerun with its seed
(the OS still schedules the processes, so replays are close, not exact).

Routing: a line a node writes to a client (dest "c...") goes to the client
callback; to a node (dest "n...") it is delivered to that node's stdin after
a random latency, unless dropped, duplicated, or cut by a partition.
"""
from __future__ import annotations

import heapq
import itertools
import json
import os
import random
import selectors
import signal
import subprocess
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional


@dataclass
class NetConfig:
    latency_ms: tuple[float, float] = (0.0, 0.0)
    drop: float = 0.0
    dup: float = 0.0
    # (t0, t1, groups): between t0 and t1 seconds, nodes in different groups cannot talk
    # (checked when a message is sent and again when it would be delivered; nodes in no
    # group form one more group of their own)
    partitions: list[tuple[float, float, list[set[str]]]] = field(default_factory=list)


@dataclass
class Stats:
    node_msgs: int = 0
    dropped: int = 0
    duplicated: int = 0
    partitioned: int = 0
    kills: int = 0
    restarts: int = 0
    client_msgs_to_down_node: int = 0


class Node:
    """One strata-node process; restartable with the same arguments."""

    def __init__(self, node_id: str, argv: list[str], run_dir: str) -> None:
        self.id = node_id
        self.argv = argv
        self.run_dir = run_dir
        self.proc: Optional[subprocess.Popen[bytes]] = None
        self.buf = b""
        self.incarnation = 0

    @property
    def up(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        self.incarnation += 1
        err = open(os.path.join(self.run_dir, f"{self.id}.{self.incarnation}.stderr"), "wb")
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=err, bufsize=0)
        err.close()
        os.set_blocking(self.proc.stdout.fileno(), False)
        self.buf = b""

    def write(self, msg: dict[str, Any]) -> bool:
        if not self.up:
            return False
        try:
            self.proc.stdin.write((json.dumps(msg) + "\n").encode())
            return True
        except (BrokenPipeError, OSError):
            return False

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()


class Sim:
    """Event loop over the nodes' stdout plus a timer heap (times are seconds since start)."""

    def __init__(self, node_argv: Callable[[str], list[str]], n_nodes: int, run_dir: str,
                 seed: int, net: Optional[NetConfig] = None) -> None:
        self.rng = random.Random(seed)
        self.seed = seed
        self.net = net or NetConfig()
        self.run_dir = run_dir
        self.ids = [f"n{i + 1}" for i in range(n_nodes)]
        self.nodes = {i: Node(i, node_argv(i), run_dir) for i in self.ids}
        self.sel = selectors.DefaultSelector()
        self.timers: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self.t0 = time.monotonic()
        self.stats = Stats()
        self.on_client_msg: Callable[[dict[str, Any]], None] = lambda m: None
        self._init_id = itertools.count(1)
        self.trace = open(os.path.join(run_dir, "net.log"), "w")

    # ---- time and timers
    def now(self) -> float:
        return time.monotonic() - self.t0

    def at(self, t: float, fn: Callable[[], None]) -> None:
        heapq.heappush(self.timers, (t, next(self._seq), fn))

    def after(self, dt: float, fn: Callable[[], None]) -> None:
        self.at(self.now() + dt, fn)

    # ---- node lifecycle
    def start_all(self) -> None:
        for n in self.nodes.values():
            self._start(n)

    def _start(self, n: Node) -> None:
        n.start()
        self.sel.register(n.proc.stdout, selectors.EVENT_READ, n)
        # init first: stdin is ordered, so anything written later sees an initialized node
        n.write({"src": "c0", "dest": n.id, "body": {"type": "init", "msg_id": next(self._init_id),
                                                    "node_id": n.id, "node_ids": self.ids}})

    def kill(self, node_id: str) -> None:
        n = self.nodes[node_id]
        if not n.up:
            return
        self.sel.unregister(n.proc.stdout)
        n.kill()
        self.stats.kills += 1
        self.trace.write(f"{self.now():.3f} KILL {node_id}\n")

    def restart(self, node_id: str) -> None:
        n = self.nodes[node_id]
        if n.up:
            return
        self._start(n)
        self.stats.restarts += 1
        self.trace.write(f"{self.now():.3f} RESTART {node_id}\n")

    def schedule_kills(self, every_s: float, down_s: float, until: float) -> None:
        """Every `every_s` seconds kill a random node; restart it `down_s` later."""
        t = every_s
        while t < until:
            victim = self.rng.choice(self.ids)
            self.at(t, lambda v=victim: self.kill(v))
            self.at(t + down_s, lambda v=victim: self.restart(v))
            t += every_s

    def stop_all(self) -> None:
        for n in self.nodes.values():
            if n.up:
                self.sel.unregister(n.proc.stdout)
                n.kill()
        self.trace.close()

    # ---- messages
    def send_from_client(self, msg: dict[str, Any]) -> bool:
        """A client's request goes straight to the node (clients are not on the faulty network)."""
        ok = self.nodes[msg["dest"]].write(msg)
        if not ok:
            self.stats.client_msgs_to_down_node += 1
        return ok

    def _cut(self, a: str, b: str, t: float) -> bool:
        for t0, t1, groups in self.net.partitions:
            if t0 <= t < t1:
                ga = next((i for i, g in enumerate(groups) if a in g), None)
                gb = next((i for i, g in enumerate(groups) if b in g), None)
                if ga != gb:
                    return True
        return False

    def _route(self, msg: dict[str, Any]) -> None:
        dest = str(msg.get("dest", ""))
        if dest.startswith("c"):
            self.on_client_msg(msg)
            return
        if dest not in self.nodes:
            self.trace.write(f"{self.now():.3f} UNROUTABLE {json.dumps(msg)}\n")
            return
        self.stats.node_msgs += 1
        src = str(msg.get("src"))
        if self._cut(src, dest, self.now()):
            self.stats.partitioned += 1
            return
        if self.rng.random() < self.net.drop:
            self.stats.dropped += 1
            return
        copies = 2 if self.rng.random() < self.net.dup else 1
        self.stats.duplicated += copies - 1
        lo, hi = self.net.latency_ms
        for _ in range(copies):
            delay = self.rng.uniform(lo, hi) / 1000.0
            self.after(delay, lambda m=msg: self._deliver(src, dest, m))

    def _deliver(self, src: str, dest: str, msg: dict[str, Any]) -> None:
        """A partition that began while the message was in flight cuts it too."""
        if self._cut(src, dest, self.now()):
            self.stats.partitioned += 1
            return
        self.nodes[dest].write(msg)

    def _read(self, n: Node) -> None:
        try:
            chunk = n.proc.stdout.read(1 << 16)
        except BlockingIOError:
            return
        if not chunk:  # EOF: the process died on its own
            self.sel.unregister(n.proc.stdout)
            self.trace.write(f"{self.now():.3f} EOF {n.id} rc={n.proc.wait()}\n")
            return
        n.buf += chunk
        *lines, n.buf = n.buf.split(b"\n")
        for line in lines:
            if not line.strip():
                continue
            try:
                msg = json.loads(line)
            except json.JSONDecodeError:
                self.trace.write(f"{self.now():.3f} BADLINE {n.id} {line[:200]!r}\n")
                continue
            self._route(msg)

    def step(self, max_wait: float = 0.01) -> None:
        """Run due timers, then wait for node output up to the next timer or max_wait."""
        now = self.now()
        while self.timers and self.timers[0][0] <= now:
            _, _, fn = heapq.heappop(self.timers)
            fn()
        wait = max_wait
        if self.timers:
            wait = max(0.0, min(wait, self.timers[0][0] - self.now()))
        if not self.sel.get_map():
            time.sleep(wait)
            return
        for key, _ in self.sel.select(wait):
            self._read(key.data)
