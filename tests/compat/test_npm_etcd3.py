"""The npm `etcd3` client (a client we did not write, on Node.js and
@grpc/grpc-js) against strata-server, through npm_etcd3.js. The package is
installed by scripts/install-deps.sh under build/deps/npm."""
import os
import subprocess
import unittest

from servers import ROOT, StrataServer


class NpmEtcd3(unittest.TestCase):
    def test_client(self):
        modules = os.environ.get("STRATA_NPM_MODULES",
                                 os.path.join(ROOT, "build", "deps", "npm", "node_modules"))
        self.assertTrue(os.path.isdir(os.path.join(modules, "etcd3")),
                        "npm etcd3 is not installed (scripts/install-deps.sh)")
        server = StrataServer().start()
        self.addCleanup(server.stop)
        p = subprocess.run(["node", os.path.join(os.path.dirname(__file__), "npm_etcd3.js")],
                           env=dict(os.environ, ENDPOINT=server.endpoint, NODE_PATH=modules),
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("npm etcd3: ok", p.stdout)


if __name__ == "__main__":
    unittest.main()
