#!/usr/bin/env python3
"""The layering as a check: which folder's code may include which folder's
headers, and that the build declares it.

Each layer lists the layers below it that it may use; a quoted #include of
a project header from anywhere else fails the check, naming the file and
line. Every edge the code uses must also be a link edge of the layer's
library in CMakeLists.txt (directly or through another library). The build
enforces that too (a library sees only the folders of what it links, see
strata_layer_root in CMakeLists.txt), but this names the file and the edge
at once. A new edge is decided in this file, in review, not by accident.

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
    # Raft is pure: terms, logs and messages, no clock, disk or socket.
    "raft": set(),
    # A node's Raft groups: their log on disk (storage's files and
    # encodings) and the loop that drives them.
    "replication": {"strata", "storage", "raft"},
    # A replicated shard (cluster/replicated_*) is a Raft group's state.
    "cluster": {"strata", "storage", "replication", "raft"},
    "protocol": {"strata", "cluster"},
    "node": {"strata", "protocol", "cluster"},
    # ClusterKv runs etcd's rules over the cluster's transactions.
    "service": {"strata", "storage", "cluster"},
    "ops": {"strata", "protocol"},
    "server": {"strata", "service", "ops", "protocol", "cluster", "replication", "raft"},
    # The in-process cluster driver runs members over the server's links.
    "bench": {"strata", "bench", "cluster", "server"},
    "examples": {"strata"},  # what an installed user has: the public API only
    # tools/ (main functions) and tests/ may use any layer.
}
for _layer, _uses in ALLOWED.items():
    if _layer not in ("base", "strata", "examples"):
        _uses.add("base")

# Each layer's library (header-only layers have none).
LIBRARY = {
    "engine": "strata_engine", "txn": "strata_txn", "storage": "strata_storage",
    "cluster": "strata_cluster", "raft": "strata_raft", "replication": "strata_replication", "protocol": "strata_protocol", "node": "strata_node_core",
    "service": "strata_service", "ops": "strata_ops", "server": "strata_server",
}

# Files of a layer that build into another library of it (path prefix ->
# library): their edges must be linked by that library.
FILE_LIBRARY = {
    "service/cluster_": "strata_service_cluster",
    "service/key_lanes": "strata_service_cluster",
    "service/shard_locks": "strata_service_cluster",
    "cluster/replicated_": "strata_cluster_replicated",
    "cluster/replica_changes": "strata_cluster_replicated",
    "cluster/shard_group_report": "strata_cluster_replicated",
    "cluster/shard_groups": "strata_cluster_replicated",
}

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"/]+)/')
LINK = re.compile(r"target_link_libraries\(\s*(\S+)([^)]*)\)", re.S)


def link_graph(root):
    """library -> the libraries it links, transitively, from CMakeLists.txt."""
    with open(os.path.join(root, "CMakeLists.txt"), encoding="utf-8") as f:
        text = f.read()
    direct = {}
    for m in LINK.finditer(text):
        direct.setdefault(m.group(1), set()).update(re.findall(r"\bstrata_\w+", m.group(2)))
    closure = {}
    for lib in direct:
        seen, todo = set(), list(direct[lib])
        while todo:
            d = todo.pop()
            if d not in seen:
                seen.add(d)
                todo.extend(direct.get(d, ()))
        closure[lib] = seen
    return closure


def main():
    root = subprocess.check_output(["git", "rev-parse", "--show-toplevel"], text=True).strip()
    files = subprocess.check_output(["git", "ls-files", "*.cc", "*.h"], cwd=root,
                                    text=True).split()
    links = link_graph(root)
    violations, edges = [], set()
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
                if target == layer or target not in ALLOWED:
                    continue
                if target in ALLOWED[layer]:
                    lib = next((l for p, l in FILE_LIBRARY.items() if path.startswith(p)),
                               LIBRARY.get(layer))
                    edges.add((layer, lib, target))
                    continue
                violations.append("%s:%d: %s/ may not include %s/ (%s)"
                                  % (path, n, layer, target, line.strip()))
    for layer, lib, target in sorted(edges, key=lambda e: (e[0], e[1] or "", e[2])):
        dep = LIBRARY.get(target)
        if lib and dep and dep not in links.get(lib, set()):
            violations.append("%s/ includes %s/ but %s does not link %s in CMakeLists.txt"
                              % (layer, target, lib, dep))
    for v in violations:
        print(v)
    if violations:
        print("check-layers: %d problem(s); the allowed edges are in %s" % (len(violations),
                                                                           __file__))
        return 1
    print("check-layers: %d files; %d edges between layers, each allowed and linked"
          % (len(files), len(edges)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
