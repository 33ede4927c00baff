"""etcd's Auth on strata-server, compared with the reference etcd 3.4.23.

The same users, roles and permissions are set up on both servers through
raw gRPC; then every request of a table is sent to both as a given user and
the answers (or errors, code and text) must be equal. A read-only user must
not write through Put, DeleteRange, a Txn or a lease's keys, nor read
outside its range through Range, Watch or a Txn's compare.

Then what etcd 3.4 does not check and strata does (nested Txns, Compact
without a user), the strata.v1 service under the same permissions, the
state surviving a restart, and passwords never stored or logged in clear.
(etcd's own e2e tests, TestCtlV3Auth* in etcd_e2e/allow-list.txt, drive
the same through etcdctl.)
"""
import os
import shutil
import tempfile
import unittest

import grpc
from google.protobuf.json_format import MessageToDict

from servers import EtcdServer, RequestQueue, StrataServer, python_stubs

python_stubs()
import auth_pb2  # noqa: E402  (generated at build time)
import rpc_pb2 as pb  # noqa: E402
import rpc_pb2_grpc as rpc  # noqa: E402
import strata_pb2 as v1  # noqa: E402
import strata_pb2_grpc as v1rpc  # noqa: E402

ROOT_PASSWORD = "root-secret-7f3a"
READER_PASSWORD = "reader-secret-91c2"
WRITER_PASSWORD = "writer-secret-44be"

READ, WRITE, READWRITE = 0, 1, 2


def prefix_end(p):
    return p[:-1] + bytes([p[-1] + 1])


class Side:
    """One server, with a stub per service and a token per user."""

    def __init__(self, endpoint):
        self.channel = grpc.insecure_channel(endpoint)
        self.kv = rpc.KVStub(self.channel)
        self.lease = rpc.LeaseStub(self.channel)
        self.watch = rpc.WatchStub(self.channel)
        self.auth = rpc.AuthStub(self.channel)
        self.maintenance = rpc.MaintenanceStub(self.channel)
        self.strata = v1rpc.StrataStub(self.channel)
        self.tokens = {}

    def login(self, user, password):
        self.tokens[user] = self.auth.Authenticate(
            pb.AuthenticateRequest(name=user, password=password), timeout=10).token

    def md(self, user):
        if user is None:
            return []
        if user == "bad-token":
            return [("token", "nosuchtoken.1")]
        return [("token", self.tokens[user])]

    def call(self, user, method, request):
        try:
            return ("ok", method(request, metadata=self.md(user), timeout=10))
        except grpc.RpcError as e:
            return ("error", e.code().name, e.details())

    def watch_create(self, user, key, range_end=b""):
        """The first answer to a watch create."""
        q = RequestQueue(pb.WatchRequest(create_request=pb.WatchCreateRequest(
            key=key, range_end=range_end)))
        stream = self.watch.Watch(iter(q), metadata=self.md(user), timeout=10)
        try:
            return next(stream)
        finally:
            q.close()
            stream.cancel()


def normalize(result):
    if result[0] != "ok":
        return result
    d = MessageToDict(result[1], preserving_proto_field_name=True)
    d.get("header", {}).pop("cluster_id", None)
    d.get("header", {}).pop("member_id", None)
    d.get("header", {}).pop("raft_term", None)
    return ("ok", d)


def set_up_users(side):
    """root (root role), reader (read r/), writer (readwrite w/ and read r/)."""
    a = side.auth
    a.UserAdd(pb.AuthUserAddRequest(name="root", password=ROOT_PASSWORD))
    a.RoleAdd(pb.AuthRoleAddRequest(name="root"))
    a.UserGrantRole(pb.AuthUserGrantRoleRequest(user="root", role="root"))
    a.RoleAdd(pb.AuthRoleAddRequest(name="ro"))
    a.RoleGrantPermission(pb.AuthRoleGrantPermissionRequest(
        name="ro", perm=auth_pb2.Permission(permType=READ, key=b"r/", range_end=prefix_end(b"r/"))))
    a.RoleAdd(pb.AuthRoleAddRequest(name="rw"))
    a.RoleGrantPermission(pb.AuthRoleGrantPermissionRequest(
        name="rw", perm=auth_pb2.Permission(permType=READWRITE, key=b"w/",
                                            range_end=prefix_end(b"w/"))))
    a.UserAdd(pb.AuthUserAddRequest(name="reader", password=READER_PASSWORD))
    a.UserGrantRole(pb.AuthUserGrantRoleRequest(user="reader", role="ro"))
    a.UserAdd(pb.AuthUserAddRequest(name="writer", password=WRITER_PASSWORD))
    a.UserGrantRole(pb.AuthUserGrantRoleRequest(user="writer", role="ro"))
    a.UserGrantRole(pb.AuthUserGrantRoleRequest(user="writer", role="rw"))
    # Data written before auth is on: a key in each range, and a lease
    # holding a key only root may write.
    for k in (b"r/1", b"w/1", b"secret"):
        side.kv.Put(pb.PutRequest(key=k, value=b"v-" + k))
    side.lease.LeaseGrant(pb.LeaseGrantRequest(ID=7001, TTL=600))
    side.kv.Put(pb.PutRequest(key=b"secret-leased", value=b"x", lease=7001))
    side.lease.LeaseGrant(pb.LeaseGrantRequest(ID=7002, TTL=600))
    side.kv.Put(pb.PutRequest(key=b"w/leased", value=b"x", lease=7002))
    a.AuthEnable(pb.AuthEnableRequest())
    side.login("root", ROOT_PASSWORD)
    side.login("reader", READER_PASSWORD)
    side.login("writer", WRITER_PASSWORD)


def txn(compare=(), success=(), failure=()):
    return pb.TxnRequest(compare=list(compare), success=list(success), failure=list(failure))


def cmp_value(key, value=b"v"):
    return pb.Compare(key=key, target=pb.Compare.VALUE, result=pb.Compare.EQUAL, value=value)


def op_put(key, lease=0):
    return pb.RequestOp(request_put=pb.PutRequest(key=key, value=b"t", lease=lease))


def op_range(key, range_end=b""):
    return pb.RequestOp(request_range=pb.RangeRequest(key=key, range_end=range_end))


def op_delete(key, range_end=b""):
    return pb.RequestOp(request_delete_range=pb.DeleteRangeRequest(key=key, range_end=range_end))


# (name, user, service attribute, method, request): answered identically by both.
CASES = [
    ("reader reads its key", "reader", "kv", "Range", pb.RangeRequest(key=b"r/1")),
    ("reader reads its prefix", "reader", "kv", "Range",
     pb.RangeRequest(key=b"r/", range_end=prefix_end(b"r/"))),
    ("reader reads outside", "reader", "kv", "Range", pb.RangeRequest(key=b"secret")),
    ("reader reads a wider range", "reader", "kv", "Range",
     pb.RangeRequest(key=b"r/", range_end=b"s")),
    ("reader reads from a key on", "reader", "kv", "Range",
     pb.RangeRequest(key=b"r/", range_end=b"\x00")),
    ("reader puts in its range", "reader", "kv", "Put", pb.PutRequest(key=b"r/1", value=b"no")),
    ("reader deletes in its range", "reader", "kv", "DeleteRange",
     pb.DeleteRangeRequest(key=b"r/1")),
    ("reader txn compares outside", "reader", "kv", "Txn",
     txn(compare=[cmp_value(b"secret")], success=[op_range(b"r/1")])),
    ("reader txn puts on success", "reader", "kv", "Txn",
     txn(compare=[cmp_value(b"r/1")], success=[op_put(b"r/1")])),
    ("reader txn puts on failure", "reader", "kv", "Txn", txn(failure=[op_put(b"r/2")])),
    ("reader txn deletes", "reader", "kv", "Txn", txn(success=[op_delete(b"r/1")])),
    ("reader txn reads", "reader", "kv", "Txn",
     txn(compare=[cmp_value(b"r/1", b"v-r/1")], success=[op_range(b"r/1")])),
    ("reader revokes root's lease", "reader", "lease", "LeaseRevoke",
     pb.LeaseRevokeRequest(ID=7001)),
    ("reader lists users", "reader", "auth", "UserList", pb.AuthUserListRequest()),
    ("reader gets itself", "reader", "auth", "UserGet", pb.AuthUserGetRequest(name="reader")),
    ("reader gets root", "reader", "auth", "UserGet", pb.AuthUserGetRequest(name="root")),
    ("reader gets its role", "reader", "auth", "RoleGet", pb.AuthRoleGetRequest(role="ro")),
    ("reader gets another role", "reader", "auth", "RoleGet", pb.AuthRoleGetRequest(role="rw")),
    ("reader adds a user", "reader", "auth", "UserAdd",
     pb.AuthUserAddRequest(name="eve", password="x")),
    ("reader disables auth", "reader", "auth", "AuthDisable", pb.AuthDisableRequest()),
    ("writer puts in its range", "writer", "kv", "Put", pb.PutRequest(key=b"w/2", value=b"ok")),
    ("writer puts with prev_kv where it can only write", "writer", "kv", "Put",
     pb.PutRequest(key=b"w/2", value=b"ok2", prev_kv=True)),
    ("writer attaches to root's lease", "writer", "kv", "Put",
     pb.PutRequest(key=b"w/3", value=b"x", lease=7001)),
    ("writer attaches to its lease", "writer", "kv", "Put",
     pb.PutRequest(key=b"w/3", value=b"x", lease=7002)),
    ("writer deletes its prefix", "writer", "kv", "DeleteRange",
     pb.DeleteRangeRequest(key=b"w/2", range_end=b"w/3")),
    ("writer deletes past its prefix", "writer", "kv", "DeleteRange",
     pb.DeleteRangeRequest(key=b"w/", range_end=b"x")),
    ("writer revokes its lease", "writer", "lease", "LeaseRevoke", pb.LeaseRevokeRequest(ID=7002)),
    ("no user reads", None, "kv", "Range", pb.RangeRequest(key=b"r/1")),
    ("no user puts", None, "kv", "Put", pb.PutRequest(key=b"w/1", value=b"x")),
    ("bad token reads", "bad-token", "kv", "Range", pb.RangeRequest(key=b"r/1")),
    ("root reads anything", "root", "kv", "Range", pb.RangeRequest(key=b"secret")),
    ("root lists users", "root", "auth", "UserList", pb.AuthUserListRequest()),
    ("root lists roles", "root", "auth", "RoleList", pb.AuthRoleListRequest()),
    ("root gets a role", "root", "auth", "RoleGet", pb.AuthRoleGetRequest(role="rw")),
    ("root deletes root", "root", "auth", "UserDelete", pb.AuthUserDeleteRequest(name="root")),
    ("root revokes root's role", "root", "auth", "UserRevokeRole",
     pb.AuthUserRevokeRoleRequest(name="root", role="root")),
    ("root deletes the root role", "root", "auth", "RoleDelete",
     pb.AuthRoleDeleteRequest(role="root")),
    ("root adds an existing user", "root", "auth", "UserAdd",
     pb.AuthUserAddRequest(name="reader", password="x")),
    ("root adds a nameless user", "root", "auth", "UserAdd", pb.AuthUserAddRequest(name="")),
    ("root grants a missing role", "root", "auth", "UserGrantRole",
     pb.AuthUserGrantRoleRequest(user="reader", role="nope")),
    ("root revokes a role not granted", "root", "auth", "UserRevokeRole",
     pb.AuthUserRevokeRoleRequest(name="reader", role="rw")),
    ("root revokes a permission not granted", "root", "auth", "RoleRevokePermission",
     pb.AuthRoleRevokePermissionRequest(role="ro", key=b"zz")),
    ("root adds an existing role", "root", "auth", "RoleAdd", pb.AuthRoleAddRequest(name="ro")),
    ("root gets a missing user", "root", "auth", "UserGet", pb.AuthUserGetRequest(name="nobody")),
    ("root enables again", "root", "auth", "AuthEnable", pb.AuthEnableRequest()),
]


class AuthAgainstEtcd(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="strata-auth-")
        cls.strata_server = StrataServer(data_dir=os.path.join(cls.dir, "data")).start()
        cls.etcd_server = EtcdServer().start()
        cls.strata = Side(cls.strata_server.endpoint)
        cls.etcd = Side(cls.etcd_server.endpoint)
        set_up_users(cls.strata)
        set_up_users(cls.etcd)

    @classmethod
    def tearDownClass(cls):
        cls.strata_server.stop()
        cls.etcd_server.stop()
        shutil.rmtree(cls.dir, ignore_errors=True)

    def test_1_same_answers_as_etcd(self):
        for name, user, service, method, request in CASES:
            with self.subTest(name):
                got = normalize(self.strata.call(user, getattr(getattr(self.strata, service),
                                                               method), request))
                want = normalize(self.etcd.call(user, getattr(getattr(self.etcd, service),
                                                              method), request))
                self.assertEqual(got, want)
        # The refusals really refused: nothing the reader tried was written.
        r = self.strata.kv.Range(pb.RangeRequest(key=b"r/1"), metadata=self.strata.md("root"))
        self.assertEqual(r.kvs[0].value, b"v-r/1")
        r = self.strata.kv.Range(pb.RangeRequest(key=b"secret-leased"),
                                 metadata=self.strata.md("root"))
        self.assertEqual(len(r.kvs), 1, "root's lease was revoked by a user who may not")

    def test_2_watch_is_checked(self):
        for user, key, end in [("reader", b"secret", b""), ("reader", b"r/", prefix_end(b"r/")),
                               ("reader", b"r", prefix_end(b"r/")), (None, b"r/1", b""),
                               ("bad-token", b"r/1", b"")]:
            with self.subTest(user=user, key=key, end=end):
                got = normalize(("ok", self.strata.watch_create(user, key, end)))
                want = normalize(("ok", self.etcd.watch_create(user, key, end)))
                self.assertEqual(got, want)
        refused = self.strata.watch_create("reader", b"secret")
        self.assertTrue(refused.canceled)
        self.assertEqual(refused.cancel_reason,
                         "rpc error: code = PermissionDenied desc = etcdserver: permission denied")
        # Watching every key from r/ on: etcd 3.4 checks only the first key
        # of a from-key watch (and so would show the reader "secret"); strata
        # checks the whole range.
        self.assertTrue(self.strata.watch_create("reader", b"r/", b"\x00").canceled)
        self.assertFalse(self.etcd.watch_create("reader", b"r/", b"\x00").canceled)
        self.assertFalse(self.strata.watch_create("reader", b"r/1").canceled)

    def test_3_snapshot_is_for_root(self):
        with self.assertRaises(grpc.RpcError) as e:
            list(self.strata.maintenance.Snapshot(pb.SnapshotRequest(),
                                                  metadata=self.strata.md("reader"), timeout=10))
        self.assertEqual(e.exception.code(), grpc.StatusCode.PERMISSION_DENIED)
        chunks = list(self.strata.maintenance.Snapshot(pb.SnapshotRequest(),
                                                       metadata=self.strata.md("root"), timeout=10))
        self.assertTrue(chunks)

    def test_4_stricter_than_etcd_3_4(self):
        s = self.strata
        denied = ("error", "PERMISSION_DENIED", "etcdserver: permission denied")
        # A Txn's Put onto a lease holding keys the user may not write
        # (etcd 3.4 checks this for a plain Put only).
        self.assertEqual(s.call("writer", s.kv.Txn, txn(success=[op_put(b"w/4", lease=7001)])),
                         denied)
        # Admin-only maintenance: etcd 3.4 refuses with an untranslated
        # UNKNOWN "auth: permission denied"; strata with etcd's documented error.
        self.assertEqual(s.call("reader", s.maintenance.HashKV, pb.HashKVRequest()), denied)
        self.assertEqual(s.call("reader", s.maintenance.Defragment, pb.DefragmentRequest()),
                         denied)
        self.assertEqual(s.call("reader", s.maintenance.Status, pb.StatusRequest())[0], "ok")
        # A nested Txn is checked like a top-level one (etcd 3.4 skips it).
        nested = txn(success=[pb.RequestOp(request_txn=txn(success=[op_put(b"secret")]))])
        self.assertEqual(s.call("reader", s.kv.Txn, nested)[1], "PERMISSION_DENIED")
        # Compact needs a user (etcd 3.4 lets anyone compact).
        self.assertEqual(s.call(None, s.kv.Compact, pb.CompactionRequest(revision=1))[1:],
                         ("INVALID_ARGUMENT", "etcdserver: user name is empty"))

    def test_5_strata_v1_obeys_the_same_permissions(self):
        s = self.strata
        begun = s.call("reader", s.strata.Begin, v1.BeginRequest())
        self.assertEqual(begun[0], "ok", begun)
        tid = begun[1].txn_id
        self.assertEqual(s.call("reader", s.strata.Get, v1.TxnGetRequest(txn_id=tid, key=b"r/1"))[0],
                         "ok")
        denied = ("error", "PERMISSION_DENIED", "etcdserver: permission denied")
        self.assertEqual(s.call("reader", s.strata.Get,
                                v1.TxnGetRequest(txn_id=tid, key=b"secret")), denied)
        self.assertEqual(s.call("reader", s.strata.Range,
                                v1.TxnRangeRequest(txn_id=tid, key=b"r/", range_end=b"\x00")),
                         denied)
        self.assertEqual(s.call("reader", s.strata.Put,
                                v1.TxnPutRequest(txn_id=tid, key=b"r/1", value=b"x")), denied)
        self.assertEqual(s.call("reader", s.strata.Delete,
                                v1.TxnDeleteRequest(txn_id=tid, key=b"r/1")), denied)
        self.assertEqual(s.call("reader", s.strata.History, v1.HistoryRequest(key=b"secret")),
                         denied)
        self.assertEqual(s.call("reader", s.strata.History, v1.HistoryRequest(key=b"r/1"))[0],
                         "ok")
        self.assertEqual(s.call("reader", s.strata.Changes, v1.ChangesRequest()), denied)
        self.assertEqual(s.call("reader", s.strata.Changes,
                                v1.ChangesRequest(key=b"r/", range_end=prefix_end(b"r/")))[0],
                         "ok")
        self.assertEqual(s.call(None, s.strata.Begin, v1.BeginRequest())[1:],
                         ("INVALID_ARGUMENT", "etcdserver: user name is empty"))
        # The writer commits in its range; its transaction is its own: the
        # reader may neither read through it, nor commit or abort it.
        tid = s.call("writer", s.strata.Begin, v1.BeginRequest())[1].txn_id
        self.assertEqual(s.call("writer", s.strata.Put,
                                v1.TxnPutRequest(txn_id=tid, key=b"w/v1", value=b"x"))[0], "ok")
        theirs = ("error", "PERMISSION_DENIED",
                  "strata: transaction %d belongs to another user" % tid)
        self.assertEqual(s.call("reader", s.strata.Get, v1.TxnGetRequest(txn_id=tid, key=b"r/1")),
                         theirs)
        self.assertEqual(s.call("reader", s.strata.Abort, v1.AbortRequest(txn_id=tid)), theirs)
        self.assertEqual(s.call("reader", s.strata.Commit, v1.CommitRequest(txn_id=tid)), theirs)
        self.assertEqual(s.call("writer", s.strata.Commit, v1.CommitRequest(txn_id=tid))[0], "ok")

    def test_6_survives_a_restart_and_keeps_no_password_in_clear(self):
        s = self.strata_server
        s.stop()
        s.start()
        side = Side(s.endpoint)
        # Tokens live in memory only, as etcd's: the old one is refused...
        side.tokens["reader"] = self.strata.tokens["reader"]
        self.assertEqual(side.call("reader", side.kv.Range, pb.RangeRequest(key=b"r/1"))[1:],
                         ("UNAUTHENTICATED", "etcdserver: invalid auth token"))
        # ...the users, roles and permissions are not.
        side.login("reader", READER_PASSWORD)
        self.assertEqual(side.call("reader", side.kv.Range, pb.RangeRequest(key=b"r/1"))[0], "ok")
        self.assertEqual(side.call("reader", side.kv.Range, pb.RangeRequest(key=b"secret"))[1],
                         "PERMISSION_DENIED")
        with self.assertRaises(grpc.RpcError) as e:
            side.login("reader", WRITER_PASSWORD)
        self.assertEqual(e.exception.details(),
                         "etcdserver: authentication failed, invalid user ID or password")
        auth_files = b""
        for dirpath, _, files in os.walk(os.path.join(self.dir, "data")):
            for f in files:
                with open(os.path.join(dirpath, f), "rb") as fh:
                    data = fh.read()
                for pw in (ROOT_PASSWORD, READER_PASSWORD, WRITER_PASSWORD):
                    self.assertNotIn(pw.encode(), data, "a password in clear in " + f)
                if os.path.basename(dirpath) == "auth":
                    auth_files += data
        self.assertIn(b"$argon2id$", auth_files)
        for pw in (ROOT_PASSWORD, READER_PASSWORD, WRITER_PASSWORD):
            self.assertNotIn(pw, s.log())
        self.strata = side
        type(self).strata = side


if __name__ == "__main__":
    unittest.main()
