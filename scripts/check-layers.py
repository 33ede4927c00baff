#!/usr/bin/env python3
"""The layering as a check: which folder's code may include which folder's
headers. Each layer lists the layers below it that it may use; a quoted
#include of a project header from anywhere else fails the check, naming the
file and line. The build's link lines (CMakeLists.txt) must declare the same
edges; this is where a new one is decided, in review, not by accident.

KNOWN_DEBT lists edges that exist today against the design; they are to be
removed (issue 12 moves the cluster out of node/ and protocol/), and the
check fails once one of them is gone so the list shrinks with the code.

Usage: scripts/check-layers.py   (from anywhere; exit 1 on a violation)
"""
import os
import re
import subprocess
import sys

# layer -> the layers its code may include (itself always allowed).
# "strata" is the public API, include/strata/; "base" (the annotated mutex)
# is for every layer but the public API (it is not installed).
ALLOWED = {
    "base": set(),
    "strata": set(),
    "engine": {"strata"},
    "txn": {"strata"},
    "storage": {"strata"},
    "cluster": {"strata"},
    "protocol": {"strata"},
    "node": {"strata", "protocol", "cluster"},
    "service": {"strata", "storage"},
    "ops": {"strata", "protocol"},
    "server": {"strata", "service", "ops", "protocol"},
    "bench": {"strata", "bench"},
    "examples": {"strata"},  # what an installed user has: the public API only
    # tools/ (main functions) and tests/ may use any layer.
}
for _layer, _uses in ALLOWED.items():
    if _layer not in ("base", "strata", "examples"):
        _uses.add("base")

# Edges that exist against the design, each with its file, to be removed.
KNOWN_DEBT = {
    ("cluster", "storage"): "cluster/durable_state.cc keeps intents in a Store's log format",
    ("protocol", "cluster"): "protocol/cluster_codec.h encodes the cluster's messages",
}

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"/]+)/')


def main():
    root = subprocess.check_output(["git", "rev-parse", "--show-toplevel"], text=True).strip()
    files = subprocess.check_output(["git", "ls-files", "*.cc", "*.h"], cwd=root,
                                    text=True).split()
    violations, seen_debt = [], set()
    for path in files:
        parts = path.split("/")
        layer = "strata" if parts[0] == "include" else parts[0]
        if layer not in ALLOWED:
            continue
        with open(os.path.join(root, path), encoding="utf-8", errors="replace") as f:
            for n, line in enumerate(f, 1):
                m = INCLUDE.match(line)
                if not m:
                    continue
                target = m.group(1)
                if target == layer or target not in ALLOWED or target in ALLOWED[layer]:
                    continue
                if (layer, target) in KNOWN_DEBT:
                    seen_debt.add((layer, target))
                    continue
                violations.append("%s:%d: %s/ may not include %s/ (%s)"
                                  % (path, n, layer, target, line.strip()))
    for edge in sorted(set(KNOWN_DEBT) - seen_debt):
        violations.append("KNOWN_DEBT lists %s -> %s, which no longer exists: remove it"
                          % edge)
    for v in violations:
        print(v)
    if violations:
        print("check-layers: %d problem(s); the allowed edges are in %s" % (len(violations),
                                                                           __file__))
        return 1
    print("check-layers: %d files, every include within its layer's edges "
          "(%d known debts)" % (len(files), len(KNOWN_DEBT)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
