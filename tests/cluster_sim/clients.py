"""Concurrent logical clients issuing transactions through the raw txn API.

Why generators: each client has one request in flight at a time, so a client
is naturally a coroutine -- `reply = yield (node, body)` -- and the event
loop interleaves many of them without threads. A reply of None means the
request timed out (no answer within the timeout): the outcome is unknown.
"""
from __future__ import annotations

import itertools
import random
from typing import Any, Callable, Generator, Optional

from history import FAIL, INFO, OK, History, Op, Txn
from sim import Sim

Request = tuple[str, dict[str, Any]]
Program = Generator[Request, Optional[dict[str, Any]], None]

CONFLICT, ABORTED = 30, 14


def txn_program(name: str, seq: itertools.count, rng: random.Random, nodes: list[str],
                keys: list[str], isolation: str, history: History,
                now: Callable[[], float]) -> Program:
    """One transaction: begin, 1-4 reads/writes on a small key set, commit."""
    node = rng.choice(nodes)  # in a cluster any node accepts any request
    t = Txn(client=name, node=node, isolation=isolation, invoke_time=now())
    history.add(t)

    def finish(outcome: str, error: Optional[str] = None) -> None:
        t.outcome, t.error, t.complete_time = outcome, error, now()

    r = yield node, {"type": "txn_begin", "isolation": isolation}
    if r is None or r["type"] == "error":
        return finish(FAIL, None if r is None else r.get("text"))  # nothing was written
    txn_id, t.start_ts = r["txn_id"], r["start_timestamp"]
    for _ in range(rng.randint(1, 4)):
        key = rng.choice(keys)
        if rng.random() < 0.5:
            r = yield node, {"type": "txn_get", "txn_id": txn_id, "key": key}
            if r is not None and r["type"] == "txn_get_ok":
                t.ops.append(Op("r", key, r.get("value")))
                continue
        else:
            value = f"{name}-{next(seq)}"  # unique per write: a read names its writer
            r = yield node, {"type": "txn_put", "txn_id": txn_id, "key": key, "value": value}
            if r is not None and r["type"] == "txn_put_ok":
                t.ops.append(Op("w", key, value))
                continue
        # a read/write failed or timed out before commit: it cannot commit any more
        yield node, {"type": "txn_abort", "txn_id": txn_id}
        return finish(FAIL, None if r is None else r.get("text"))
    r = yield node, {"type": "txn_commit", "txn_id": txn_id}
    if r is None:
        return finish(INFO, "commit timed out")
    if r["type"] == "txn_commit_ok":
        t.commit_ts = r["commit_timestamp"]
        return finish(OK)
    if r.get("code") in (CONFLICT, ABORTED):
        return finish(FAIL, r.get("text"))
    return finish(INFO, r.get("text"))  # any other error: outcome not known for sure


def final_read_program(rng: random.Random, nodes: list[str], keys: list[str],
                       out: list[Txn], now: Callable[[], float]) -> Program:
    """A fresh read-only transaction reading every key: what survived the run."""
    node = rng.choice(nodes)
    t = Txn(client="final", node=node, isolation="snapshot", invoke_time=now(), read_only=True)
    out.append(t)
    r = yield node, {"type": "txn_begin", "read_only": True, "isolation": "snapshot"}
    if r is None or r["type"] == "error":
        t.outcome, t.error = FAIL, "final txn_begin failed"
        return
    txn_id, t.start_ts = r["txn_id"], r["start_timestamp"]
    for key in keys:
        r = yield node, {"type": "txn_get", "txn_id": txn_id, "key": key}
        if r is None or r["type"] != "txn_get_ok":
            t.outcome, t.error = FAIL, f"final read of {key} failed: {r}"
            return
        t.ops.append(Op("r", key, r.get("value")))
    yield node, {"type": "txn_commit", "txn_id": txn_id}
    t.outcome, t.complete_time = OK, now()


class Client:
    """Drives one program at a time for one client id; one request in flight."""

    def __init__(self, name: str, sim: Sim, timeout_s: float) -> None:
        self.name = name
        self.sim = sim
        self.timeout_s = timeout_s
        self.msg_ids = itertools.count(1)
        self.program: Optional[Program] = None
        self.waiting: Optional[int] = None   # msg_id of the request in flight
        self.done = True

    def run(self, program: Program) -> None:
        self.program, self.done = program, False
        self._advance(None, first=True)

    def _advance(self, reply: Optional[dict[str, Any]], first: bool = False) -> None:
        assert self.program is not None
        try:
            node, body = next(self.program) if first else self.program.send(reply)
        except StopIteration:
            self.done, self.waiting, self.program = True, None, None
            return
        mid = next(self.msg_ids)
        self.waiting = mid
        self.sim.send_from_client({"src": self.name, "dest": node,
                                   "body": dict(body, msg_id=mid)})
        self.sim.after(self.timeout_s, lambda: self._timeout(mid))

    def _timeout(self, mid: int) -> None:
        if self.waiting == mid:
            self._advance(None)

    def deliver(self, body: dict[str, Any]) -> None:
        """A reply from a node; duplicates and late replies are ignored."""
        if self.waiting is not None and body.get("in_reply_to") == self.waiting:
            self.waiting = None
            self._advance(body)


class ClientPool:
    """Routes node replies to clients by dest id."""

    def __init__(self, sim: Sim, n: int, timeout_s: float) -> None:
        self.clients = [Client(f"c{i + 1}", sim, timeout_s) for i in range(n)]
        self.by_name = {c.name: c for c in self.clients}
        sim.on_client_msg = self._on_msg

    def _on_msg(self, msg: dict[str, Any]) -> None:
        c = self.by_name.get(msg.get("dest"))
        if c is not None:
            c.deliver(msg["body"])
