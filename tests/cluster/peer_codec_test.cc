// The peer codec (protocol/peer_codec.h): every typed peer request and
// reply written as a Maelstrom line, parsed back and compared field by
// field; replies that do not decode become PeerErrors, and error codes map
// to Status and back.
#include "protocol/peer_codec.h"
#include "cluster/resolved_frontier.h"

#include <gtest/gtest.h>

#include <string>

namespace strata::protocol {
namespace peer_codec_test {

using namespace cluster;

// One message as it travels: a whole line, parsed (the parser owns the
// storage the envelope points into).
class Line {
 public:
  Line(std::string_view type, const std::string& fields, bool reply) {
    line_ = R"({"src":"n1","dest":"n0","body":{"type":")" + std::string(type) + R"(","msg_id":9)" +
            (reply ? R"(,"in_reply_to":4)" : "") + fields + "}}";
    ErrorReply error;
    EXPECT_EQ(parser_.Parse(line_, &envelope_, &error), ParseOutcome::kOk) << error.text;
  }
  const Envelope& envelope() const { return envelope_; }

 private:
  std::string line_;
  EnvelopeParser parser_;
  Envelope envelope_;
};

PeerRequest RoundTrip(const PeerRequest& request) {
  Line line(PeerRequestType(request), PeerRequestFields(request, Timestamp(77)), false);
  EXPECT_TRUE(IsPeerRequestType(line.envelope().type));
  std::optional<Timestamp> hlc;
  EXPECT_FALSE(ReadSenderClock(line.envelope(), &hlc));
  EXPECT_EQ(hlc, Timestamp(77));
  PeerRequest out;
  auto err = ReadPeerRequest(line.envelope(), &out);
  EXPECT_FALSE(err) << err->text;
  return out;
}

PeerReply RoundTrip(const PeerReply& reply) {
  Line line(PeerReplyType(reply), PeerReplyFields(reply, Timestamp(78)), true);
  return ReadPeerReply(line.envelope());
}

PrepareRequest SomePrepare() {
  PrepareRequest request;
  request.txn = TxnId{123456, 3};
  request.start = Timestamp(99);
  request.isolation = Isolation::kSnapshot;
  request.primary = 2;
  request.writes = {{std::string("a\0b", 3), "{\"x\":1}"}, {"gone", std::nullopt}};
  request.read_keys = {"r1", "r2"};
  request.read_ranges = {KeyRange{"p", "q"}, KeyRange{"z", std::nullopt}};
  return request;
}

void ExpectSamePrepare(const PrepareRequest& a, const PrepareRequest& b) {
  EXPECT_EQ(a.txn, b.txn);
  EXPECT_EQ(a.start, b.start);
  EXPECT_EQ(a.isolation, b.isolation);
  EXPECT_EQ(a.primary, b.primary);
  ASSERT_EQ(a.writes.size(), b.writes.size());
  for (size_t i = 0; i < a.writes.size(); ++i) {
    EXPECT_EQ(a.writes[i].key, b.writes[i].key);
    EXPECT_EQ(a.writes[i].value, b.writes[i].value);
  }
  EXPECT_EQ(a.read_keys, b.read_keys);
  ASSERT_EQ(a.read_ranges.size(), b.read_ranges.size());
  for (size_t i = 0; i < a.read_ranges.size(); ++i) {
    EXPECT_EQ(a.read_ranges[i].start, b.read_ranges[i].start);
    EXPECT_EQ(a.read_ranges[i].end, b.read_ranges[i].end);
  }
  EXPECT_EQ(a.blind, b.blind);
}

// The shard a request is for travels beside it; a request without one
// names none, and a field that is not a shard id is refused.
TEST(PeerCodecTest, TheTargetShardTravelsWithTheRequest) {
  const PeerRequest request = ShardRead{Timestamp(5), {"k"}, std::nullopt, 0};
  Line named(PeerRequestType(request), PeerRequestFields(request, Timestamp(1), ShardId{7}), false);
  std::optional<ShardId> shard;
  EXPECT_FALSE(ReadTargetShard(named.envelope(), &shard));
  EXPECT_EQ(shard, ShardId{7});
  Line unnamed(PeerRequestType(request), PeerRequestFields(request, Timestamp(1)), false);
  EXPECT_FALSE(ReadTargetShard(unnamed.envelope(), &shard));
  EXPECT_FALSE(shard.has_value());
  for (std::string bad : {R"(,"shard":-1)", R"(,"shard":"1")", R"(,"shard":4294967296)"}) {
    Line line("shard_read", R"(,"snapshot":5,"keys":[])" + bad, false);
    EXPECT_TRUE(ReadTargetShard(line.envelope(), &shard)) << bad;
  }
}

TEST(PeerCodecTest, RequestsRoundTrip) {
  const ShardRead read{Timestamp(5), {"k1", std::string("\x01\xff", 2)}, KeyRange{"a", "b"}, 17};
  const auto read_back = std::get<ShardRead>(RoundTrip(read));
  EXPECT_EQ(read_back.snapshot, read.snapshot);
  EXPECT_EQ(read_back.keys, read.keys);
  ASSERT_TRUE(read_back.range);
  EXPECT_EQ(read_back.range->start, "a");
  EXPECT_EQ(read_back.range->end, "b");
  EXPECT_EQ(read_back.limit, 17u);
  EXPECT_FALSE(read_back.at_closed);
  ShardRead at_closed{Timestamp::Max(), {"k"}, std::nullopt, 0};
  at_closed.at_closed = true;
  const auto at_closed_back = std::get<ShardRead>(RoundTrip(at_closed));
  EXPECT_TRUE(at_closed_back.at_closed);
  EXPECT_EQ(at_closed_back.snapshot, Timestamp::Max());
  EXPECT_FALSE(std::get<ShardRead>(RoundTrip(ShardRead{Timestamp(5), {"k"}, {}, 0})).range);

  const ShardPrepare prepare{SomePrepare(), {0, 2, 1}};
  const auto prepare_back = std::get<ShardPrepare>(RoundTrip(prepare));
  ExpectSamePrepare(prepare_back.request, prepare.request);
  EXPECT_EQ(prepare_back.participants, prepare.participants);

  PrepareRequest blind = SomePrepare();
  blind.blind = true;
  ExpectSamePrepare(std::get<ShardCommit>(RoundTrip(ShardCommit{blind})).request, blind);

  const ShardResolve resolve{TxnId{8, 1}, TxnStatus::kCommitted, Timestamp(44)};
  const auto resolve_back = std::get<ShardResolve>(RoundTrip(resolve));
  EXPECT_EQ(resolve_back.txn, resolve.txn);
  EXPECT_EQ(resolve_back.outcome, TxnStatus::kCommitted);
  EXPECT_EQ(resolve_back.commit_timestamp, Timestamp(44));

  for (RecordOp op : {RecordOp::kCommit, RecordOp::kAbort, RecordOp::kPush, RecordOp::kHeartbeat,
                      RecordOp::kForget}) {
    const RecordCall call{op, TxnId{8, 1}, op == RecordOp::kCommit ? Timestamp(45) : Timestamp()};
    const auto back = std::get<RecordCall>(RoundTrip(call));
    EXPECT_EQ(back.op, op);
    EXPECT_EQ(back.txn, call.txn);
    EXPECT_EQ(back.commit_timestamp, call.commit_timestamp);
  }

  const Forward forward{R"({"type":"mvcc_get","key":"x"})", 1234};
  EXPECT_EQ(std::get<Forward>(RoundTrip(forward)).request, forward.request);
  EXPECT_EQ(std::get<Forward>(RoundTrip(forward)).id, 1234u);
  EXPECT_EQ(std::get<Forward>(RoundTrip(Forward{R"({"type":"x"})"})).id, 0u);
  EXPECT_EQ(
      std::get<LowWaterMarkReport>(RoundTrip(LowWaterMarkReport{Timestamp(3)})).oldest_snapshot,
      Timestamp(3));
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
  EXPECT_TRUE(IsOneWayType("lwm_report"));
  EXPECT_FALSE(IsOneWayType("shard_read"));
  EXPECT_FALSE(IsPeerRequestType("mvcc_put")) << "a client request a node relays";
}

TEST(PeerCodecTest, RepliesRoundTrip) {
  ShardReadReply read;
  read.reads.resize(3);
  read.reads[1] = ReadResult{true, false, 4, Timestamp(40), "[1,2]", false};
  read.reads[2] = ReadResult{true, true, 5, Timestamp(41), "", false};
  read.scan = ScanResult{{ScanItem{"k", "\"v\"", 2, Timestamp(9)}}, true};
  read.snapshot = Timestamp(77);
  const auto read_back = std::get<ShardReadReply>(RoundTrip(read));
  EXPECT_EQ(read_back.snapshot, Timestamp(77));
  ASSERT_EQ(read_back.reads.size(), 3u);
  EXPECT_FALSE(read_back.reads[0].found);
  EXPECT_EQ(read_back.reads[1].value, "[1,2]");
  EXPECT_EQ(read_back.reads[1].timestamp, Timestamp(40));
  EXPECT_EQ(read_back.reads[1].version, 4u);
  EXPECT_TRUE(read_back.reads[2].deleted);
  ASSERT_TRUE(read_back.scan);
  EXPECT_TRUE(read_back.scan->more);
  ASSERT_EQ(read_back.scan->items.size(), 1u);
  EXPECT_EQ(read_back.scan->items[0].key, "k");
  EXPECT_EQ(read_back.scan->items[0].value, "\"v\"");
  EXPECT_EQ(read_back.scan->items[0].version, 2u);
  EXPECT_EQ(read_back.scan->items[0].timestamp, Timestamp(9));
  EXPECT_FALSE(std::get<ShardReadReply>(RoundTrip(ShardReadReply{})).scan);

  EXPECT_EQ(std::get<PrepareReply>(RoundTrip(PrepareReply{Timestamp(6)})).prepare_timestamp,
            Timestamp(6));
  EXPECT_EQ(std::get<CommitReply>(RoundTrip(CommitReply{Timestamp(7)})).commit_timestamp,
            Timestamp(7));
  EXPECT_TRUE(std::holds_alternative<ResolveReply>(RoundTrip(ResolveReply{})));
  const auto record = std::get<RecordReply>(
      RoundTrip(RecordReply{RecordOp::kPush, TxnStatus::kCommitted, Timestamp(12)}));
  EXPECT_EQ(record.op, RecordOp::kPush);
  EXPECT_EQ(record.status, TxnStatus::kCommitted);
  EXPECT_EQ(record.commit_timestamp, Timestamp(12));
  EXPECT_FALSE(std::get<RecordReply>(RoundTrip(RecordReply{RecordOp::kForget, {}, {}})).status);
  const ForwardReply forwarded{R"({"type":"mvcc_get_ok","found":false})"};
  EXPECT_EQ(std::get<ForwardReply>(RoundTrip(forwarded)).reply, forwarded.reply);
  const auto watched = std::get<ShardWatchReply>(RoundTrip(ShardWatchReply{
      {Change{"k", Timestamp(3), 0, false, "[1]"}, Change{"j", Timestamp(4), 0, true, ""}},
      Timestamp(9),
      4,
      {Change{"k", Timestamp(2), 0, false, "[0]"}, std::nullopt}}));
  ASSERT_EQ(watched.changes.size(), 2u);
  ASSERT_EQ(watched.previous.size(), 2u);
  EXPECT_EQ(watched.previous[0]->value, "[0]");
  EXPECT_EQ(watched.previous[0]->timestamp, Timestamp(2));
  EXPECT_FALSE(watched.previous[1]);
  EXPECT_EQ(watched.changes[0].value, "[1]");
  EXPECT_TRUE(watched.changes[1].deleted);
  EXPECT_EQ(watched.resolved, Timestamp(9));
  EXPECT_EQ(watched.cursor, 4u);
}

TEST(PeerCodecTest, ErrorsKeepTheirStatus) {
  for (StatusCode code : {StatusCode::kInvalidArgument, StatusCode::kPreconditionFailed,
                          StatusCode::kCompacted, StatusCode::kNotFound, StatusCode::kConflict,
                          StatusCode::kUnavailable, StatusCode::kIoError}) {
    const auto back = std::get<PeerError>(RoundTrip(PeerError{Status(code, "why")}));
    EXPECT_EQ(back.status.code(), code) << StatusCodeName(code);
    EXPECT_EQ(back.status.message(), "why");
    EXPECT_FALSE(back.leader.has_value());
  }
  const auto redirect =
      std::get<PeerError>(RoundTrip(PeerError{Status::Unavailable("not here"), "n2"}));
  EXPECT_EQ(redirect.status.code(), StatusCode::kUnavailable);
  EXPECT_EQ(redirect.leader, "n2");
}

TEST(PeerCodecTest, UnreadableRepliesBecomeErrors) {
  for (auto [type, fields] : std::vector<std::pair<std::string, std::string>>{
           {"shard_prepare_ok", ""},
           {"shard_commit_ok", R"(,"commit_ts":"soon")"},
           {"shard_read_ok", R"(,"reads":5)"},
           {"shard_read_ok", R"(,"items":[])"},
           {"shard_read_ok", R"(,"items":[{"k":"zz","v":1,"t":1,"val":1}],"more":false)"},
           {"record_push_ok", R"(,"status":"maybe")"},
           {"record_commit_ok", R"(,"status":"committed")"},
           {"forward_ok", R"(,"reply":{"found":true})"},
           {"error", R"(,"text":"no code")"},
           {"mystery_ok", ""}}) {
    Line line(type, fields, true);
    const PeerReply reply = ReadPeerReply(line.envelope());
    ASSERT_TRUE(std::holds_alternative<PeerError>(reply)) << type << fields;
    EXPECT_EQ(std::get<PeerError>(reply).status.code(), StatusCode::kIoError) << type << fields;
    EXPECT_NE(std::get<PeerError>(reply).status.message().find(type), std::string::npos);
  }
}

}  // namespace peer_codec_test
}  // namespace strata::protocol
