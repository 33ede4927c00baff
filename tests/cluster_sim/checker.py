"""Checks a transaction history for snapshot isolation / serializability.

Why this shape: every value a client writes is unique, so a read names the
transaction that wrote what it saw. Definitely committed transactions (OK)
carry their commit timestamps, so the committed state of every key at any
timestamp is known exactly ("replay in commit-timestamp order"), and each read
can be compared with it directly -- no search over orders is needed.

What is checked (every violation is reported as one sentence):
  1. Reads name a real writer: a value never written, or written by a
     transaction that definitely failed (G1a, "read of an aborted write"), is
     a violation.
  2. Own writes: a read of a key the transaction wrote earlier returns that
     write.
  3. Snapshot reads (all transactions that got a start timestamp, whatever
     their outcome): every other read equals the committed state at
     start_ts.
  4. Serializable (committed with writes, isolation "serializable"): every
     read also equals the state just before commit_ts -- i.e. replaying the
     committed transactions in commit-timestamp order reproduces the read.
     This catches write skew.
  5. First committer wins (both modes): no two committed transactions that
     overlap ([start_ts, commit_ts] intersect) wrote the same key (lost
     update).
  6. Nothing acknowledged is lost: a final read-only transaction, started
     after every commit, reads every key; each value must be the newest
     committed write (check 3 applied at the final snapshot).

Indefinite transactions (INFO: commit sent, no answer) may or may not have
committed. Their commit timestamp, if they did, is unknown, so each gets an
interval [lo, hi]: lo = start_ts + 1 (commits come after the start), hi =
the smallest snapshot timestamp of any read that observed one of its writes
(it must have committed at or below that snapshot; unobserved: hi = +inf).
A read at snapshot S of key k with newest definite version L (commit ts <= S)
is accepted if it returns
  * L's value, unless an indefinite writer of k that *was* observed elsewhere
    (so certainly committed) must lie in (L, S] (lo > L and hi <= S); or
  * the value of an indefinite writer I of k (its last write of k) whose
    interval can lie in (L, S]: max(lo, L+1) <= min(hi, S).
So an unobserved indefinite write is simply "maybe committed"; an observed
one is committed with bounded timestamp. Approximation (documented gap):
two indefinite writers of the same key are not ordered against each other,
and indefinite writers are left out of check 5.
"""
from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field
from typing import Any, Optional

from history import FAIL, INFO, OK, History, Txn


@dataclass
class Verdict:
    ok: bool
    errors: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        if self.ok:
            return "OK"
        shown = "\n  ".join(self.errors[:20])
        more = f"\n  ... and {len(self.errors) - 20} more" if len(self.errors) > 20 else ""
        return f"VIOLATION ({len(self.errors)}):\n  {shown}{more}"


def _vkey(v: Any) -> Any:
    """Hashable form of a JSON value."""
    return repr(v)


class _State:
    """The committed state of every key as a function of timestamp."""

    def __init__(self, txns: list[Txn]) -> None:
        self.writer: dict[Any, tuple[Txn, str]] = {}   # value -> (writer, key)
        self.duplicate_values: list[str] = []
        for t in txns:
            for k, v in t.writes().items():
                if v is None:
                    continue
                if _vkey(v) in self.writer:
                    self.duplicate_values.append(f"value {v!r} written twice; values must be unique")
                self.writer[_vkey(v)] = (t, k)
        # definite versions: key -> sorted [(commit_ts, value)]
        self.versions: dict[str, list[tuple[int, Any]]] = {}
        for t in txns:
            if t.outcome == OK and t.commit_ts is not None:
                for k, v in t.writes().items():
                    self.versions.setdefault(k, []).append((t.commit_ts, v))
        for vs in self.versions.values():
            vs.sort(key=lambda x: x[0])
        # indefinite writers: id(txn) -> [lo, hi]
        self.interval: dict[int, list[float]] = {}
        self.indef_by_key: dict[str, list[Txn]] = {}
        for t in txns:
            if t.outcome == INFO and t.start_ts is not None and t.writes():
                self.interval[id(t)] = [t.start_ts + 1, math.inf]
                for k in t.writes():
                    self.indef_by_key.setdefault(k, []).append(t)

    def latest(self, key: str, snap: int) -> tuple[Optional[int], Any]:
        """Newest definite version of key with commit_ts <= snap: (ts, value)."""
        vs = self.versions.get(key, [])
        i = bisect.bisect_right(vs, snap, key=lambda x: x[0])
        return (vs[i - 1][0], vs[i - 1][1]) if i else (None, None)

    def observe(self, value: Any, snap: int) -> None:
        """A read at snapshot `snap` saw `value`: bound its indefinite writer."""
        w = self.writer.get(_vkey(value))
        if w and id(w[0]) in self.interval:
            iv = self.interval[id(w[0])]
            iv[1] = min(iv[1], snap)

    def explain(self, key: str, value: Any, snap: int, what: str) -> Optional[str]:
        """None if reading `value` from `key` at snapshot `snap` is allowed, else why not."""
        lts, lval = self.latest(key, snap)
        lfloor = -1 if lts is None else lts
        if _vkey(value) == _vkey(lval):
            for i in self.indef_by_key.get(key, []):
                lo, hi = self.interval[id(i)]
                if hi != math.inf and lo > lfloor and hi <= snap:
                    return (f"{what}: read {key}={value!r} at {snap}, but indefinite txn of "
                            f"{i.client} (start {i.start_ts}) was observed committed at <= {hi}, newer")
            return None
        if value is None:
            return (f"{what}: read {key}=None (no version) at snapshot {snap}, but the committed "
                    f"state there is {lval!r} (committed at {lts})")
        w = self.writer.get(_vkey(value))
        if w is None:
            return f"{what}: read {key}={value!r} at {snap}, a value nobody wrote; expected {lval!r}"
        t, wkey = w
        if wkey != key:
            return f"{what}: read {key}={value!r}, a value written to key {wkey}"
        if t.outcome == FAIL:
            return (f"{what}: read {key}={value!r} written by a failed (aborted) txn of "
                    f"{t.client} (start {t.start_ts}): read of an aborted write")
        if t.outcome == INFO and t.writes().get(key) == value:
            lo, hi = self.interval[id(t)]
            if max(lo, lfloor + 1) <= min(hi, snap):
                return None
            return (f"{what}: read {key}={value!r} at {snap} from an indefinite txn "
                    f"(start {t.start_ts}) that cannot lie after {lts} and at or before {snap}")
        if t.outcome == OK:
            return (f"{what}: read {key}={value!r} (committed at {t.commit_ts}) at snapshot {snap}, "
                    f"but the committed state there is {lval!r} (committed at {lts})")
        return f"{what}: read {key}={value!r} at {snap}, not a final write of its txn; expected {lval!r}"


def _label(t: Txn) -> str:
    return f"{t.client} txn (start {t.start_ts}, commit {t.commit_ts}, {t.isolation})"


def check(history: History, final: Optional[Txn] = None) -> Verdict:
    """Check the history (and the final read, if given); see the module docstring."""
    txns = list(history.txns) + ([final] if final else [])
    st = _State(txns)
    errors: list[str] = list(st.duplicate_values)

    # Timestamp sanity.
    seen_cts: dict[int, Txn] = {}
    for t in history.txns:
        if t.outcome == OK and not t.read_only and t.writes():
            if t.commit_ts is None or t.start_ts is None:
                errors.append(f"{_label(t)}: committed without timestamps")
                continue
            if t.commit_ts <= t.start_ts:
                errors.append(f"{_label(t)}: commit_ts not after start_ts")
            if t.commit_ts in seen_cts:
                errors.append(f"{_label(t)}: commit_ts shared with {_label(seen_cts[t.commit_ts])}")
            seen_cts[t.commit_ts] = t

    # First pass: bound the commit timestamps of observed indefinite writers.
    for t in txns:
        if t.start_ts is None:
            continue
        own: set[str] = set()
        for op in t.ops:
            if op.f == "w":
                own.add(op.key)
            elif op.key not in own and op.value is not None:
                st.observe(op.value, t.start_ts)
    for t in txns:
        if id(t) in st.interval:
            lo, hi = st.interval[id(t)]
            if hi < lo:
                errors.append(f"{_label(t)}: indefinite txn observed before it started")

    # Checks 1-4: every read.
    for t in txns:
        if t.start_ts is None:
            continue
        what = "final read" if t is final else _label(t)
        own_w: dict[str, Any] = {}
        # a transaction without writes serializes at its snapshot: no commit-point check
        serial = (t.outcome == OK and t.isolation == "serializable" and not t.read_only
                  and t.commit_ts is not None and bool(t.writes()))
        for op in t.ops:
            if op.f == "w":
                own_w[op.key] = op.value
                continue
            if op.key in own_w:
                if _vkey(op.value) != _vkey(own_w[op.key]):
                    errors.append(f"{what}: read {op.key}={op.value!r}, not its own write {own_w[op.key]!r}")
                continue
            err = st.explain(op.key, op.value, t.start_ts, what)
            if err:
                if t is final:
                    err += " (lost or phantom write)"
                errors.append(err)
            elif serial:
                err = st.explain(op.key, op.value, t.commit_ts - 1, what + " at its commit point")
                if err:
                    errors.append(err + " (not serializable, e.g. write skew)")

    # Check 5: overlapping committed writers of one key.
    by_key: dict[str, list[Txn]] = {}
    for t in history.txns:
        if t.outcome == OK and t.commit_ts is not None and t.start_ts is not None:
            for k in t.writes():
                by_key.setdefault(k, []).append(t)
    for k, ws in by_key.items():
        ws.sort(key=lambda x: x.commit_ts)
        for a, b in zip(ws, ws[1:]):
            if b.start_ts < a.commit_ts:
                errors.append(f"concurrent committed writers of {k}: {_label(a)} and {_label(b)} (lost update)")

    # Check 6: the final read is after every commit.
    if final is not None and final.start_ts is not None and seen_cts:
        if final.start_ts < max(seen_cts):
            errors.append(f"final read at {final.start_ts} does not follow the last commit {max(seen_cts)}")
    return Verdict(ok=not errors, errors=errors)
