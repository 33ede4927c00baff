"""A strata cluster (tests/compat/servers.py) whose every peer link, member X
to member Y, runs through a netfault Link of its own, so each direction of
each pair can be cut, slowed or blackholed alone."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "compat"))
from netfault import Link  # noqa: E402
from servers import StrataCluster  # noqa: E402


class ProxiedCluster(StrataCluster):
    """Every member is given the same peer URLs (a replicated cluster derives
    its members' ids from them) and told to dial each other member through
    a Link of its own (STRATA_PEER_FAULTS' route rules, server/
    peer_faults.h), so each direction of each pair can fail alone."""

    NEW_PORTS_ON_CLASH = False

    def __init__(self, root, n=3, member_env=None, extra_args=()):
        super().__init__(root, n, member_env=member_env, extra_args=extra_args)
        self.links = {}
        for src, member in zip(self.names, self.members):
            routes = []
            for dst, port in zip(self.names, self.peer_ports):
                if dst == src:
                    continue
                link = Link("%s->%s" % (src, dst), ("127.0.0.1", port)).start()
                self.links[(src, dst)] = link
                routes.append("route=127.0.0.1:%d>127.0.0.1:%d" % (port, link.port))
            env = member.env if member.env is not None else dict(os.environ)
            env["STRATA_PEER_FAULTS"] = ";".join(
                [r for r in [env.get("STRATA_PEER_FAULTS", "")] if r] + routes)
            member.env = env

    def partition(self, name):
        for (src, dst), link in self.links.items():
            if name in (src, dst):
                link.cut()

    def cut(self, a, b):
        """Both directions between members a and b."""
        self.links[(a, b)].cut()
        self.links[(b, a)].cut()

    def heal(self):
        for link in self.links.values():
            link.heal()
            link.delay(0)

    def stop(self):
        super().stop()
        for link in self.links.values():
            link.stop()
