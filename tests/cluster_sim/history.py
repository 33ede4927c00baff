"""The history of one run: one record per transaction.

Why a record per transaction (not per message): every property the checker
verifies is about transactions -- their timestamps, what they read and wrote,
and whether they committed -- so the client code fills in one `Txn` as its
requests complete and the checker never has to reassemble message streams.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Optional

# Outcomes, named as in Jepsen/Maelstrom histories.
OK = "ok"      # txn_commit_ok received: committed at commit_ts
FAIL = "fail"  # definitely not committed (conflict, abort, never reached commit)
INFO = "info"  # indefinite: commit sent, no definite answer (timeout, crash)


@dataclass
class Op:
    """One read or write inside a transaction, in the order issued."""
    f: str        # "r" or "w"
    key: str
    value: Any    # for "r": the value returned (None = no version); for "w": the value written


@dataclass
class Txn:
    """One transaction as the client saw it."""
    client: str
    node: str
    isolation: str                  # "serializable" or "snapshot"
    invoke_time: float              # seconds since the run started
    complete_time: Optional[float] = None
    start_ts: Optional[int] = None  # from txn_begin_ok
    commit_ts: Optional[int] = None  # from txn_commit_ok (OK only)
    outcome: str = INFO
    ops: list[Op] = field(default_factory=list)
    error: Optional[str] = None     # last error text, for the report
    read_only: bool = False

    def writes(self) -> dict[str, Any]:
        """Final value written per key (what a commit would install)."""
        out: dict[str, Any] = {}
        for op in self.ops:
            if op.f == "w":
                out[op.key] = op.value
        return out

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @staticmethod
    def from_dict(d: dict[str, Any]) -> "Txn":
        ops = [Op(**o) for o in d.pop("ops", [])]
        return Txn(ops=ops, **d)


class History:
    """Append-only list of transactions, optionally mirrored to a JSONL file."""

    def __init__(self, path: Optional[str] = None) -> None:
        self.txns: list[Txn] = []
        self._path = path

    def add(self, txn: Txn) -> None:
        self.txns.append(txn)

    def save(self, path: Optional[str] = None) -> None:
        target = path or self._path
        if target is None:
            return
        with open(target, "w") as f:
            for t in self.txns:
                f.write(t.to_json() + "\n")

    @staticmethod
    def load(path: str) -> "History":
        h = History(path)
        with open(path) as f:
            for line in f:
                if line.strip():
                    h.add(Txn.from_dict(json.loads(line)))
        return h
