#!/usr/bin/env python3
"""A stand-in node that talks to its peers, to test the simulator's routing.

Why: strata-node sends no node-to-node messages yet, so latency, drops,
duplicates and partitions would go untested until the cluster lands. This
node relays: `relay {to}` from a client makes it send `hop` to node `to`,
which answers the client directly with `relay_ok`.
"""
import json
import sys


def main() -> None:
    node_id, msg_id = None, 0
    for line in sys.stdin:
        msg = json.loads(line)
        body = msg["body"]
        out = None
        if body["type"] == "init":
            node_id = body["node_id"]
            out = {"src": node_id, "dest": msg["src"], "body": {"type": "init_ok", "in_reply_to": body["msg_id"]}}
        elif body["type"] == "relay":
            out = {"src": node_id, "dest": body["to"],
                   "body": {"type": "hop", "client": msg["src"], "reply_to": body["msg_id"]}}
        elif body["type"] == "hop":
            out = {"src": node_id, "dest": body["client"],
                   "body": {"type": "relay_ok", "in_reply_to": body["reply_to"], "via": msg["src"]}}
        if out is not None:
            out["body"]["msg_id"] = msg_id
            msg_id += 1
            sys.stdout.write(json.dumps(out) + "\n")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
