"""A network simulator for strata-node processes.

Why: the cluster's bugs live in message timing (lost, late, duplicated
messages, partitions, crashes). Maelstrom needs a JVM; this needs only Python.
It starts N real nodes, owns every byte they exchange, and injects faults
from one seeded random.Random, so a failing run can be rerun with its seed
(the OS still schedules the processes, so replays are close, not exact).

Routing: a line a node writes to a client (dest "c...") goes to the client
callback; to a node (dest "n...") it is delivered to that node's stdin after
a random latency, unless dropped, duplicated, or cut by a partition. With
NetConfig.clients_on_network, client requests and replies also cross the
network (latency, partitions and rules; random drop/dup stay node-to-node).

Scenario hooks (for staging one exact interleaving rather than a random one):
  * Rule: drop / delay / hold (until released) / observe the messages that
    match a (src, dest, body type) pattern, optionally only the first K;
  * Trigger: run an action (e.g. kill the sender) right after a node sends
    its N-th matching message; nothing the node wrote after it escapes, and
    the message itself is delivered or dropped as configured;
  * call / rpc / run_until: a test sends one request to one node and waits
    for the reply (or a condition) with a timeout, while the loop runs.
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
from typing import Any, Callable, Iterable, Optional, Union

# A pattern over a message field: None matches anything, a string matches
# itself, any other collection matches its members.
Pattern = Union[None, str, Iterable[str]]


def _matches(p: Pattern, value: str) -> bool:
    if p is None:
        return True
    if isinstance(p, str):
        return p == value
    return value in p


def _is_client(node_id: str) -> bool:
    return node_id.startswith("c")


@dataclass
class NetConfig:
    latency_ms: tuple[float, float] = (0.0, 0.0)
    drop: float = 0.0
    dup: float = 0.0
    # (t0, t1, groups): between t0 and t1 seconds, nodes in different groups cannot talk
    # (checked when a message is sent and again when it would be delivered; nodes in no
    # group form one more group of their own)
    # (client ids may be named in a group too; a client in no group reaches everyone)
    partitions: list[tuple[float, float, list[set[str]]]] = field(default_factory=list)
    # client <-> node messages cross the network too (latency, partitions, rules)
    clients_on_network: bool = False


@dataclass
class Rule:
    """What to do with the messages matching (src, dest, type) and `when`.

    action: "drop"; "delay" (delay_ms on top of the latency); "hold" (kept
    until Sim.release(rule)); "observe" (only recorded). Only the first
    `count` matches are acted on (None: all). Every match acted on is
    recorded in `seen` as (time, message), so tests can ask what happened.
    """
    action: str
    src: Pattern = None
    dest: Pattern = None
    type: Pattern = None
    delay_ms: float = 0.0
    count: Optional[int] = None
    when: Optional[Callable[[dict[str, Any]], bool]] = None
    seen: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    held: list[dict[str, Any]] = field(default_factory=list)
    released: bool = False  # a hold rule that was released lets later matches pass

    def __post_init__(self) -> None:
        assert self.action in ("drop", "delay", "hold", "observe"), self.action

    def matches(self, msg: dict[str, Any]) -> bool:
        if self.count is not None and len(self.seen) >= self.count:
            return False
        if self.action == "hold" and self.released:
            return False
        body = msg.get("body", {})
        return (_matches(self.src, str(msg.get("src"))) and _matches(self.dest, str(msg.get("dest")))
                and _matches(self.type, str(body.get("type"))) and (self.when is None or self.when(msg)))


@dataclass
class Trigger:
    """Run `action` right after a matching message is sent (the `nth` match), once.

    The message is delivered (deliver=True) or dropped; if the action kills
    the sender, nothing the sender wrote after that message is routed.
    """
    action: Callable[[], None]
    src: Pattern = None
    dest: Pattern = None
    type: Pattern = None
    when: Optional[Callable[[dict[str, Any]], bool]] = None
    nth: int = 1
    deliver: bool = True
    matched: int = 0
    fired_at: Optional[float] = None
    message: Optional[dict[str, Any]] = None

    @property
    def fired(self) -> bool:
        return self.fired_at is not None


@dataclass
class Call:
    """One request a test sent to one node, and its reply once it arrives."""
    node: str
    body: dict[str, Any]
    sent_at: float
    reply: Optional[dict[str, Any]] = None  # the first reply's body
    replied_at: Optional[float] = None
    replies: list[dict[str, Any]] = field(default_factory=list)  # all, duplicates too

    @property
    def done(self) -> bool:
        return self.reply is not None

    @property
    def elapsed(self) -> Optional[float]:
        return None if self.replied_at is None else self.replied_at - self.sent_at


@dataclass
class Stats:
    node_msgs: int = 0
    dropped: int = 0
    duplicated: int = 0
    partitioned: int = 0
    kills: int = 0
    restarts: int = 0
    client_msgs_to_down_node: int = 0
    client_msgs: int = 0        # client <-> node messages routed over the network
    rule_dropped: int = 0
    rule_delayed: int = 0
    held: int = 0
    released: int = 0
    triggers_fired: int = 0


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
        if self.proc is not None:
            for f in (self.proc.stdin, self.proc.stdout):
                try:
                    f.close()
                except OSError:
                    pass


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
        self.trace_messages = False  # also log every routed message to net.log
        self.rules: list[Rule] = []
        self.triggers: list[Trigger] = []
        self.ready: set[str] = set()  # nodes whose latest init was answered
        self._calls: dict[tuple[str, int], Call] = {}
        self._call_ids = itertools.count(1)

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
        self.ready.discard(n.id)
        n.start()
        self.sel.register(n.proc.stdout, selectors.EVENT_READ, n)
        # init first: stdin is ordered, so anything written later sees an initialized node
        n.write({"src": "c0", "dest": n.id, "body": {"type": "init", "msg_id": next(self._init_id),
                                                    "node_id": n.id, "node_ids": self.ids}})

    def kill(self, node_id: str) -> None:
        n = self.nodes[node_id]
        if not n.up:
            return
        self._unregister(n)
        n.kill()
        self.ready.discard(node_id)
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

    def schedule_moves(self, every_s: float, until: float, replicas: int) -> list[Call]:
        """Every `every_s` seconds ask a random node to place a random shard's
        replicas on `replicas` random nodes (strata-node's shard_place; one
        shard a node). The calls, answered or not, are returned."""
        calls: list[Call] = []
        t = every_s
        while t < until:
            shard = self.rng.randrange(len(self.ids))
            placement = self.rng.sample(self.ids, replicas)
            asked = self.rng.choice(self.ids)
            self.at(t, lambda a=asked, b={"type": "shard_place", "shard": shard, "nodes": placement}:
                    calls.append(self.call(a, b, src="cmover")))
            t += every_s
        return calls

    def stop_all(self) -> None:
        for n in self.nodes.values():
            if n.proc is not None:
                self._unregister(n)
                n.kill()
        if not self.trace.closed:
            self.trace.close()

    def _unregister(self, n: Node) -> None:
        try:
            self.sel.unregister(n.proc.stdout)
        except (KeyError, ValueError):
            pass  # already unregistered (EOF seen) or closed

    # ---- scenario hooks
    def add_rule(self, rule: Rule) -> Rule:
        """Rules are checked in order; observe rules record and go on, the first
        matching drop/delay/hold rule acts and ends the check."""
        self.rules.append(rule)
        return rule

    def drop(self, **kw: Any) -> Rule:
        return self.add_rule(Rule("drop", **kw))

    def delay(self, delay_ms: float, **kw: Any) -> Rule:
        return self.add_rule(Rule("delay", delay_ms=delay_ms, **kw))

    def hold(self, **kw: Any) -> Rule:
        return self.add_rule(Rule("hold", **kw))

    def observe(self, **kw: Any) -> Rule:
        return self.add_rule(Rule("observe", **kw))

    def remove_rule(self, rule: Rule) -> None:
        if rule in self.rules:
            self.rules.remove(rule)

    def release(self, rule: Rule) -> int:
        """Sends what a hold rule kept, in order, and lets later matches pass.
        Released messages go through the other rules (a cut_link added since
        drops them), the usual latency and partitions, but no random drop/dup.
        Returns how many were released."""
        rule.released = True
        held, rule.held = rule.held, []
        for msg in held:
            self.stats.released += 1
            self._trace("RELEASE", msg)
            extra = self._apply_rules(msg)
            if extra is not None:
                self._send_over_network(msg, extra=extra, random_faults=False)
        return len(held)

    def on_send(self, action: Callable[[], None], **kw: Any) -> Trigger:
        t = Trigger(action, **kw)
        self.triggers.append(t)
        return t

    def kill_after_send(self, node_id: str, deliver: bool = True, **kw: Any) -> Trigger:
        """Kill `node_id` right after it sends the (nth) message matching kw."""
        return self.on_send(lambda: self.kill(node_id), src=node_id, deliver=deliver, **kw)

    def partition_now(self, groups: list[set[str]], seconds: float) -> None:
        """A partition starting now (see NetConfig.partitions)."""
        t = self.now()
        self.net.partitions.append((t, t + seconds, groups))
        self.trace.write(f"{t:.3f} PARTITION {seconds:.3f}s {[sorted(g) for g in groups]}\n")

    def cut_link(self, a: str, b: str, seconds: Optional[float] = None) -> Rule:
        """Drops everything between a and b (both ways) for `seconds` (None: until
        remove_rule); other links stay up, unlike a group partition."""
        r = self.drop(src={a, b}, dest={a, b})
        if seconds is not None:
            self.after(seconds, lambda: self.remove_rule(r))
        return r

    # ---- a test's own requests
    def call(self, node_id: str, body: dict[str, Any], src: str = "cx") -> Call:
        """Sends one request from client `src` to `node_id`; the reply fills the Call."""
        mid = next(self._call_ids)
        c = Call(node_id, dict(body, msg_id=mid), self.now())
        self._calls[(src, mid)] = c
        self.send_from_client({"src": src, "dest": node_id, "body": c.body})
        return c

    def run_until(self, pred: Callable[[], bool], timeout: float) -> bool:
        """Runs the loop until pred() holds (True) or `timeout` seconds pass (False)."""
        until = self.now() + timeout
        while not pred():
            if self.now() >= until:
                return False
            self.step(min(0.01, max(0.0, until - self.now())))
        return True

    def sleep(self, seconds: float) -> None:
        """Runs the loop for `seconds`."""
        self.run_until(lambda: False, seconds)

    def rpc(self, node_id: str, body: dict[str, Any], timeout: float = 2.0,
            src: str = "cx") -> Optional[dict[str, Any]]:
        """call + wait: the reply body, or None if none came within `timeout`."""
        c = self.call(node_id, body, src)
        self.run_until(lambda: c.done, timeout)
        return c.reply

    def wait_ready(self, timeout: float = 5.0) -> bool:
        """Waits until every node that is up has answered its init."""
        return self.run_until(lambda: all(n.id in self.ready for n in self.nodes.values() if n.up),
                              timeout)

    # ---- messages
    def send_from_client(self, msg: dict[str, Any]) -> bool:
        """A client's request: straight to the node, or over the network with
        NetConfig.clients_on_network (then the return value is always True)."""
        if self.net.clients_on_network:
            self._route(msg)
            return True
        ok = self.nodes[msg["dest"]].write(msg)
        if not ok:
            self.stats.client_msgs_to_down_node += 1
        return ok

    def _trace(self, what: str, msg: dict[str, Any]) -> None:
        self.trace.write(f"{self.now():.3f} {what} {json.dumps(msg)}\n")

    def _group(self, groups: list[set[str]], x: str) -> Optional[int]:
        return next((i for i, g in enumerate(groups) if x in g), None)

    def _cut(self, a: str, b: str, t: float) -> bool:
        for t0, t1, groups in self.net.partitions:
            if t0 <= t < t1:
                ga, gb = self._group(groups, a), self._group(groups, b)
                if (ga is None and _is_client(a)) or (gb is None and _is_client(b)):
                    continue  # a client named in no group reaches everyone
                if ga != gb:
                    return True
        return False

    def _fire_triggers(self, msg: dict[str, Any]) -> bool:
        """Runs the triggers this message sets off; False if it must be dropped."""
        deliver = True
        body = msg.get("body", {})
        for t in self.triggers:
            if t.fired or not (_matches(t.src, str(msg.get("src"))) and
                               _matches(t.dest, str(msg.get("dest"))) and
                               _matches(t.type, str(body.get("type"))) and
                               (t.when is None or t.when(msg))):
                continue
            t.matched += 1
            if t.matched < t.nth:
                continue
            t.fired_at, t.message = self.now(), msg
            self.stats.triggers_fired += 1
            self._trace("TRIGGER" + ("" if t.deliver else " (dropped)"), msg)
            deliver = deliver and t.deliver
            t.action()
        return deliver

    def _apply_rules(self, msg: dict[str, Any]) -> Optional[float]:
        """None: the message is dropped or held; else the extra delay in seconds."""
        for r in self.rules:
            if not r.matches(msg):
                continue
            r.seen.append((self.now(), msg))
            if r.action == "observe":
                continue
            if r.action == "drop":
                self.stats.rule_dropped += 1
                self._trace("RULE-DROP", msg)
                return None
            if r.action == "hold":
                self.stats.held += 1
                r.held.append(msg)
                self._trace("HOLD", msg)
                return None
            self.stats.rule_delayed += 1
            self._trace(f"DELAY {r.delay_ms:g}ms", msg)
            return r.delay_ms / 1000.0
        return 0.0

    def _route(self, msg: dict[str, Any]) -> None:
        src, dest = str(msg.get("src")), str(msg.get("dest", ""))
        if src in self.nodes and not self._fire_triggers(msg):
            return
        if self.trace_messages:
            self._trace("SEND", msg)
        if _is_client(dest) and msg.get("body", {}).get("type") == "init_ok":
            self.ready.add(src)
        if not _is_client(dest) and dest not in self.nodes:
            self.trace.write(f"{self.now():.3f} UNROUTABLE {json.dumps(msg)}\n")
            return
        extra = self._apply_rules(msg)
        if extra is None:
            return
        if (_is_client(src) or _is_client(dest)) and not self.net.clients_on_network:
            if extra:
                self.after(extra, lambda: self._deliver(src, dest, msg, check_cut=False))
            else:
                self._deliver(src, dest, msg, check_cut=False)
            return
        self._send_over_network(msg, extra=extra)

    def _send_over_network(self, msg: dict[str, Any], extra: float = 0.0,
                           random_faults: bool = True) -> None:
        src, dest = str(msg.get("src")), str(msg.get("dest", ""))
        client = _is_client(src) or _is_client(dest)
        if client:
            self.stats.client_msgs += 1
        else:
            self.stats.node_msgs += 1
        if self._cut(src, dest, self.now()):
            self.stats.partitioned += 1
            return
        copies = 1
        if random_faults and not client:  # random drop/dup: node-to-node only
            if self.rng.random() < self.net.drop:
                self.stats.dropped += 1
                return
            copies = 2 if self.rng.random() < self.net.dup else 1
            self.stats.duplicated += copies - 1
        lo, hi = self.net.latency_ms
        for _ in range(copies):
            delay = extra + self.rng.uniform(lo, hi) / 1000.0
            self.after(delay, lambda m=msg: self._deliver(src, dest, m))

    def _deliver(self, src: str, dest: str, msg: dict[str, Any], check_cut: bool = True) -> None:
        """A partition that began while the message was in flight cuts it too."""
        if check_cut and self._cut(src, dest, self.now()):
            self.stats.partitioned += 1
            return
        if _is_client(dest):
            body = msg.get("body", {})
            c = self._calls.get((dest, body.get("in_reply_to")))
            if c is not None:
                c.replies.append(body)
                if c.reply is None:  # the first reply wins
                    c.reply, c.replied_at = body, self.now()
                return
            self.on_client_msg(msg)
            return
        if not self.nodes[dest].write(msg) and _is_client(src):
            self.stats.client_msgs_to_down_node += 1

    def _read(self, n: Node) -> None:
        proc = n.proc
        try:
            chunk = proc.stdout.read(1 << 16)
        except (BlockingIOError, ValueError):
            return
        if not chunk:  # EOF: the process died on its own
            self._unregister(n)
            self.trace.write(f"{self.now():.3f} EOF {n.id} rc={proc.wait()}\n")
            return
        n.buf += chunk
        *lines, n.buf = n.buf.split(b"\n")
        for line in lines:
            if n.proc is not proc or proc.stdout.closed:
                return  # a trigger killed it: what it wrote after that never left
            if not line.strip():
                continue
            try:
                msg = json.loads(line)
                if not isinstance(msg, dict):
                    raise json.JSONDecodeError("not an object", line.decode(errors="replace"), 0)
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
        registered = self.sel.get_map()
        for key, _ in self.sel.select(wait):
            # a trigger may have killed (or restarted) this node while another was read
            cur = registered.get(key.fd)
            if cur is None or cur.fileobj is not key.fileobj:
                continue
            self._read(key.data)
