"""Three strata-servers as a sharded cluster whose every shard is a Raft
group on all three (started without --replication-factor: the default, 3),
through etcdctl, etcd's Go client and faults a process sees:

- a member killed -9: every key stays readable and writable through the
  others (each shard led by another member within an election or two),
  a lease keeps its keys and its keep-alives; the member restarted catches
  up, and every member hashes the same history (`endpoint hashkv`);
- a member started again with an empty data directory (its disk lost): the
  others refuse its replicas (it forgot its votes and what it
  acknowledged), say so on /metrics and its /health, and go on serving
  every key with nothing lost; each shard's leader then takes it back
  (removed, added as a learner, promoted once caught up), after which it
  is ready, leads its home shard again and hashes the same history;
- a member restarted keeps the factor its data directory records (without
  the flag too); with another, or with the other kind of data than its
  directory holds (replicated shards' Raft logs with factor 1, keys of
  shards without replicas with 3), it refuses to start, saying why,
  instead of serving none of its keys;
- etcd's serializable Range and strata.v1's follower reads (strata-ctl
  txn --follower-read) read the member's own replicas: with the two other
  members paused they still answer (what it had resolved), where a
  linearizable Range cannot; with the strata-min-revision metadata or
  --min-rev (the revision of a write) they see that write on every member;
- strata.v1 through strata-ctl: an interactive transaction over several
  shards commits at one revision, a key's history from any member;
- a bank workload with Txn clients (some through etcd's Go client) while a
  member is down for seconds, then back: transfers go on while it is down,
  every read of all accounts sums to the total, every acknowledged write is
  there after, and the Txn history is strictly serializable.

Mostly waiting out elections, so in the plain build only; the members'
code runs under ASan in tests/server/cluster_runtime_test (three runtimes
with replicated shards over real gRPC) and tests/replication."""
import json
import os
import re
import shutil
import signal
import subprocess
import time
import unittest
import urllib.error
import urllib.request

import grpc
import xxhash

from kill_under_load import KillUnderLoad
from replicated_load import pb, rpc
from servers import StrataCluster, etcdctl, strata_ctl_binary

MEMBERS = 3


def shard_of(key):
    """The shard an etcd key lives on: ShardMap's equal ranges of XXH3 over
    its engine key ("\\x01" + key)."""
    h = xxhash.xxh3_64_intdigest(b"\x01" + key.encode())
    return max(i for i in range(MEMBERS) if (i << 64) // MEMBERS <= h)


def keys_on_every_shard(prefix, per_shard=2):
    keys, counts = [], [0] * MEMBERS
    i = 0
    while min(counts) < per_shard:
        key = "%s%d" % (prefix, i)
        if counts[shard_of(key)] < per_shard:
            counts[shard_of(key)] += 1
            keys.append(key)
        i += 1
    return keys


def until(what, deadline_s, step=0.1):
    """Calls `what` until it answers truthy or `deadline_s` has passed; the
    last answer."""
    end = time.time() + deadline_s
    while True:
        answer = what()
        if answer or time.time() > end:
            return answer
        time.sleep(step)


def metrics(metrics_port):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % metrics_port, timeout=10) as r:
        return r.read().decode()


def readyz(metrics_port):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d/readyz" % metrics_port,
                                    timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def leases_kept(metrics_ports):
    """Leases the members at `metrics_ports` keep (each lease is kept by one
    member, its record's shard's leader), from their /metrics."""
    return sum(float(re.search(r"^strata_leases (\S+)$", metrics(port), re.M).group(1))
               for port in metrics_ports)


def shards_led(metrics_port):
    """The shards member at `metrics_port` leads, from its /metrics."""
    text = metrics(metrics_port)
    return {int(m.group(1)) for m in
            re.finditer(r'^strata_cluster_shard_replica_leader\{shard="(\d+)"\} 1$', text, re.M)}


class ReplicatedShards(unittest.TestCase):
    def setUp(self):
        # No --replication-factor: the default is what is tested.
        self.cluster = StrataCluster.started_for(self, prefix="strata-rshards-",
                                                 replication_factor=None)

    def leading_member(self):
        """A member that leads a shard, and the shards each member leads, once
        every shard has a leader."""
        def led():
            by_member = [shards_led(port) for port in self.cluster.metrics_ports]
            everyone = set().union(*by_member)
            return by_member if everyone == set(range(MEMBERS)) else None
        by_member = until(led, 10)
        self.assertTrue(by_member, "not every shard has a leader")
        victim = max(range(MEMBERS), key=lambda i: len(by_member[i]))
        return victim, by_member

    def test_a_member_killed_takes_no_keys_with_it(self):
        keys = keys_on_every_shard("k/")
        victim, led = self.leading_member()
        # a: the victim's endpoint; b and c the survivors'.
        endpoints = self.cluster.endpoints()
        a = endpoints[victim]
        b, c = [e for i, e in enumerate(endpoints) if i != victim]
        for i, key in enumerate(keys):
            etcdctl((a, b, c)[i % 3], "put", key, "before")
        out, _ = etcdctl(a, "lease", "grant", "60")
        lease = out.split()[1]
        etcdctl(b, "put", "--lease", lease, "leased", "x")
        self.assertEqual(leases_kept(self.cluster.metrics_ports), 1)

        self.cluster.members[victim].kill()
        killed_at = time.time()
        # Every key written through a survivor, each shard's group led by a
        # survivor within a few election timeouts (1 s each here).
        for i, key in enumerate(keys):
            def written():
                out, _ = etcdctl((b, c)[i % 2], "put", key, "after", check=False)
                return out.strip() == "OK"
            self.assertTrue(until(written, 15), "no write of %s after the kill" % key)
        took = time.time() - killed_at
        print("member %d led shards %s; every key written again %.2f s after its kill" % (
            victim, sorted(led[victim]), took))
        # The survivors lead every shard now.
        survivors = [port for i, port in enumerate(self.cluster.metrics_ports) if i != victim]
        self.assertEqual(shards_led(survivors[0]) | shards_led(survivors[1]), set(range(MEMBERS)))
        for endpoint in (b, c):
            out, _ = etcdctl(endpoint, "get", "k/", "--prefix")
            lines = out.split()
            self.assertEqual(lines[0::2], sorted(keys), endpoint)
            self.assertEqual(set(lines[1::2]), {"after"}, endpoint)
        # The lease lives on: its keys, its countdown (kept by its shard's
        # leader now), a keep-alive.
        out, _ = etcdctl(c, "lease", "timetolive", "--keys", lease)
        self.assertIn("attached keys([leased])", out)
        out, _ = etcdctl(b, "lease", "keep-alive", "--once", lease)
        self.assertIn("keepalived with TTL(60)", out)
        self.assertTrue(until(lambda: leases_kept(survivors) == 1, 5),
                        "the survivors keep the lease")

        self.cluster.members[victim].start()
        # The restarted member reads what was written while it was down,
        # from its own replicas once caught up, or from the leaders.
        out, _ = etcdctl(a, "get", "k/", "--prefix")
        self.assertEqual(set(out.split()[1::2]), {"after"})
        out, _ = etcdctl(a, "get", "leased")
        self.assertEqual(out.split(), ["leased", "x"])

        def same_hashes():
            out, _ = etcdctl(a, "endpoint", "hashkv", "--cluster", check=False)
            hashes = {line.split(", ")[1] for line in out.splitlines() if ", " in line}
            return len(out.splitlines()) == 3 and len(hashes) == 1
        self.assertTrue(until(same_hashes, 10), "members hash different histories")

    def test_a_member_that_lost_its_disk_is_refused_then_taken_back(self):
        keys = keys_on_every_shard("d/")
        victim, _ = self.leading_member()
        endpoints = self.cluster.endpoints()
        b, c = [e for i, e in enumerate(endpoints) if i != victim]
        for i, key in enumerate(keys):
            etcdctl(endpoints[i % 3], "put", key, "v1")
        member = self.cluster.members[victim]
        member.kill()
        shutil.rmtree(member.data_dir)
        member.start()

        # The others refuse its replicas, and it says why on /readyz (and
        # /health answers false).
        survivors = [port for i, port in enumerate(self.cluster.metrics_ports) if i != victim]
        refused = re.compile(r"^strata_cluster_raft_refused_from_replaced_members_total (\d+)",
                             re.M)

        def refusing():
            return any(int(refused.search(metrics(p)).group(1)) > 0 for p in survivors)
        self.assertTrue(until(refusing, 15), "no member refused the wiped one")
        status, body = until(lambda: (lambda h: h if h[0] != 200 else None)(
            readyz(self.cluster.metrics_ports[victim])), 15) or (200, "")
        self.assertEqual(status, 503, "the wiped member says it is ready")
        self.assertIn("data directory was replaced or wiped", body)

        # The survivors lead every shard and serve every key: nothing lost.
        for endpoint in (b, c):
            out, _ = etcdctl(endpoint, "get", "d/", "--prefix")
            self.assertEqual(out.split()[0::2], sorted(keys), endpoint)
            self.assertEqual(set(out.split()[1::2]), {"v1"}, endpoint)
        for i, key in enumerate(keys):
            def written():
                out, _ = etcdctl((b, c)[i % 2], "put", key, "v2", check=False)
                return out.strip() == "OK"
            self.assertTrue(until(written, 15), "no write of %s with the wiped member back" % key)

        # Each shard's leader takes it back, once: it is ready again, leads
        # its home shard (shard i's is member i), and holds every shard's
        # history as the others do.
        started = time.time()
        victim_port = self.cluster.metrics_ports[victim]
        self.assertTrue(until(lambda: readyz(victim_port)[0] == 200, 20),
                        "the wiped member is not taken back: %s" % (readyz(victim_port),))
        self.assertTrue(until(lambda: victim in shards_led(victim_port), 10),
                        "the wiped member does not lead its home shard again")
        print("the wiped member was ready and led its home shard again %.2f s after "
              "the writes through the others" % (time.time() - started))
        changes = re.compile(r'^strata_cluster_shard_replica_changes_total\{change="(\w+)"\} (\d+)',
                             re.M)
        made = {}
        for port in self.cluster.metrics_ports:
            for change, count in changes.findall(metrics(port)):
                made[change] = made.get(change, 0) + int(count)
        self.assertEqual(made, {"removed": MEMBERS, "learner_added": MEMBERS,
                                "promoted": MEMBERS, "leader_handed_over": 0})
        victim_endpoint = endpoints[victim]

        def same_hashes():
            out, _ = etcdctl(victim_endpoint, "endpoint", "hashkv", "--cluster", check=False)
            hashes = {line.split(", ")[1] for line in out.splitlines() if ", " in line}
            return len(out.splitlines()) == 3 and len(hashes) == 1
        self.assertTrue(until(same_hashes, 10), "members hash different histories")
        out, _ = etcdctl(victim_endpoint, "get", "d/", "--prefix", "--consistency", "s")
        self.assertEqual(out.split()[0::2], sorted(keys))
        self.assertEqual(set(out.split()[1::2]), {"v2"})

    def test_a_member_restarted_keeps_its_factor_and_refuses_another(self):
        keys = keys_on_every_shard("s/", per_shard=1)
        for key in keys:
            etcdctl(self.cluster.endpoints()[0], "put", key, "kept")
        for m in self.cluster.members:
            with open(os.path.join(m.data_dir, "replication-factor")) as f:
                self.assertEqual(f.read(), "3\n")
        self.assertIn("3 replicas a shard (the default", self.cluster.members[0].log_text())
        member = self.cluster.members[0]

        def refused_with(args, why):
            member.stop()
            member.extra_args = base + args
            with self.assertRaises(RuntimeError) as refused:
                member.start()
            self.assertIn(why, str(refused.exception))
            self.assertEqual(member.wait_exit(), 1)

        base = list(member.extra_args)
        refused_with(["--replication-factor", "1"], "cannot change yet: give that factor")
        # A directory from before the record: read by what it holds.
        record = os.path.join(member.data_dir, "replication-factor")
        os.rename(record, record + ".kept")
        refused_with(["--replication-factor", "1"], "holds replicated shards' Raft logs")
        os.rename(record + ".kept", record)
        member.extra_args = base
        member.start()
        self.assertIn("3 replicas a shard, as", member.log_text())
        out, _ = etcdctl(member.endpoint, "get", "s/", "--prefix", "--print-value-only")
        self.assertEqual(out.split(), ["kept"] * len(keys))

        # The other way: a cluster without replicas, a member restarted with.
        plain = StrataCluster.started_for(self, prefix="strata-rshards-plain-")
        for key in keys:
            etcdctl(plain.endpoints()[0], "put", key, "plain")
        member = plain.members[0]
        base = [a for a in member.extra_args]
        i = base.index("--replication-factor")
        del base[i:i + 2]
        refused_with(["--replication-factor", "3"], "cannot change yet: give that factor")
        record = os.path.join(member.data_dir, "replication-factor")
        os.remove(record)
        refused_with(["--replication-factor", "3"],
                     "holds keys of a cluster whose shards are not replicated")
        # Without the flag it takes what the directory holds, and records it.
        member.extra_args = base
        member.start()
        with open(record) as f:
            self.assertEqual(f.read(), "1\n")
        out, _ = etcdctl(member.endpoint, "get", "s/", "--prefix", "--print-value-only")
        self.assertEqual(out.split(), ["plain"] * len(keys))

    def test_serializable_reads_are_served_by_the_members_own_replicas(self):
        self.leading_member()  # every shard led
        keys = keys_on_every_shard("s/", per_shard=1)
        kv = [rpc.KVStub(grpc.insecure_channel(e)) for e in self.cluster.endpoints()]
        token = 0
        for i, key in enumerate(keys):
            put = kv[i % MEMBERS].Put(pb.PutRequest(key=key.encode(), value=b"v"), timeout=10)
            token = max(token, put.header.revision)
        # Read-your-writes from any member, through its own replicas or (for
        # a replica not there yet) the shard's leader.
        for stub in kv:
            for key in keys:
                r = stub.Range(pb.RangeRequest(key=key.encode(), serializable=True), timeout=10,
                               metadata=[("strata-min-revision", str(token))])
                self.assertEqual([x.value for x in r.kvs], [b"v"], key)
                self.assertGreaterEqual(r.header.revision, token)
        with self.assertRaises(grpc.RpcError) as refused:
            kv[0].Range(pb.RangeRequest(key=b"s/", serializable=True), timeout=10,
                        metadata=[("strata-min-revision", "soon")])
        self.assertEqual(refused.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)

        def here(port):
            m = re.search(r"^strata_cluster_reads_here_total (\S+)$", metrics(port), re.M)
            return float(m.group(1))
        reader_port = self.cluster.metrics_ports[2]
        served_before = here(reader_port)
        span = pb.RangeRequest(key=b"s/", range_end=b"s0", serializable=True)

        def resolved_every_put():
            return len(kv[2].Range(span, timeout=10).kvs) == len(keys)
        self.assertTrue(until(resolved_every_put, 5), "member 2's replicas never caught up")
        endpoints = self.cluster.endpoints()

        def follower_txn(endpoint, *flags):
            p = subprocess.run([strata_ctl_binary(), "--endpoints", endpoint, "txn",
                                "--follower-read"] + list(flags),
                               input="range s/ s0\nput s/x y\ncommit\n", capture_output=True,
                               text=True, timeout=30)
            self.assertEqual(p.returncode, 0, p.stderr + p.stdout)
            return p.stdout.splitlines()
        # strata.v1: a follower read with the token reads the writes, from
        # any member; it is read-only.
        for endpoint in endpoints:
            out = follower_txn(endpoint, "--min-rev", str(token))
            self.assertTrue(out[0].startswith("begun "), out)
            self.assertGreaterEqual(int(out[0].split()[-1].rstrip(")")), token, out)
            self.assertEqual(out[1:1 + 2 * len(keys):2], sorted(keys), out)
            self.assertIn("read-only", out[1 + 2 * len(keys)], out)
        # The other two paused: member 2 still answers a serializable Range
        # and a follower read from its own replicas, with no leader to ask.
        paused = [self.cluster.members[i].proc for i in (0, 1)]
        for p in paused:
            os.kill(p.pid, signal.SIGSTOP)
        try:
            r = kv[2].Range(span, timeout=5)
            self.assertEqual(sorted(x.key.decode() for x in r.kvs), sorted(keys))
            out = follower_txn(endpoints[2])
            self.assertEqual(out[1:1 + 2 * len(keys):2], sorted(keys), out)
            with self.assertRaises(grpc.RpcError, msg="a linearizable read needs the leaders"):
                kv[2].Range(pb.RangeRequest(key=b"s/", range_end=b"s0"), timeout=2)
        finally:
            for p in paused:
                os.kill(p.pid, signal.SIGCONT)
        # One shard read a shard, at least, for each serializable Range.
        self.assertGreaterEqual(here(reader_port) - served_before, MEMBERS * 2)

    def test_strata_v1_over_replicated_shards(self):
        a, b, c = self.cluster.endpoints()
        keys = keys_on_every_shard("t/", per_shard=1)

        def ctl(endpoint, *args, stdin=None):
            p = subprocess.run([strata_ctl_binary(), "--endpoints", endpoint] + list(args),
                               input=stdin, capture_output=True, text=True, timeout=30)
            self.assertEqual(p.returncode, 0, p.stderr + p.stdout)
            return p.stdout
        etcdctl(a, "put", keys[0], "1")
        script = "get %s\n" % keys[0] + "".join("put %s v\n" % k for k in keys) + "commit\n"
        out = ctl(b, "txn", stdin=script).splitlines()
        self.assertTrue(out[-1].startswith("committed at revision "), out)
        revision = int(out[-1].split()[-1])
        for key in keys:
            got = json.loads(etcdctl(c, "get", key, "-w", "json")[0])["kvs"][0]
            self.assertEqual(got["mod_revision"], revision, key)
        h = json.loads(ctl(a, "history", keys[0], "-w", "json"))
        self.assertEqual([v["version"] for v in h["versions"]], [1, 2])
        self.assertEqual(h["versions"][1]["revision"], revision)

    def test_bank_goes_on_while_a_member_is_down(self):
        run = KillUnderLoad(self.cluster, lambda: self.leading_member()[0], down_s=5.0)
        bank = run.bank
        before = bank.transfers_between(run.started_at, run.killed_at) / (
            run.killed_at - run.started_at)
        down = bank.transfers_between(run.killed_at + 3, run.restarted_at) / (
            run.restarted_at - run.killed_at - 3)
        print("transfers a second: before the kill %.0f, while a member is down (from 3 s on) "
              "%.0f" % (before, down))
        run.check(self)
        # Elections take up to two timeouts of 1 s: from 3 s on, every shard
        # is led by a survivor, and the transfers through the survivors go
        # on near their pace before (the victim's clients wait out their
        # timeouts; calls must not keep trying the dead member first).
        self.assertGreater(down, before / 4, "transfers go on while a member is down")


if __name__ == "__main__":
    unittest.main()


class InMemoryReplicatedShards(unittest.TestCase):
    """Members in memory (--in-memory) replicate their shards too, the Raft
    log in memory: one killed takes no keys with it, and started again
    (empty, as a member whose disk was lost) it is taken back."""

    def test_a_member_in_memory_killed_and_started_again_is_taken_back(self):
        cluster = StrataCluster.started_for(self, prefix="strata-rshards-memory-",
                                            replication_factor=None, in_memory=True)
        self.assertIn("3 replicas a shard (the default", cluster.members[0].log_text())
        keys = keys_on_every_shard("m/")
        endpoints = cluster.endpoints()
        for i, key in enumerate(keys):
            etcdctl(endpoints[i % 3], "put", key, "v1")
        victim = cluster.members[0]
        victim.kill()
        for endpoint in endpoints[1:]:
            got = until(lambda: etcdctl(endpoint, "get", "m/", "--prefix", "--keys-only",
                                        check=False)[0].split() == sorted(keys), 15)
            self.assertTrue(got, "keys lost with the member killed (%s)" % endpoint)
        etcdctl(endpoints[1], "put", keys[0], "v2")
        victim.start()
        port = cluster.metrics_ports[0]
        self.assertTrue(until(lambda: readyz(port)[0] == 200, 30),
                        "the member started again in memory is not taken back: %s"
                        % (readyz(port),))
        out, _ = etcdctl(victim.endpoint, "get", "m/", "--prefix")
        values = dict(zip(out.split()[0::2], out.split()[1::2]))
        self.assertEqual(sorted(values), sorted(keys))
        self.assertEqual(values[keys[0]], "v2")



class ReplicatedShardSnapshots(unittest.TestCase):
    """Replicas' snapshots (every --snapshot-count entries) are files of
    their own beside the Raft log, one a replica: a member killed -9 starts
    again from them, and a member whose disk was lost is sent the leaders'
    (read from their files; its groups' entries before them are gone) and
    holds every key."""

    def test_snapshots_are_files_a_restart_and_a_wiped_member_read(self):
        cluster = StrataCluster.started_for(self, prefix="strata-rshards-snap-",
                                            replication_factor=None,
                                            extra_args=["--snapshot-count", "20"])
        keys = keys_on_every_shard("f/", per_shard=12)
        endpoints = cluster.endpoints()
        for i, key in enumerate(keys):
            etcdctl(endpoints[i % 3], "put", key, "v%d" % i)

        def figure(port, name):
            found = re.search(r"^%s (\S+)$" % name, metrics(port), re.M)
            return float(found.group(1)) if found else -1

        def snapshot_files(member):
            raft_dir = os.path.join(member.data_dir, "shard-raft")
            return sorted(n for n in os.listdir(raft_dir) if n.startswith("snapshot-"))

        for member, port in zip(cluster.members, cluster.metrics_ports):
            self.assertTrue(until(lambda: figure(port, "strata_cluster_raft_snapshot_files") == 3,
                                  20), "no snapshot of each replica in %s" % member.data_dir)
            self.assertGreaterEqual(figure(port, "strata_cluster_raft_snapshots_total"), 3)
            self.assertEqual(figure(port, "strata_cluster_raft_snapshots_unwritten_total"), 0)
            # Replaced ones deleted, no temporary left. Snapshots go on
            # every 20 entries (the shards' closes are entries), so a
            # listing may catch one being written or replaced: the three
            # alone must be seen.
            def three_files(member=member):
                files = snapshot_files(member)
                return len(files) == 3 and all(n.endswith(".snap") for n in files)
            self.assertTrue(until(three_files, 10), snapshot_files(member))

        def reads_every_key(endpoint):
            out, _ = etcdctl(endpoint, "get", "f/", "--prefix", "--consistency", "s", check=False)
            values = dict(zip(out.split()[0::2], out.split()[1::2]))
            return values == {key: "v%d" % i for i, key in enumerate(keys)}

        # Killed -9 and started again: from its snapshot files and the
        # entries after them.
        first = cluster.members[0]
        first.kill()
        first.start()
        self.assertTrue(until(lambda: reads_every_key(first.endpoint), 15),
                        "a member started again from its snapshots lacks keys")

        # Its disk lost: the leaders' snapshots bring it back.
        wiped = cluster.members[1]
        wiped.kill()
        shutil.rmtree(wiped.data_dir)
        wiped.start()
        port = cluster.metrics_ports[1]
        self.assertTrue(
            until(lambda: figure(port, "strata_cluster_raft_snapshots_restored_total") >= 3, 30),
            "the wiped member restored no leader's snapshot of each shard")
        self.assertTrue(until(lambda: readyz(port)[0] == 200, 30),
                        "the wiped member is not taken back: %s" % (readyz(port),))
        self.assertTrue(until(lambda: reads_every_key(wiped.endpoint), 15),
                        "the wiped member lacks keys after the leaders' snapshots")
        self.assertTrue(until(lambda: len(snapshot_files(wiped)) == 3, 10),
                        "the snapshots received were not kept as files: %s"
                        % snapshot_files(wiped))
        # The leaders sent them from their files (their copies released).
        for port in cluster.metrics_ports:
            self.assertEqual(figure(port, "strata_cluster_raft_snapshot_reads_failed_total"), 0)
