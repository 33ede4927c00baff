"""Maelstrom workloads (lin-kv, txn-list-append, txn-rw-register) and their checkers.

Why here and not in Maelstrom: Maelstrom is not available where the tests
run, so the harness issues the workloads' messages itself (through sim.py's
faulty network, to random nodes) and checks the histories itself:

* list-append (Elle's core): every acknowledged append is in the final list
  exactly once, no append of a failed txn is ever seen, every observed list is
  a prefix of the final one, a txn sees its own appends; under serializable a
  dependency graph (ww from list order, wr, rw, and real-time order between
  acknowledged txns) must be acyclic; under snapshot only ww+wr (G0/G1c).
* rw-register: reads name their writer (unique values), no aborted or
  intermediate reads, own writes seen, a txn's repeated reads agree, the final
  value was written by a txn that may have committed, and the same graph
  check with a version order inferred only where it is certain (read-then-write
  in one txn, the final value is the last version, the initial version first).
* lin-kv: per key, a Wing&Gong search with memoisation on (linearised set,
  value) for a linearisation of the register history, pruned by rules that
  hold because written values are unique (see _check_register); a timed-out
  op may or may not take effect (at any time after its invocation); failed
  cas/read with error 20/22 are kept as observations ("missing" / "not
  `from`"). A search that exceeds its state budget fails as inconclusive.

A history record is one `WOp` per client request; outcomes as in history.py.
"""
from __future__ import annotations

import itertools
import json
import os
import random
import tempfile
import time
from collections import defaultdict
from dataclasses import asdict, dataclass
from typing import Any, Callable, Iterable, Optional

from checker import Verdict
from clients import Client, ClientPool
from history import FAIL, INFO, OK
from sim import Sim

WORKLOADS = ("lin-kv", "list-append", "rw-register")
DEFINITE = {10, 11, 12, 14, 20, 22, 30}   # error codes after which the op surely did nothing
INF = float("inf")


@dataclass
class WOp:
    """One client request and what came of it."""
    client: str
    node: str
    f: str                       # "txn" | "read" | "write" | "cas"
    value: Any                   # txn: [[f,k,v],...] (reads filled when ok); kv: see below
    invoke_time: float
    complete_time: Optional[float] = None
    outcome: str = INFO
    code: Optional[int] = None   # error code, if an error came back
    error: Optional[str] = None
    key: Any = None              # lin-kv: the key; value = read value / written value / [from, to]

    def to_json(self) -> str:
        return json.dumps(asdict(self))


def save_history(ops: list[WOp], path: str) -> None:
    with open(path, "w") as f:
        for o in ops:
            f.write(o.to_json() + "\n")


def load_history(path: str) -> list[WOp]:
    with open(path) as f:
        return [WOp(**json.loads(line)) for line in f if line.strip()]


# ---------------------------------------------------------------- generators

def txn_workload_program(name: str, workload: str, counter: Iterable[int], rng: random.Random,
                         nodes: list[str], keys: list[Any], history: list[WOp],
                         now: Callable[[], float]):
    """One Maelstrom `txn` of 1-4 micro-ops, sent to a random node."""
    mops = []
    for _ in range(rng.randint(1, 4)):
        k = rng.choice(keys)
        if rng.random() < 0.5:
            mops.append(["r", k, None])
        else:
            mops.append(["append" if workload == "list-append" else "w", k, next(counter)])
    node = rng.choice(nodes)
    op = WOp(client=name, node=node, f="txn", value=mops, invoke_time=now())
    history.append(op)
    r = yield node, {"type": "txn", "txn": mops}
    _finish(op, r, now, "txn_ok")
    if op.outcome == OK:
        op.value = r["txn"]


def kv_program(name: str, counter: Iterable[int], rng: random.Random, nodes: list[str],
               keys: list[Any], history: list[WOp], now: Callable[[], float],
               last_written: dict[Any, list[int]]):
    """One lin-kv read / write / cas on a random key through a random node."""
    k = rng.choice(keys)
    node = rng.choice(nodes)
    x = rng.random()
    if x < 0.4:
        op = WOp(name, node, "read", None, now(), key=k)
        body = {"type": "read", "key": k}
    elif x < 0.7:
        v = next(counter)
        op = WOp(name, node, "write", v, now(), key=k)
        body = {"type": "write", "key": k, "value": v}
    else:
        # cas from a recently written value (so it often succeeds) to a fresh one
        seen = last_written[k]
        frm = rng.choice(seen[-3:]) if seen else 0
        to = next(counter)
        op = WOp(name, node, "cas", [frm, to], now(), key=k)
        body = {"type": "cas", "key": k, "from": frm, "to": to}
    if op.f == "write":
        last_written[k].append(op.value)
    elif op.f == "cas":
        last_written[k].append(op.value[1])
    history.append(op)
    r = yield node, body
    _finish(op, r, now, op.f + "_ok")
    if op.outcome == OK and op.f == "read":
        op.value = r.get("value")


def _finish(op: WOp, r: Optional[dict[str, Any]], now: Callable[[], float], ok_type: str) -> None:
    op.complete_time = now()
    if r is None:
        op.outcome, op.error = INFO, "timeout"
    elif r.get("type") == ok_type:
        op.outcome = OK
    else:
        op.code, op.error = r.get("code"), r.get("text")
        op.outcome = FAIL if op.code in DEFINITE else INFO


def final_txn_program(keys: list[Any], nodes: list[str], rng: random.Random, out: list[WOp],
                      now: Callable[[], float], attempts: int = 20):
    """Reads every key in one txn after the run; retried on errors/timeouts."""
    for _ in range(attempts):
        node = rng.choice(nodes)
        op = WOp("final", node, "txn", [["r", k, None] for k in keys], now())
        r = yield node, {"type": "txn", "txn": op.value}
        _finish(op, r, now, "txn_ok")
        if op.outcome == OK:
            op.value = r["txn"]
            out.append(op)
            return


# ---------------------------------------------------------------- shared graph code

class Graph:
    def __init__(self) -> None:
        self.adj: dict[int, dict[int, str]] = defaultdict(dict)

    def add(self, a: int, b: int, kind: str) -> None:
        if a != b and b not in self.adj[a]:
            self.adj[a][b] = kind

    def find_cycle(self, allowed: Optional[set[str]] = None) -> Optional[list[tuple[int, str]]]:
        """A cycle as [(node, kind of edge to the next node), ...], or None (Tarjan SCC)."""
        adj = {a: {b: k for b, k in es.items() if allowed is None or k in allowed}
               for a, es in self.adj.items()}
        index: dict[int, int] = {}
        low: dict[int, int] = {}
        on: set[int] = set()
        stack: list[int] = []
        counter = itertools.count()
        for root in list(adj):
            if root in index:
                continue
            work = [(root, iter(adj.get(root, {})))]
            index[root] = low[root] = next(counter)
            stack.append(root)
            on.add(root)
            while work:
                v, it = work[-1]
                pushed = False
                for w in it:
                    if w not in index:
                        index[w] = low[w] = next(counter)
                        stack.append(w)
                        on.add(w)
                        work.append((w, iter(adj.get(w, {}))))
                        pushed = True
                        break
                    if w in on:
                        low[v] = min(low[v], index[w])
                if pushed:
                    continue
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on.discard(w)
                        comp.append(w)
                        if w == v:
                            break
                    if len(comp) > 1:
                        return self._cycle_in(set(comp), adj)
        return None

    def g_single(self) -> Optional[list[tuple[int, str]]]:
        """A cycle of exactly one rw edge a->b plus ww/wr edges b ->* a (forbidden by SI)."""
        reach_cache: dict[int, dict[int, tuple[int, str]]] = {}
        for a, es in self.adj.items():
            for b, kind in es.items():
                if kind != "rw":
                    continue
                if b not in reach_cache:
                    prev: dict[int, tuple[int, str]] = {b: (b, "")}
                    todo = [b]
                    while todo:
                        v = todo.pop()
                        for w, k in self.adj.get(v, {}).items():
                            if k in ("ww", "wr") and w not in prev:
                                prev[w] = (v, k)
                                todo.append(w)
                    reach_cache[b] = prev
                prev = reach_cache[b]
                if a in prev:
                    path = []
                    v = a
                    while v != b:
                        p, k = prev[v]
                        path.append((p, k))
                        v = p
                    return [(a, "rw")] + list(reversed(path))
        return None

    @staticmethod
    def _cycle_in(comp: set[int], adj: dict[int, dict[int, str]]) -> list[tuple[int, str]]:
        start = min(comp)
        # BFS from start back to start within the component: a shortest cycle through it
        prev: dict[int, tuple[int, str]] = {}
        frontier = [start]
        seen = {start}
        while frontier:
            nxt = []
            for v in frontier:
                for w, k in adj.get(v, {}).items():
                    if w not in comp:
                        continue
                    if w == start:
                        path = [(v, k)]
                        while v != start:
                            p, pk = prev[v]
                            path.append((p, pk))
                            v = p
                        return list(reversed(path))
                    if w not in seen:
                        seen.add(w)
                        prev[w] = (v, k)
                        nxt.append(w)
            frontier = nxt
        return [(start, "?")]


def add_realtime_edges(g: Graph, ops: list[WOp], committed: set[int]) -> None:
    """A -> B when ok A completed before B was invoked (transitively reduced, as Elle).
    Only ok ops end edges' sources (an indefinite op's effect time is unknown)."""
    events = []
    for i in committed:
        o = ops[i]
        events.append((o.invoke_time, 1, i))
        if o.outcome == OK:
            events.append((o.complete_time, 0, i))
    events.sort()  # completions before invocations at an equal time: not concurrent
    buffer: set[int] = set()
    preds: dict[int, set[int]] = {}
    for _, kind, i in events:
        if kind == 1:
            preds[i] = set(buffer)
            for a in buffer:
                g.add(a, i, "rt")
        else:
            buffer -= preds.get(i, set())
            buffer.add(i)


def _describe_cycle(cycle: list[tuple[int, str]], ops: list[WOp]) -> str:
    parts = []
    for i, kind in cycle:
        o = ops[i]
        parts.append(f"T{i}({o.client}@{o.node} {o.outcome} "
                     f"[{o.invoke_time:.3f},{o.complete_time if o.complete_time is None else round(o.complete_time, 3)}] "
                     f"{json.dumps(o.value)}) -{kind}->")
    return " ".join(parts) + f" T{cycle[0][0]}"


def _graph_verdict(g: Graph, ops: list[WOp], isolation: str, errors: list[str]) -> None:
    if isolation == "serializable":
        cyc = g.find_cycle()
        if cyc:
            kinds = {k for _, k in cyc}
            name = ("G0 (write cycle)" if kinds <= {"ww"} else
                    "G1c (ww/wr cycle)" if kinds <= {"ww", "wr"} else
                    "G-single/G2 (anti-dependency cycle)" if kinds <= {"ww", "wr", "rw"} else
                    "real-time order violated (strict serializability)")
            errors.append(f"{name}: {_describe_cycle(cyc, ops)}")
    else:
        cyc = g.find_cycle({"ww", "wr"})
        if cyc:
            errors.append(f"G0/G1c cycle under snapshot isolation: {_describe_cycle(cyc, ops)}")
            return
        cyc = g.g_single()
        if cyc:
            errors.append(f"G-single (read skew: one anti-dependency) under snapshot isolation: "
                          f"{_describe_cycle(cyc, ops)}")


# ---------------------------------------------------------------- list-append checker

def check_list_append(ops: list[WOp], final: Optional[dict[Any, list]], isolation: str) -> Verdict:
    """See the module docstring. `final` maps every key to the list read after the run."""
    errors: list[str] = []
    writer: dict[tuple[str, Any], int] = {}   # (key, value) -> op index
    for i, o in enumerate(ops):
        if o.f != "txn":
            continue
        for f, k, v in o.value:
            if f == "append":
                if (_k(k), _k(v)) in writer:
                    errors.append(f"value {v} appended twice to {k} (generator bug)")
                writer[(_k(k), _k(v))] = i
    final = final or {}
    final_n = {_k(k): list(v or []) for k, v in final.items()}

    def check_elems(lst: list, k: Any, where: str) -> bool:
        good = True
        if len(set(map(_k, lst))) != len(lst):
            errors.append(f"{where}: duplicate element in list of key {k}: {lst}")
            good = False
        for v in lst:
            w = writer.get((_k(k), _k(v)))
            if w is None:
                errors.append(f"{where}: key {k} holds {v}, which no txn appended")
                good = False
            elif ops[w].outcome == FAIL:
                errors.append(f"{where}: key {k} holds {v} from failed txn T{w} "
                              f"({ops[w].error}): aborted read")
                good = False
        return good

    for k, lst in final_n.items():
        check_elems(lst, k, "final read")
    # every ok append is in the final list
    for (k, v), i in writer.items():
        if ops[i].outcome == OK and v not in set(map(_k, final_n.get(k, []))):
            errors.append(f"lost append: T{i} ({ops[i].client}) appended {v} to {k} and was "
                          f"acknowledged, but the final list is {final_n.get(k)}")
    # reads: prefixes of final; own appends; repeated reads agree
    committed = {i for i, o in enumerate(ops) if o.outcome == OK}
    for (k, v), i in writer.items():
        if ops[i].outcome == INFO and v in set(map(_k, final_n.get(k, []))):
            committed.add(i)
    for i, o in enumerate(ops):
        if o.outcome != OK or o.f != "txn":
            continue
        own: dict[Any, list] = defaultdict(list)
        ext_seen: dict[Any, list] = {}
        for f, k, v in o.value:
            kk = _k(k)
            if f == "append":
                own[kk].append(v)
                continue
            lst = list(v or [])
            where = f"T{i} ({o.client}@{o.node}) read {k}"
            if not check_elems(lst, k, where):
                continue
            mine = own[kk]
            if mine and [_k(x) for x in lst[len(lst) - len(mine):]] != [_k(x) for x in mine]:
                errors.append(f"{where} = {lst}: does not end with its own appends {mine}")
                continue
            ext = lst[:len(lst) - len(mine)]
            if any(writer.get((kk, _k(x))) == i for x in ext):
                errors.append(f"{where} = {lst}: sees its own later append")
            if kk in ext_seen and ext_seen[kk] != ext:
                errors.append(f"{where}: read {ext} then {ext_seen[kk]} (non-repeatable read)")
            ext_seen[kk] = ext
            fl = final_n.get(kk, [])
            if [_k(x) for x in ext] != [_k(x) for x in fl[:len(ext)]]:
                errors.append(f"{where} = {lst}: not a prefix of the final list {fl} "
                              f"(no single append order)")
    if errors:
        return Verdict(False, errors)
    # dependency graph over committed txns
    g = Graph()
    for k, lst in final_n.items():
        ws = [writer[(k, _k(v))] for v in lst]
        for a, b in zip(ws, ws[1:]):
            g.add(a, b, "ww")
    for i, o in enumerate(ops):
        if o.outcome != OK or o.f != "txn":
            continue
        own_count: dict[Any, int] = defaultdict(int)
        for f, k, v in o.value:
            kk = _k(k)
            if f == "append":
                own_count[kk] += 1
                continue
            lst = list(v or [])
            n = len(lst) - own_count[kk]
            if n > 0:
                g.add(writer[(kk, _k(lst[n - 1]))], i, "wr")
            fl = final_n.get(kk, [])
            if n < len(fl):
                g.add(i, writer[(kk, _k(fl[n]))], "rw")
    if isolation == "serializable":
        add_realtime_edges(g, ops, committed)
    _graph_verdict(g, ops, isolation, errors)
    return Verdict(not errors, errors)


def _k(x: Any) -> Any:
    """A hashable stand-in for a JSON value."""
    return json.dumps(x, sort_keys=True) if isinstance(x, (list, dict)) else x


# ---------------------------------------------------------------- rw-register checker

def check_rw_register(ops: list[WOp], final: Optional[dict[Any, Any]], isolation: str) -> Verdict:
    errors: list[str] = []
    writer: dict[tuple[Any, Any], int] = {}
    last_write: dict[tuple[int, Any], Any] = {}   # (txn, key) -> its final value for the key
    for i, o in enumerate(ops):
        if o.f != "txn":
            continue
        for f, k, v in o.value:
            if f == "w":
                writer[(_k(k), _k(v))] = i
                last_write[(i, _k(k))] = _k(v)
    committed = {i for i, o in enumerate(ops) if o.outcome == OK}
    # an indefinite txn whose write was observed committed
    observed: set[int] = set()

    def check_read(k: Any, v: Any, where: str, reader: Optional[int]) -> bool:
        if v is None:
            return True
        w = writer.get((_k(k), _k(v)))
        if w is None:
            errors.append(f"{where}: {k} = {v}, which no txn wrote")
            return False
        if ops[w].outcome == FAIL:
            errors.append(f"{where}: {k} = {v} from failed txn T{w} ({ops[w].error}): "
                          f"aborted read")
            return False
        if w != reader and last_write[(w, _k(k))] != _k(v):
            errors.append(f"{where}: {k} = {v}, an intermediate write of T{w} (G1b)")
            return False
        if ops[w].outcome == INFO:
            observed.add(w)
        return True

    final = final or {}
    final_n = {_k(k): v for k, v in final.items()}
    for k, v in final_n.items():
        check_read(k, v, "final read", None)
    writers_of: dict[Any, set[int]] = defaultdict(set)
    for (k, v), i in writer.items():
        writers_of[k].add(i)
    for k, ws in writers_of.items():
        if any(ops[i].outcome == OK for i in ws) and final_n.get(k) is None:
            errors.append(f"lost write: key {k} had acknowledged writes but reads null at the end")
    reads: list[tuple[int, Any, Any]] = []   # external reads: (txn, key, value)
    for i, o in enumerate(ops):
        if o.outcome != OK or o.f != "txn":
            continue
        own: dict[Any, Any] = {}
        ext_seen: dict[Any, Any] = {}
        for f, k, v in o.value:
            kk = _k(k)
            if f == "w":
                own[kk] = _k(v)
                continue
            where = f"T{i} ({o.client}@{o.node}) read"
            if not check_read(k, v, where, i):
                continue
            if kk in own:
                if _k(v) != own[kk]:
                    errors.append(f"{where} {k} = {v} after writing {own[kk]} (own write lost)")
                continue
            if v is not None and writer.get((kk, _k(v))) == i:
                errors.append(f"{where} {k} = {v}: its own later write")
                continue
            if kk in ext_seen and ext_seen[kk] != _k(v):
                errors.append(f"{where} {k}: {ext_seen[kk]} then {v} (non-repeatable read)")
            ext_seen[kk] = _k(v)
            reads.append((i, kk, v))
    if errors:
        return Verdict(False, errors)
    committed |= observed
    for k, v in final_n.items():
        if v is not None:
            committed.add(writer[(k, _k(v))])
    # inferred version order: initial < everything; W < T when T read W then wrote;
    # every other committed writer < the final value's writer
    g = Graph()
    succ: dict[tuple[Any, Optional[int]], int] = {}   # (key, W or None=initial) -> next writer
    for i, o in enumerate(ops):
        if o.outcome != OK or o.f != "txn":
            continue
        read_first: dict[Any, Any] = {}
        wrote: set[Any] = set()
        for f, k, v in o.value:
            kk = _k(k)
            if f == "r" and kk not in wrote and kk not in read_first:
                read_first[kk] = v
            elif f == "w":
                wrote.add(kk)
        for kk in wrote:
            if kk in read_first:
                v = read_first[kk]
                w = None if v is None else writer[(kk, _k(v))]
                if w is not None:
                    g.add(w, i, "ww")
                # first-committer-wins (both levels): nothing committed between w's
                # version and ours, so two committed txns cannot both follow w
                if (kk, w) in succ and succ[(kk, w)] != i:
                    errors.append(f"lost update on {kk}: T{succ[(kk, w)]} and T{i} both read "
                                  f"{v} and wrote it")
                succ[(kk, w)] = i
    final_writer = {k: (writer[(k, _k(v))] if v is not None else None)
                    for k, v in final_n.items()}
    for k, ws in writers_of.items():
        fw = final_writer.get(k)
        if fw is None:
            continue
        for w in ws:
            if w in committed and w != fw:
                g.add(w, fw, "ww")
    for i, k, v in reads:
        w = None if v is None else writer[(k, _k(v))]
        if w is not None:
            g.add(w, i, "wr")
            fw = final_writer.get(k)
            if fw is not None and fw != w:
                g.add(i, fw, "rw")
        else:
            for t in writers_of.get(k, ()):
                if t in committed:
                    g.add(i, t, "rw")
        nxt = succ.get((k, w))
        if nxt is not None:
            g.add(i, nxt, "rw")
    if errors:
        return Verdict(False, errors)
    if isolation == "serializable":
        add_realtime_edges(g, ops, committed)
    _graph_verdict(g, ops, isolation, errors)
    return Verdict(not errors, errors)


# ---------------------------------------------------------------- lin-kv checker

MISSING = object()


def check_lin_kv(ops: list[WOp], max_states: int = 2_000_000) -> Verdict:
    """Per key: is there a linearisation? Ops: ok read (error 20 = read of 'missing'),
    ok write, ok cas, cas failed with 20 (saw missing) or 22 (saw a value != from);
    timed-out writes/cas may take effect at any point after their invocation, or never.
    A key whose search exceeds `max_states` is an error too ("inconclusive"): a
    check that could not decide is not a pass."""
    errors: list[str] = []
    by_key: dict[Any, list[WOp]] = defaultdict(list)
    for o in ops:
        if o.f in ("read", "write", "cas"):
            by_key[_k(o.key)].append(o)
    for k, kops in by_key.items():
        err = _check_register(k, kops, max_states)
        if err:
            errors.append(err)
    return Verdict(not errors, errors)


def _register_entries(kops: list[WOp]) -> list[tuple]:
    """(kind, arg, invoke, complete, required, op) per op that says something, by
    invocation. kind: read (arg: value or MISSING), write (value), cas ([from, to]),
    notv (a refused cas: the value was not `arg`)."""
    entries = []
    for o in kops:
        comp = o.complete_time if o.outcome == OK else INF
        if o.f == "read":
            if o.outcome == OK:
                entries.append(("read", o.value, o.invoke_time, comp, True, o))
            elif o.code == 20:
                entries.append(("read", MISSING, o.invoke_time, o.complete_time, True, o))
        elif o.f == "write":
            if o.outcome != FAIL:
                entries.append(("write", o.value, o.invoke_time, comp, o.outcome == OK, o))
        elif o.f == "cas":
            if o.outcome != FAIL:
                entries.append(("cas", o.value, o.invoke_time, comp, o.outcome == OK, o))
            elif o.code == 20:
                entries.append(("read", MISSING, o.invoke_time, o.complete_time, True, o))
            elif o.code == 22:
                entries.append(("notv", o.value[0], o.invoke_time, o.complete_time, True, o))
    # A timed-out write or cas whose value somebody saw did take effect (values
    # are unique): it must be placed like an acknowledged one, any time after
    # its invocation.
    seen = {_k(e[1]) for e in entries if e[0] == "read" and e[1] is not MISSING}
    seen |= {_k(e[1][0]) for e in entries if e[0] == "cas" and e[4]}
    entries = [e[:4] + (True, e[5]) if not e[4] and _k(_written(e)) in seen else e
               for e in entries]
    entries.sort(key=lambda e: e[2])
    return entries


def _written(e: tuple) -> Any:
    return e[1] if e[0] == "write" else e[1][1]


def _check_register(key: Any, kops: list[WOp], max_states: int) -> Optional[str]:
    """Wing & Gong's search with Lowe's just-in-time candidates, memoised on
    (placed ops, value), plus three rules sound for a register whose written
    values are unique (each value is current for one stretch only):
      * a read or refused cas that holds for the current value is placed at once,
        without branching (any linearisation placing it later in that stretch
        can place it here);
      * a state where a required op needs a value that is gone for good (its
        writer placed and overwritten, or 'missing' after any write) is dead;
      * an optional write (timed out, value never seen) is tried only when a
        refused cas is blocked by the current value: between it and the next
        write only refused cas can be placed, so anywhere else it could as
        well be left out.
    Without them a run with partitions (many timed-out ops) never finishes."""
    entries = _register_entries(kops)
    n = len(entries)
    kind = [e[0] for e in entries]
    invoke = [e[2] for e in entries]
    complete = [e[3] for e in entries]
    required = [e[4] for e in entries]
    required_mask = sum(1 << j for j in range(n) if required[j])
    all_ops = (1 << n) - 1
    writer = {_k(_written(e)): j for j, e in enumerate(entries) if e[0] in ("write", "cas")}

    def step(j: int, val: Any) -> tuple[bool, Any]:
        arg = entries[j][1]
        if kind[j] == "read":
            return (val is MISSING if arg is MISSING else (val is not MISSING and val == arg)), val
        if kind[j] == "write":
            return True, arg
        if kind[j] == "cas":
            return (val is not MISSING and val == arg[0]), arg[1]
        return (val is not MISSING and val != arg), val   # notv: cas refused, value != from

    def gone(j: int, mask: int, val: Any) -> bool:
        """Required op j needs a value that will never be current again."""
        if kind[j] not in ("read", "cas"):
            return False
        want = entries[j][1] if kind[j] == "read" else entries[j][1][0]
        if want is MISSING:
            return val is not MISSING
        w = writer.get(_k(want))
        return w is not None and bool(mask >> w & 1) and (val is MISSING or _k(val) != _k(want))

    seen: set[tuple[int, Any]] = set()
    stack = [(0, MISSING)]
    best = (0, 0)
    while stack:
        mask, val = stack.pop()
        if (mask & required_mask) == required_mask:
            return None
        state = (mask, val if val is MISSING else _k(val))
        if state in seen:
            continue
        seen.add(state)
        if len(seen) > max_states:
            return (f"key {key}: inconclusive: no linearisation of {n} ops found in "
                    f"{max_states} states (a check that cannot decide is not a pass)")
        done = bin(mask & required_mask).count("1")
        if done > best[0]:
            best = (done, mask)
        # Candidates: unplaced ops invoked before the earliest completion among
        # them (walked in invocation order: a later one cannot complete earlier).
        horizon = INF
        cands = []
        unplaced = all_ops & ~mask
        while unplaced:
            low = unplaced & -unplaced
            unplaced ^= low
            j = low.bit_length() - 1
            if invoke[j] > horizon:
                break
            cands.append(j)
            horizon = min(horizon, complete[j])
        cands = [j for j in cands if invoke[j] <= horizon]
        free = next((j for j in cands if kind[j] in ("read", "notv") and step(j, val)[0]), None)
        if free is not None:
            stack.append((mask | 1 << free, val))
            continue
        if any(required[j] and gone(j, mask, val) for j in cands):
            continue
        blocked = val is not MISSING and any(
            kind[j] == "notv" and _k(entries[j][1]) == _k(val) for j in cands)
        if not blocked:
            cands = [j for j in cands if required[j]]
        # Popped first: required ops by earliest completion; optional ones last.
        cands.sort(key=lambda j: (not required[j], complete[j]), reverse=True)
        for j in cands:
            ok, nv = step(j, val)
            if ok:
                stack.append((mask | 1 << j, nv))
    # report: the first required ops never linearisable after the best prefix
    mask = best[1]
    stuck = [entries[j] for j in range(n) if not mask >> j & 1 and entries[j][4]]
    stuck.sort(key=lambda e: e[3])
    desc = "; ".join(f"{e[5].client}@{e[5].node} {e[0]} {e[1] if e[1] is not MISSING else 'missing'}"
                     f" [{e[2]:.4f},{e[3]:.4f}]" for e in stuck[:4])
    return (f"key {key}: no linearisation of {n} ops ({len(seen)} states searched); "
            f"after the longest linearisable prefix these ops cannot be placed: {desc}")


# ---------------------------------------------------------------- running one workload

def run_workload(sc: Any) -> Any:
    """run.py's run_scenario for the Maelstrom workloads (sc.workload != 'txn')."""
    from run import drain_intents, finish_run, moves_placed, schedule_moves  # imported lazily
    seed = sc.seed if sc.seed is not None else random.SystemRandom().randrange(1 << 31)
    run_dir = sc.run_dir or tempfile.mkdtemp(prefix=f"strata-{sc.workload}-")
    os.makedirs(run_dir, exist_ok=True)
    data_root = sc.data_dir_root
    if sc.kill_every_ms and not data_root:
        data_root = os.path.join(run_dir, "data")

    def argv(node_id: str) -> list[str]:
        a = [sc.binary, "--isolation", sc.isolation, *sc.node_args]
        if data_root:
            os.makedirs(os.path.join(data_root, node_id), exist_ok=True)
            a += ["--data-dir", os.path.join(data_root, node_id)]
        return a

    sim = Sim(argv, sc.nodes, run_dir, seed, sc.net)
    if sc.setup is not None:
        sc.setup(sim)
    rng = random.Random(sim.rng.random())
    history: list[WOp] = []
    # Integer keys as Maelstrom uses them when sc.int_keys (or $STRATA_WORKLOAD_INT_KEYS=1);
    # string keys otherwise (see README: a node bug with integer keys in error texts)
    int_keys = getattr(sc, "int_keys", os.environ.get("STRATA_WORKLOAD_INT_KEYS") == "1")
    keys: list[Any] = list(range(sc.keys)) if int_keys else [f"k{i}" for i in range(sc.keys)]
    pool = ClientPool(sim, sc.clients, sc.timeout_ms / 1000.0)
    counter = itertools.count(1)
    last_written: dict[Any, list[int]] = defaultdict(list)
    max_ops = getattr(sc, "max_ops", 0) or 0
    sim.start_all()
    if sc.kill_every_ms:
        sim.schedule_kills(sc.kill_every_ms / 1000.0, sc.down_ms / 1000.0, sc.seconds)
    moves = schedule_moves(sim, sc)
    wall0 = time.monotonic()
    final_op: Optional[WOp] = None
    try:
        while sim.now() < sc.seconds and not (max_ops and len(history) >= max_ops):
            for c in pool.clients:
                if c.done and not (max_ops and len(history) >= max_ops):
                    if sc.workload == "lin-kv":
                        c.run(kv_program(c.name, counter, rng, sim.ids, keys, history, sim.now,
                                         last_written))
                    else:
                        c.run(txn_workload_program(c.name, sc.workload, counter, rng, sim.ids,
                                                   keys, history, sim.now))
            sim.step()
        drain_until = sim.now() + 2 * sc.timeout_ms / 1000.0 + sc.down_ms / 1000.0
        while not all(c.done for c in pool.clients) and sim.now() < drain_until:
            sim.step()
        for nid in sim.ids:
            sim.restart(nid)
        if sc.workload != "lin-kv":
            out: list[WOp] = []
            fc = Client("cfinal", sim, max(sc.timeout_ms / 1000.0, 2.0))
            pool.by_name["cfinal"] = fc
            fc.run(final_txn_program(keys, sim.ids, rng, out, sim.now))
            until = sim.now() + 60
            while not fc.done and sim.now() < until:
                sim.step()
            final_op = out[0] if out else None
        intents_left = drain_intents(sim, sc.drain_intents_s) if sc.drain_intents_s > 0 else None
    finally:
        sim.stop_all()
    save_history(history, os.path.join(run_dir, "history.jsonl"))
    final: Optional[dict[Any, Any]] = None
    if final_op is not None:
        final = {k: v for _, k, v in final_op.value}
    with open(os.path.join(run_dir, "final.json"), "w") as f:
        json.dump(final_op.value if final_op else None, f)
    if sc.workload == "lin-kv":
        verdict = check_lin_kv(history)
    elif final is None:
        verdict = Verdict(False, ["final read did not complete"])
    elif sc.workload == "list-append":
        verdict = check_list_append(history, final, sc.isolation)
    else:
        verdict = check_rw_register(history, final, sc.isolation)
    summary: dict[str, object] = {
        "workload": sc.workload,
        "seed": seed,
        "ops": len(history),
        "ok": sum(o.outcome == OK for o in history),
        "failed": sum(o.outcome == FAIL for o in history),
        "conflicts": sum(o.code == 30 for o in history),
        "indefinite": sum(o.outcome == INFO for o in history),
    }
    if moves:
        summary["moves"] = moves_placed(moves)
    return finish_run(sc, sim, wall0, summary, verdict, intents_left, run_dir)
