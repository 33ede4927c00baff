"""strata as its users install it.

- `cmake --install` puts the binaries, the headers and the CMake package in
  a prefix; examples/ (the README's C++ example among them) is configured
  with find_package(strata), built under -Wall -Wextra -Werror and run.
- The README's example is examples/readme_example.cc's, line for line.
- `make package`'s .deb (CPack) installs into an empty root with dpkg: the
  files land, the options file is a conffile, the server in it starts and
  serves etcdctl, the systemd unit passes `systemd-analyze verify`, the
  examples build against the packaged libraries, and removing it leaves the
  data alone.
"""
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

SOURCE = os.environ.get("STRATA_SOURCE_DIR",
                        os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
BUILD = os.environ.get("STRATA_BUILD_DIR", os.path.join(SOURCE, "build", "release"))
sys.path.insert(0, os.path.join(SOURCE, "tests", "compat"))
from servers import StrataServer, etcdctl  # noqa: E402

EXAMPLES = ["readme_example", "bank_transfer", "time_travel"]


def run(*args, cwd=None, env=None):
    p = subprocess.run(list(args), cwd=cwd, env=env, capture_output=True, text=True, timeout=240)
    if p.returncode != 0:
        raise AssertionError("%s failed (%d):\n%s\n%s" % (" ".join(args), p.returncode,
                                                         p.stdout[-3000:], p.stderr[-3000:]))
    return p.stdout


def build_examples(prefix, where):
    run("cmake", "-S", os.path.join(SOURCE, "examples"), "-B", where, "-G", "Ninja",
        "-DCMAKE_PREFIX_PATH=" + prefix)
    run("cmake", "--build", where)
    return {e: run(os.path.join(where, e)).strip() for e in EXAMPLES}


def serve_and_check(binary, data_dir, test):
    """Starts `binary` (a strata-server) and has etcdctl put and get through it."""
    env_before = os.environ.get("STRATA_SERVER_BINARY")
    os.environ["STRATA_SERVER_BINARY"] = binary
    try:
        server = StrataServer(data_dir=data_dir).start()
    finally:
        if env_before is None:
            del os.environ["STRATA_SERVER_BINARY"]
        else:
            os.environ["STRATA_SERVER_BINARY"] = env_before
    try:
        etcdctl(server.endpoint, "put", "installed", "yes")
        test.assertEqual(etcdctl(server.endpoint, "get", "installed", "--print-value-only")[0],
                         "yes\n")
    finally:
        server.stop()


class Packaging(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.work = tempfile.mkdtemp(prefix="strata-packaging-")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.work, ignore_errors=True)

    def test_install_and_build_the_examples_through_the_package(self):
        prefix = os.path.join(self.work, "prefix")
        run("cmake", "--install", BUILD, "--prefix", prefix)
        for f in ["bin/strata-server", "bin/strata-ctl", "bin/strata-node",
                  "include/strata/store.h", "lib/cmake/strata/strataConfig.cmake",
                  "lib/systemd/system/strata.service", "etc/default/strata",
                  "share/doc/strata/README.md"]:
            self.assertTrue(os.path.exists(os.path.join(prefix, f)), f)
        self.assertEqual(run(os.path.join(prefix, "bin", "strata-server"), "--version").strip(),
                         "strata-server 0.11.0")
        got = build_examples(prefix, os.path.join(self.work, "examples"))
        self.assertEqual(got, {e: e + ": ok" for e in EXAMPLES})

    def test_the_readme_example_is_the_one_built(self):
        with open(os.path.join(SOURCE, "examples", "readme_example.cc")) as f:
            example = f.read()
        region = example.split("// README:begin\n")[1].split("  // README:end")[0]
        with open(os.path.join(SOURCE, "README.md")) as f:
            readme = f.read()
        self.assertIn("```cpp\n" + region, readme,
                      "README.md's C++ example differs from examples/readme_example.cc")

    def test_debian_package_in_an_empty_root(self):
        pkg = os.path.join(self.work, "pkg")
        run("cpack", "-G", "DEB", "-B", pkg, "--config", os.path.join(BUILD, "CPackConfig.cmake"))
        debs = [f for f in os.listdir(pkg) if f.endswith(".deb")]
        self.assertEqual(len(debs), 1, debs)
        deb = os.path.join(pkg, debs[0])
        info = run("dpkg-deb", "--info", deb)
        self.assertIn("Package: strata", info)
        self.assertIn("libgrpc++1.51", info)  # found by dpkg-shlibdeps

        # An empty root: dpkg's database and nothing else. The dependencies
        # are the host's (not in the root); scripts run outside it.
        root = os.path.join(self.work, "root")
        os.makedirs(os.path.join(root, "var", "lib", "dpkg", "info"))
        os.makedirs(os.path.join(root, "var", "lib", "dpkg", "updates"))
        for f in ("status", "available"):
            open(os.path.join(root, "var", "lib", "dpkg", f), "w").close()
        dpkg = ["dpkg", "--root=" + root, "--log=/dev/null", "--force-script-chrootless",
                "--force-depends"]
        run(*dpkg, "-i", deb)
        status = run("dpkg", "--root=" + root, "-s", "strata")
        self.assertIn("Status: install ok installed", status)
        self.assertIn("/etc/default/strata", status)  # a conffile: kept over upgrades
        for f in ["usr/bin/strata-server", "usr/bin/strata-ctl", "usr/include/strata/store.h",
                  "usr/lib/systemd/system/strata.service", "etc/default/strata",
                  "usr/lib/cmake/strata/strataConfig.cmake", "usr/share/doc/strata/README.md"]:
            self.assertTrue(os.path.exists(os.path.join(root, f)), f)

        # The binary runs and serves; the unit parses and names it.
        serve_and_check(os.path.join(root, "usr", "bin", "strata-server"),
                        os.path.join(self.work, "pkg-data"), self)
        verify = ["systemd-analyze", "verify", "--recursive-errors=no", "--root=" + root]
        run(*verify, "/usr/lib/systemd/system/strata.service")
        # ...and verify does judge: a unit with a bad line fails.
        with open(os.path.join(root, "usr/lib/systemd/system/strata.service")) as f:
            unit = f.read()
        with open(os.path.join(root, "usr/lib/systemd/system/broken.service"), "w") as f:
            f.write(unit.replace("ExecStart=/usr/bin/strata-server", "ExecStart=/usr/bin/nothere"))
        p = subprocess.run(verify + ["/usr/lib/systemd/system/broken.service"],
                           capture_output=True, text=True, timeout=60)
        self.assertNotEqual(p.returncode, 0)

        # The packaged (stripped) libraries still link.
        got = build_examples(os.path.join(root, "usr"), os.path.join(self.work, "pkg-examples"))
        self.assertEqual(got, {e: e + ": ok" for e in EXAMPLES})

        data = os.path.join(self.work, "pkg-data")
        run(*dpkg, "-r", "strata")
        self.assertFalse(os.path.exists(os.path.join(root, "usr", "bin", "strata-server")))
        self.assertTrue(os.path.exists(os.path.join(root, "etc", "default", "strata")),
                        "remove (not purge) keeps the conffile")
        self.assertTrue(os.listdir(data), "the data is the administrator's")


if __name__ == "__main__":
    unittest.main()
