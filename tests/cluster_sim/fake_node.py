#!/usr/bin/env python3
"""A stand-in node that talks to its peers, to test the simulator's routing.

Why: strata-node's peer messages cannot be staged exactly from outside, and
before the cluster existed it sent none, so latency, drops, duplicates,
partitions and the scenario hooks (rules, triggers, client routing) are
proven here. This node relays: `relay {to, kinds?}` from a client makes it
send one message to node `to` per entry of `kinds` (default ["hop"]), all in
one write, and each receiver answers the client directly with `relay_ok`
(naming the kind). `echo` is answered with `echo_ok` by the node itself.
"""
import json
import sys


def main() -> None:
    node_id, msg_id = None, 0
    for line in sys.stdin:
        msg = json.loads(line)
        body = msg["body"]
        outs = []
        if body["type"] == "init":
            node_id = body["node_id"]
            outs.append({"src": node_id, "dest": msg["src"],
                         "body": {"type": "init_ok", "in_reply_to": body["msg_id"]}})
        elif body["type"] == "relay":
            for kind in body.get("kinds", ["hop"]):
                outs.append({"src": node_id, "dest": body["to"],
                             "body": {"type": kind, "client": msg["src"],
                                      "reply_to": body["msg_id"]}})
        elif body["type"] == "echo":
            outs.append({"src": node_id, "dest": msg["src"],
                         "body": {"type": "echo_ok", "in_reply_to": body["msg_id"]}})
        elif "client" in body:  # a relayed message: answer its client
            outs.append({"src": node_id, "dest": body["client"],
                         "body": {"type": "relay_ok", "in_reply_to": body["reply_to"],
                                  "via": msg["src"], "kind": body["type"]}})
        lines = []
        for out in outs:
            out["body"]["msg_id"] = msg_id
            msg_id += 1
            lines.append(json.dumps(out) + "\n")
        if lines:
            sys.stdout.write("".join(lines))  # one write: the simulator reads them together
            sys.stdout.flush()


if __name__ == "__main__":
    main()
