"""A member killed -9 under load, for the cluster tests with faults: the
bank (bank.py) and Txn clients whose history is checked, in Python and
through etcd's Go client (history_clients.py), over every member; 1.5 s
on, one member is killed, started again `down_s` later, and the load runs
2 s more."""
import time

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
            victim = cluster.members[pick_victim()]
            victim.kill()
            self.killed_at = time.time()
            time.sleep(down_s)
            victim.start()
            self.restarted_at = time.time()
            time.sleep(2.0)
        finally:
            self.bank.stop()
            self.history.stop()
            self.go_history.stop()

    def check(self, test):
        """Every read summed to the total, every acknowledged write is
        there, both histories check, and transfers went on before the kill
        and after the restart."""
        self.bank.check(test)
        self.history.check(test)
        self.go_history.check(test)
        test.assertGreater(self.bank.transfers_between(self.started_at, self.killed_at), 5)
        test.assertGreater(self.bank.transfers_between(self.restarted_at, time.time()), 5,
                           "transfers go on after the restart")
