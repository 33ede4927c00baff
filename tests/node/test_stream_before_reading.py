"""A client that writes a long stream of requests before it reads any reply
must not deadlock with the node: the node keeps reading while stdout is
full (up to its documented bound of unwritten replies)."""
import os
import subprocess
import threading
import unittest

NODE = os.environ.get("STRATA_NODE_BINARY", "build/release/strata-node")


class StreamBeforeReading(unittest.TestCase):
    def test_writes_everything_then_reads(self):
        count = 100000  # about 9 MB of replies: far more than a pipe holds
        lines = ['{"src":"c0","dest":"n1","body":{"type":"init","msg_id":1,"node_id":"n1",'
                 '"node_ids":["n1"]}}']
        for i in range(count):
            lines.append('{"src":"c1","dest":"n1","body":{"type":"mvcc_put","msg_id":%d,'
                         '"key":"k%d","value":"%s","timestamp":%d}}' % (i + 2, i % 1000,
                                                                       "v" * 20, i + 1))
        data = ("\n".join(lines) + "\n").encode()
        node = subprocess.Popen([NODE], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL)
        written = threading.Event()

        def write():
            node.stdin.write(data)  # blocks for good if the node stops reading
            node.stdin.close()
            written.set()

        writer = threading.Thread(target=write, daemon=True)
        writer.start()
        finished = written.wait(timeout=20)
        if not finished:
            node.kill()
        self.assertTrue(finished, "the node stopped reading while its replies went unread")
        out = node.stdout.read()
        node.wait(timeout=30)
        replies = out.count(b'"in_reply_to"')
        self.assertEqual(replies, count + 1)
        self.assertEqual(out.count(b"mvcc_put_ok"), count)


if __name__ == "__main__":
    unittest.main()
