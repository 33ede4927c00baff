"""TLS on the client port, with etcd's flags, driven by Debian's etcdctl and
by strata-ctl. Certificates are made with the openssl command at test time:
a CA, the server's certificate, a client certificate from that CA, one from
another CA, and one that has expired."""
import os
import shutil
import subprocess
import tempfile
import unittest

from servers import StrataServer, etcdctl_binary, strata_binary, strata_ctl_binary

CA_CONFIG = """
[ca]
default_ca = local
[local]
dir = {dir}
database = {dir}/index.txt
new_certs_dir = {dir}
serial = {dir}/serial
default_md = sha256
policy = anything
copy_extensions = copy
[anything]
commonName = supplied
"""


def openssl(*args, cwd):
    p = subprocess.run(["openssl"] + list(args), cwd=cwd, capture_output=True, text=True)
    if p.returncode != 0:
        raise AssertionError("openssl %s: %s" % (" ".join(args), p.stderr))


class Certificates:
    """Every file the tests need, in a temporary directory."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="strata-tls-")
        self._ca("ca")
        self._ca("other-ca")
        self._leaf("server", "ca", "subjectAltName=IP:127.0.0.1,DNS:localhost")
        self._leaf("client", "ca")
        self._leaf("stranger", "other-ca")
        self._leaf("expired", "ca", dates=("20200101000000Z", "20200201000000Z"))
        self._leaf("unrelated-key", "ca")

    def path(self, name):
        return os.path.join(self.dir, name)

    def _ca(self, name):
        d = self.path(name + ".d")
        os.makedirs(d)
        open(os.path.join(d, "index.txt"), "w").close()
        with open(os.path.join(d, "serial"), "w") as f:
            f.write("1000\n")
        with open(os.path.join(d, "ca.cnf"), "w") as f:
            f.write(CA_CONFIG.format(dir=d))
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30",
                "-subj", "/CN=" + name, "-keyout", name + ".key", "-out", name + ".pem",
                cwd=self.dir)

    def _leaf(self, name, ca, san=None, dates=None):
        req = ["req", "-new", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=" + name,
               "-keyout", name + ".key", "-out", name + ".csr"]
        if san:
            req += ["-addext", san]
        openssl(*req, cwd=self.dir)
        sign = ["ca", "-batch", "-notext", "-config", os.path.join(self.path(ca + ".d"), "ca.cnf"),
                "-cert", ca + ".pem", "-keyfile", ca + ".key", "-in", name + ".csr",
                "-out", name + ".pem"]
        sign += ["-startdate", dates[0], "-enddate", dates[1]] if dates else ["-days", "30"]
        openssl(*sign, cwd=self.dir)

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def tls_etcdctl(endpoint, certs, *args, client=None, cacert="ca"):
    """etcdctl over TLS; client names the certificate it presents (or none)."""
    flags = ["--cacert", certs.path(cacert + ".pem")]
    if client:
        flags += ["--cert", certs.path(client + ".pem"), "--key", certs.path(client + ".key")]
    env = dict(os.environ, ETCDCTL_API="3")
    return subprocess.run([etcdctl_binary(), "--endpoints", "https://" + endpoint,
                           "--dial-timeout", "2s", "--command-timeout", "3s"] + flags + list(args),
                          capture_output=True, text=True, timeout=30, env=env)


class Tls(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.certs = Certificates()

    @classmethod
    def tearDownClass(cls):
        cls.certs.cleanup()

    def server(self, *extra):
        c = self.certs
        s = StrataServer(scheme="https", extra_args=[
            "--cert-file", c.path("server.pem"), "--key-file", c.path("server.key")] + list(extra))
        self.addCleanup(s.stop)
        return s.start()

    def test_a_tls_port_serves_etcdctl_and_refuses_plain_and_unverified_clients(self):
        s = self.server()
        self.assertEqual(tls_etcdctl(s.endpoint, self.certs, "put", "k", "v").returncode, 0)
        got = tls_etcdctl(s.endpoint, self.certs, "get", "k", "--print-value-only")
        self.assertEqual((got.returncode, got.stdout), (0, "v\n"))
        self.assertIn("serving TLS client requests on", s.log())
        # Plain gRPC to the TLS port gets nowhere.
        plain = subprocess.run([etcdctl_binary(), "--endpoints", s.endpoint, "--dial-timeout",
                                "2s", "--command-timeout", "3s", "get", "k"],
                               capture_output=True, text=True, timeout=30,
                               env=dict(os.environ, ETCDCTL_API="3"))
        self.assertNotEqual(plain.returncode, 0)
        # A client that does not trust the server's CA does not talk to it.
        untrusting = tls_etcdctl(s.endpoint, self.certs, "put", "k", "other", cacert="other-ca")
        self.assertNotEqual(untrusting.returncode, 0)
        # Without --client-cert-auth a client certificate is not needed.
        self.assertEqual(tls_etcdctl(s.endpoint, self.certs, "get", "k",
                                     "--print-value-only").stdout, "v\n")

    def test_client_cert_auth_refuses_no_wrong_ca_and_expired_certificates(self):
        s = self.server("--trusted-ca-file", self.certs.path("ca.pem"), "--client-cert-auth")
        ok = tls_etcdctl(s.endpoint, self.certs, "put", "k", "v", client="client")
        self.assertEqual(ok.returncode, 0, ok.stderr)
        for client, why in [(None, "no certificate"), ("stranger", "another CA's certificate"),
                            ("expired", "an expired certificate")]:
            with self.subTest(why):
                p = tls_etcdctl(s.endpoint, self.certs, "put", "k", why, client=client)
                self.assertNotEqual(p.returncode, 0, "a client with %s was served" % why)
        got = tls_etcdctl(s.endpoint, self.certs, "get", "k", "--print-value-only",
                          client="client")
        self.assertEqual(got.stdout, "v\n", "a refused client wrote something")
        # strata-ctl speaks TLS with etcdctl's flags.
        c = self.certs
        stats = subprocess.run([strata_ctl_binary(), "--endpoints", "https://" + s.endpoint,
                                "--cacert", c.path("ca.pem"), "--cert", c.path("client.pem"),
                                "--key", c.path("client.key"), "stats", "-w", "json"],
                               capture_output=True, text=True, timeout=30)
        self.assertEqual(stats.returncode, 0, stats.stderr)
        self.assertIn('"revision"', stats.stdout)
        refused = subprocess.run([strata_ctl_binary(), "--endpoints", "https://" + s.endpoint,
                                  "--cacert", c.path("ca.pem"), "stats"],
                                 capture_output=True, text=True, timeout=30)
        self.assertNotEqual(refused.returncode, 0)

    def test_wrong_tls_flags_stop_the_server_with_a_sentence(self):
        c = self.certs
        cases = [
            (["--listen-client-urls", "https://127.0.0.1:0"],
             "https:// client URLs need --cert-file and --key-file"),
            (["--listen-client-urls", "https://127.0.0.1:0", "--cert-file", c.path("server.pem"),
              "--key-file", c.path("unrelated-key.key")], "is not the key of --cert-file"),
            (["--listen-client-urls", "https://127.0.0.1:0", "--cert-file", c.path("nope.pem"),
              "--key-file", c.path("server.key")], "cannot be read"),
            (["--listen-client-urls", "https://127.0.0.1:0", "--cert-file", c.path("expired.pem"),
              "--key-file", c.path("expired.key")], "the certificate has expired"),
            (["--listen-client-urls", "https://127.0.0.1:0", "--cert-file", c.path("server.pem"),
              "--key-file", c.path("server.key"), "--client-cert-auth"],
             "--client-cert-auth needs --trusted-ca-file"),
        ]
        for args, message in cases:
            with self.subTest(message):
                p = subprocess.run([strata_binary(), "--in-memory"] + args, capture_output=True,
                                   text=True, timeout=30)
                self.assertNotEqual(p.returncode, 0)
                self.assertIn(message, p.stderr)


if __name__ == "__main__":
    unittest.main()
