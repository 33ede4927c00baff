"""A longer run of test_cluster_partitions.py's checks, not part of `make
test`: ROUNDS rounds (default 20, about 8 s each) against one cluster of
three strata-servers behind netfault Links, each round a fault chosen at
random (seeded by STRATA_SOAK_SEED): a member partitioned away, a one-way
blackhole with slow links elsewhere, or a member killed -9 and restarted.
Every round checks what the test does (the bank's sums, every acknowledged
write, the Txn history, the watcher). With STRATA_SOAK_REPLICATION_FACTOR=3
the members replicate every shard (--replication-factor 3); a fault then
need not be felt by the clients (writes go on through the others).

    make build
    STRATA_SERVER_BINARY=build/release/strata-server \\
        /usr/bin/python3 tests/netfault/soak_cluster_partitions.py 50
"""
import os
import random
import sys
import time
import unittest

import test_cluster_partitions as partitions


REPLICATION_FACTOR = int(os.environ.get("STRATA_SOAK_REPLICATION_FACTOR", "1"))


class Soak(partitions.ClusterPartitions):
    rounds = 20

    def setUp(self):
        if REPLICATION_FACTOR == 1:
            return super().setUp()
        self.cluster = partitions.ProxiedCluster.started_for(
            self, "strata-rs-soak-",
            extra_args=["--replication-factor", str(REPLICATION_FACTOR)])

    def test_rounds_of_random_faults(self):
        rng = random.Random(int(os.environ.get("STRATA_SOAK_SEED", "1")))
        members = self.cluster.names

        def partition():
            self.cluster.partition(rng.choice(members))

        def blackhole():
            src, dst = rng.sample(members, 2)
            for (s, d), link in self.cluster.links.items():
                if (s, d) == (src, dst):
                    link.blackhole()
                else:
                    link.delay(rng.choice([0.0, 0.01, 0.03]))

        def kill():
            # Not m0: the watcher's stream is on it.
            victim = rng.choice(self.cluster.members[1:])
            victim.kill()
            time.sleep(rng.uniform(1.0, 2.0))
            victim.start()

        for i in range(self.rounds):
            fault = rng.choice([partition, blackhole, kill])
            print("round %d of %d: %s" % (i + 1, self.rounds, fault.__name__), file=sys.stderr,
                  flush=True)
            self.run_fault(fault, tag="r%d" % i, felt_s=1.0 if REPLICATION_FACTOR == 1 else 0.0)


if __name__ == "__main__":
    if len(sys.argv) > 1:
        Soak.rounds = int(sys.argv.pop(1))
    unittest.main(defaultTest="Soak.test_rounds_of_random_faults")
