"""A member killed -9 under load, for the cluster tests with faults: the
bank (bank.py) and Txn clients whose history is checked, in Python and
through etcd's Go client (history_clients.py), over every member; 1.5 s
on, one member is killed, started again `down_s` later, and the load runs
2 s more. Before the kill and after the restart the load also runs until
the bank has made more than MIN_TRANSFERS transfers (at most
WAIT_FOR_TRANSFERS_S more): on a machine busy with other suites the bank
once made only 5 in the first 1.5 s, its clients' start included."""
import time

MIN_TRANSFERS = 5
WAIT_FOR_TRANSFERS_S = 15.0

from bank import Bank
from history_clients import ClientV3History, HistoryClients


class KillUnderLoad:
    def __init__(self, cluster, pick_victim, down_s):
        """`pick_victim()`: the index of the member to kill, asked once the
        load has run a while."""
        self.bank = Bank(cluster.endpoints()).start()
        self.history = HistoryClients(cluster.endpoints()).start()
        self.go_history = ClientV3History(cluster.endpoints()).start()
        self.started_at = time.time()
        try:
            time.sleep(1.5)
            self._wait_for_transfers_since(self.started_at)
            victim = cluster.members[pick_victim()]
            victim.kill()
            self.killed_at = time.time()
            time.sleep(down_s)
            victim.start()
            self.restarted_at = time.time()
            time.sleep(2.0)
            self._wait_for_transfers_since(self.restarted_at)
        finally:
            self.bank.stop()
            self.history.stop()
            self.go_history.stop()

    def _wait_for_transfers_since(self, start):
        deadline = time.time() + WAIT_FOR_TRANSFERS_S
        while (self.bank.transfers_between(start, time.time()) <= MIN_TRANSFERS
               and time.time() < deadline):
            time.sleep(0.1)

    def check(self, test):
        """Every read summed to the total, every acknowledged write is
        there, both histories check, and transfers went on before the kill
        and after the restart."""
        self.bank.check(test)
        self.history.check(test)
        self.go_history.check(test)
        test.assertGreater(self.bank.transfers_between(self.started_at, self.killed_at),
                           MIN_TRANSFERS)
        test.assertGreater(self.bank.transfers_between(self.restarted_at, time.time()),
                           MIN_TRANSFERS, "transfers go on after the restart")
