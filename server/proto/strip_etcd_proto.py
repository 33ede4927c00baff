#!/usr/bin/env python3
"""Makes etcd's .proto files compile with plain protoc.

etcd's protos import gogoproto (Go code generation options) and
google/api/annotations (the HTTP gateway). Neither changes the wire format:
they are options only Go and the gateway generator read. This script drops
the imports and every option that names them, and flattens the import paths
of kv.proto and auth.proto, so that protoc with grpc_cpp_plugin needs nothing
but the three files. Package names and field numbers are left untouched: they
are what makes the result wire-compatible (/etcdserverpb.KV/Range, ...).

Usage: strip_etcd_proto.py IN.proto OUT.proto
"""
import re
import sys


def drop_braced_option(text, head):
    """Removes every `option (head) = { ... };` block, braces matched."""
    out = []
    pos = 0
    pattern = re.compile(r"option\s*\(" + re.escape(head) + r"\)\s*=\s*\{")
    while True:
        m = pattern.search(text, pos)
        if not m:
            out.append(text[pos:])
            return "".join(out)
        out.append(text[pos:m.start()])
        depth = 0
        i = m.end() - 1
        while True:
            if text[i] == "{":
                depth += 1
            elif text[i] == "}":
                depth -= 1
                if depth == 0:
                    break
            i += 1
        i += 1
        while i < len(text) and text[i] in " \t;":
            i += 1
        pos = i


def strip(text):
    text = re.sub(r'^\s*import\s+"(gogoproto/gogo|google/api/annotations)\.proto";\s*\n', "",
                  text, flags=re.M)
    text = re.sub(r'^\s*option\s*\(gogoproto\.[^)]*\)\s*=[^;]*;\s*\n', "", text, flags=re.M)
    # Field options: `[(gogoproto.nullable) = false]`, possibly several.
    text = re.sub(r'\s*\[\s*\(gogoproto\.[^\]]*\]', "", text)
    text = drop_braced_option(text, "google.api.http")
    # An rpc whose only option block went away: `{ }` -> `;` (both compile,
    # this keeps the output tidy).
    text = re.sub(r'\)\s*\{\s*\}', ");", text)
    text = re.sub(r'import\s+"etcd/mvcc/mvccpb/kv\.proto";', 'import "kv.proto";', text)
    text = re.sub(r'import\s+"etcd/auth/authpb/auth\.proto";', 'import "auth.proto";', text)
    if "gogoproto" in text or "google.api" in text:
        raise SystemExit("strip_etcd_proto: an option this script does not know is left")
    return text


def main():
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    with open(sys.argv[1], encoding="utf-8") as f:
        text = f.read()
    with open(sys.argv[2], "w", encoding="utf-8") as f:
        f.write(strip(text))


if __name__ == "__main__":
    main()
