// strata.peer.v1 (server/peer_proto.h): every typed peer message through
// protobuf bytes and back, and what a decoder refuses from a peer.
#include "server/peer_proto.h"
#include "cluster/resolved_frontier.h"

#include <gtest/gtest.h>

#include <string>

namespace strata::server {
namespace {

using namespace cluster;

// Through the wire: serialized and parsed again.
peerpb::Message Wire(const peerpb::Message& message) {
  peerpb::Message parsed;
  EXPECT_TRUE(parsed.ParseFromString(message.SerializeAsString()));
  return parsed;
}

PeerRequest RoundTrip(const PeerRequest& request) {
  peerpb::Message m;
  RequestToProto(request, &m);
  const peerpb::Message back = Wire(m);
  EXPECT_FALSE(IsReply(back));
  PeerRequest out;
  const Status s = RequestFromProto(back, &out);
  EXPECT_TRUE(s.ok()) << s.message();
  return out;
}

PeerReply RoundTrip(const PeerReply& reply) {
  peerpb::Message m;
  m.set_in_reply_to(4);
  ReplyToProto(reply, &m);
  const peerpb::Message back = Wire(m);
  EXPECT_TRUE(IsReply(back));
  return ReplyFromProto(back);
}

TEST(PeerProtoTest, RequestsRoundTrip) {
  const ShardRead read{Timestamp(5), {"k1", std::string("\0\xff", 2)}, KeyRange{"a", "b"}, 17};
  const auto read_back = std::get<ShardRead>(RoundTrip(read));
  EXPECT_EQ(read_back.snapshot, Timestamp(5));
  EXPECT_EQ(read_back.keys, read.keys);
  ASSERT_TRUE(read_back.range);
  EXPECT_EQ(read_back.range->end, "b");
  EXPECT_EQ(read_back.limit, 17u);
  EXPECT_FALSE(read_back.at_closed);
  ShardRead at_closed{Timestamp::Max(), {"k"}, std::nullopt, 0};
  at_closed.at_closed = true;
  const auto at_closed_back = std::get<ShardRead>(RoundTrip(at_closed));
  EXPECT_TRUE(at_closed_back.at_closed);
  EXPECT_EQ(at_closed_back.snapshot, Timestamp::Max());

  PrepareRequest request;
  request.txn = TxnId{77, 2};
  request.start = Timestamp(70);
  request.isolation = Isolation::kSnapshot;
  request.primary = 1;
  request.writes = {{"a", "1"}, {"b", std::nullopt}, {"c", ""}};
  request.read_keys = {"r"};
  request.read_ranges = {KeyRange{"p", std::nullopt}};
  const auto prepare = std::get<ShardPrepare>(RoundTrip(ShardPrepare{request, {1, 0}}));
  EXPECT_EQ(prepare.request.txn, request.txn);
  EXPECT_EQ(prepare.request.isolation, Isolation::kSnapshot);
  EXPECT_EQ(prepare.request.primary, 1u);
  ASSERT_EQ(prepare.request.writes.size(), 3u);
  EXPECT_EQ(prepare.request.writes[1].value, std::nullopt) << "a delete";
  EXPECT_EQ(prepare.request.writes[2].value, "") << "an empty value is not a delete";
  EXPECT_EQ(prepare.request.read_keys, request.read_keys);
  EXPECT_FALSE(prepare.request.read_ranges[0].end);
  EXPECT_EQ(prepare.participants, (std::vector<ShardId>{1, 0}));

  request.blind = true;
  EXPECT_TRUE(std::get<ShardCommit>(RoundTrip(ShardCommit{request})).request.blind);
  const auto resolve =
      std::get<ShardResolve>(RoundTrip(ShardResolve{TxnId{1, 0}, TxnStatus::kAborted, {}}));
  EXPECT_EQ(resolve.outcome, TxnStatus::kAborted);
  for (RecordOp op : {RecordOp::kCommit, RecordOp::kAbort, RecordOp::kPush, RecordOp::kHeartbeat,
                      RecordOp::kForget}) {
    EXPECT_EQ(std::get<RecordCall>(RoundTrip(RecordCall{op, TxnId{3, 1}, Timestamp(9)})).op, op);
  }
  const Forward forward = std::get<Forward>(RoundTrip(Forward{"{\"type\":\"x\"}", 77}));
  EXPECT_EQ(forward.request, "{\"type\":\"x\"}");
  EXPECT_EQ(forward.id, 77u);
  EXPECT_EQ(
      std::get<LowWaterMarkReport>(RoundTrip(LowWaterMarkReport{Timestamp(8)})).oldest_snapshot,
      Timestamp(8));
  const auto scan = std::get<RawScan>(RoundTrip(RawScan{KeyRange{"x", {}}, Timestamp::Max(), 9}));
  EXPECT_EQ(scan.at, Timestamp::Max());
  EXPECT_EQ(scan.limit, 9u);
  EXPECT_EQ(std::get<RawChanges>(RoundTrip(RawChanges{Timestamp(3), KeyRange{}, 2})).since,
            Timestamp(3));
  EXPECT_EQ(std::get<RawCompact>(RoundTrip(RawCompact{Timestamp(6)})).horizon, Timestamp(6));
  const auto watch =
      std::get<ShardWatch>(RoundTrip(ShardWatch{KeyRange{"a", "b"}, Timestamp(7), 11, 5, true}));
  EXPECT_EQ(watch.range.end, "b");
  EXPECT_EQ(watch.after, Timestamp(7));
  EXPECT_EQ(watch.cursor, 11u);
  EXPECT_EQ(watch.limit, 5u);
  EXPECT_TRUE(watch.with_previous);
  // ResolvedFrontier's probe of a shard's resolved timestamp goes over the
  // wire too (one with limit 0 was refused: every remote shard unreachable).
  const auto probe = std::get<ShardWatch>(RoundTrip(cluster::ResolvedFrontier::Probe()));
  EXPECT_EQ(probe.range.end, std::string());
  EXPECT_EQ(
      std::get<ShardWatch>(RoundTrip(cluster::ResolvedFrontier::Probe(Timestamp(9)))).close_to,
      Timestamp(9))
      << "what it asks a replicated shard to close to";
  EXPECT_EQ(probe.close_to, Timestamp()) << "none asked";
}

TEST(PeerProtoTest, RepliesRoundTrip) {
  ShardReadReply read;
  read.reads = {ReadResult{}, ReadResult{true, true, 3, Timestamp(4), "", false}};
  read.scan = ScanResult{{ScanItem{"k", "v", 1, Timestamp(2)}}, true};
  read.snapshot = Timestamp(77);
  const auto read_back = std::get<ShardReadReply>(RoundTrip(read));
  EXPECT_EQ(read_back.snapshot, Timestamp(77));
  ASSERT_EQ(read_back.reads.size(), 2u);
  EXPECT_FALSE(read_back.reads[0].found);
  EXPECT_TRUE(read_back.reads[1].deleted);
  ASSERT_TRUE(read_back.scan);
  EXPECT_TRUE(read_back.scan->more);
  EXPECT_EQ(read_back.scan->items[0].key, "k");
  EXPECT_FALSE(std::get<ShardReadReply>(RoundTrip(ShardReadReply{})).scan);
  EXPECT_EQ(std::get<PrepareReply>(RoundTrip(PrepareReply{Timestamp(5)})).prepare_timestamp,
            Timestamp(5));
  EXPECT_EQ(std::get<CommitReply>(RoundTrip(CommitReply{Timestamp(6)})).commit_timestamp,
            Timestamp(6));
  EXPECT_TRUE(std::holds_alternative<ResolveReply>(RoundTrip(ResolveReply{})));
  const auto record =
      std::get<RecordReply>(RoundTrip(RecordReply{RecordOp::kPush, TxnStatus::kPending, {}}));
  EXPECT_EQ(record.status, TxnStatus::kPending) << "present, though the enum's zero";
  EXPECT_FALSE(std::get<RecordReply>(RoundTrip(RecordReply{RecordOp::kForget, {}, {}})).status);
  EXPECT_EQ(std::get<ForwardReply>(RoundTrip(ForwardReply{"r"})).reply, "r");
  EXPECT_EQ(std::get<RawScanReply>(RoundTrip(RawScanReply{ScanResult{{}, true}})).scan.more, true);
  const auto changes = std::get<RawChangesReply>(
      RoundTrip(RawChangesReply{ChangesResult{{Change{"k", Timestamp(1), 2, true, ""}}, false}}));
  EXPECT_TRUE(changes.changes.changes[0].deleted);
  const auto watched = std::get<ShardWatchReply>(RoundTrip(ShardWatchReply{
      {Change{"k", Timestamp(3), 0, false, "v"}, Change{"j", Timestamp(3), 0, true, ""}},
      Timestamp(9),
      4,
      {Change{"k", Timestamp(2), 1, false, "u"}, std::nullopt}}));
  ASSERT_EQ(watched.changes.size(), 2u);
  ASSERT_EQ(watched.previous.size(), 2u);
  EXPECT_EQ(watched.previous[0]->value, "u");
  EXPECT_FALSE(watched.previous[1]);
  EXPECT_EQ(watched.changes[0].value, "v");
  EXPECT_EQ(watched.resolved, Timestamp(9));
  EXPECT_EQ(watched.cursor, 4u);
  EXPECT_EQ(
      std::get<RawCompactReply>(RoundTrip(RawCompactReply{CompactResult{Timestamp(7), 1, 2, 0}}))
          .compacted.bytes_reclaimed,
      2u);
  for (StatusCode code : {StatusCode::kInvalidArgument, StatusCode::kConflict,
                          StatusCode::kUnavailable, StatusCode::kIoError}) {
    const auto error = std::get<PeerError>(RoundTrip(PeerError{Status(code, "why")}));
    EXPECT_EQ(error.status.code(), code);
    EXPECT_EQ(error.status.message(), "why");
    EXPECT_FALSE(error.leader.has_value());
  }
  // A replica's hint of the shard's leader.
  EXPECT_EQ(std::get<PeerError>(RoundTrip(PeerError{Status::Unavailable("not here"), "n2"})).leader,
            "n2");
}

TEST(PeerProtoTest, RefusesWhatNoPeerShouldSend) {
  auto refused = [](const std::function<void(peerpb::Message*)>& build) {
    peerpb::Message m;
    build(&m);
    PeerRequest out;
    return RequestFromProto(Wire(m), &out).code();
  };
  EXPECT_EQ(refused([](peerpb::Message*) {}), StatusCode::kInvalidArgument) << "no body";
  EXPECT_EQ(refused([](peerpb::Message* m) {
              m->mutable_shard_read()->mutable_range();
              m->mutable_shard_read()->set_limit(0);
            }),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(refused([](peerpb::Message* m) { m->mutable_shard_prepare(); }),
            StatusCode::kInvalidArgument)
      << "no transaction id";
  EXPECT_EQ(refused([](peerpb::Message* m) {
              m->mutable_shard_resolve()->mutable_txn();
              m->mutable_shard_resolve()->set_outcome(peerpb::PENDING);
            }),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(refused([](peerpb::Message* m) {
              m->mutable_record_call()->mutable_txn();
              m->mutable_record_call()->set_op(static_cast<peerpb::RecordOp>(42));
            }),
            StatusCode::kInvalidArgument)
      << "an enum value from a newer peer";
  EXPECT_EQ(refused([](peerpb::Message* m) { m->mutable_raw_scan()->set_limit(5); }),
            StatusCode::kInvalidArgument)
      << "no range";
  EXPECT_EQ(refused([](peerpb::Message* m) {
              m->mutable_raw_changes()->mutable_range();
              m->mutable_raw_changes()->set_limit(10001);
            }),
            StatusCode::kInvalidArgument);
  // Replies that do not decode become errors their calls see.
  peerpb::Message odd;
  odd.set_in_reply_to(3);
  odd.mutable_record_reply()->set_op(static_cast<peerpb::RecordOp>(9));
  EXPECT_EQ(std::get<PeerError>(ReplyFromProto(odd)).status.code(), StatusCode::kIoError);
  peerpb::Message error;
  error.mutable_error()->set_code(999);
  EXPECT_EQ(std::get<PeerError>(ReplyFromProto(error)).status.code(), StatusCode::kIoError);
}

}  // namespace
}  // namespace strata::server
