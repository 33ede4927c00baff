"""A strata cluster (tests/compat/servers.py) whose every peer link, member X
to member Y, runs through a netfault Link of its own, so each direction of
each pair can be cut, slowed or blackholed alone."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "compat"))
from netfault import Link  # noqa: E402
from servers import StrataCluster  # noqa: E402


class ProxiedCluster(StrataCluster):
    """Each member is told the other members' peer ports as the ports of its
    own Links to them, so each direction of each pair can fail alone."""

    def __init__(self, root, n=3, member_env=None, extra_args=()):
        self.links = {}

        def route(src, dst, port):
            link = Link("%s->%s" % (src, dst), ("127.0.0.1", port)).start()
            self.links[(src, dst)] = link
            return link.port

        super().__init__(root, n, route=route, member_env=member_env, extra_args=extra_args)

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
