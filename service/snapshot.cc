#include "service/snapshot.h"

#include <openssl/evp.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "service/data_dir.h"
#include "service/lease_journal.h"
#include "storage/coding.h"
#include "strata/store.h"

namespace strata::service {
namespace {

constexpr std::string_view kMagic = "strata-snapshot\n";
constexpr uint64_t kFormatVersion = 1;
constexpr size_t kDigestBytes = 32;
constexpr size_t kKeysPerBatch = 256;

using storage::PutBytes;
using storage::PutVarint;

// The storage layer's bounded decoder, plus the literal this format opens
// with.
class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in), decoder_(in) {}
  bool Literal(std::string_view s) {
    if (in_.substr(0, s.size()) != s) return false;
    in_.remove_prefix(s.size());
    decoder_ = storage::Decoder(in_);
    return true;
  }
  bool Varint(uint64_t* v) { return decoder_.Varint(v); }
  bool Bytes(std::string_view* b) { return decoder_.Bytes(b); }
  bool Byte(char* c) {
    uint8_t b = 0;
    if (!decoder_.Byte(&b)) return false;
    *c = static_cast<char>(b);
    return true;
  }
  bool empty() const { return decoder_.done(); }

 private:
  std::string_view in_;
  storage::Decoder decoder_;
};

}  // namespace

struct SnapshotWriter::Digest {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  Digest() { EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr); }
  ~Digest() { EVP_MD_CTX_free(ctx); }
};

SnapshotWriter::SnapshotWriter(const MvccStore* store,
                               std::vector<std::pair<int64_t, int64_t>> leases, int64_t revision,
                               std::function<int64_t()> compact_revision)
    : store_(store),
      revision_(revision),
      compact_revision_(std::move(compact_revision)),
      digest_(std::make_unique<Digest>()) {
  header_.append(kMagic);
  PutVarint(&header_, kFormatVersion);
  PutVarint(&header_, static_cast<uint64_t>(revision));
  header_.push_back('L');
  PutVarint(&header_, leases.size());
  for (const auto& [id, ttl] : leases) {
    PutVarint(&header_, static_cast<uint64_t>(id));
    PutVarint(&header_, static_cast<uint64_t>(ttl));
  }
}

SnapshotWriter::~SnapshotWriter() = default;

void SnapshotWriter::Emit(std::string* out, std::string_view bytes) {
  EVP_DigestUpdate(digest_->ctx, bytes.data(), bytes.size());
  out->append(bytes);
  bytes_ += bytes.size();
}

std::string SnapshotWriter::Next(size_t chunk_bytes) {
  std::string out;
  if (finished_) return out;
  if (!header_.empty()) {
    Emit(&out, header_);
    header_.clear();
  }
  std::string record;
  while (!keys_done_ && out.size() < chunk_bytes) {
    keys_done_ = store_->ExportKeys(
        &cursor_, kKeysPerBatch, [] {},
        [&](std::string_view key, uint64_t, std::span<const ExportedVersion> versions) {
          size_t n = 0;
          for (const auto& v : versions) n += v.timestamp <= static_cast<uint64_t>(revision_);
          if (n == 0) return;  // nothing of it at the snapshot's revision
          record.clear();
          record.push_back('K');
          PutBytes(&record, key);
          PutVarint(&record, n);
          for (const auto& v : versions) {
            if (v.timestamp > static_cast<uint64_t>(revision_)) continue;
            PutVarint(&record, v.timestamp);
            record.push_back(v.deleted ? 0 : 1);
            if (!v.deleted) PutBytes(&record, v.value);
          }
          Emit(&out, record);
        });
  }
  if (keys_done_ && out.size() < chunk_bytes) {
    record.clear();
    record.push_back('E');
    PutVarint(&record, static_cast<uint64_t>(std::max<int64_t>(0, compact_revision_())));
    // etcdctl accepts a snapshot only if its size is 32 past a multiple of
    // 512 (etcd's page-sized database plus its SHA-256): pad to that.
    const uint64_t at = bytes_ + record.size();
    for (uint64_t varint_len = 1; varint_len <= 2; ++varint_len) {
      const uint64_t pad = (512 - (at + 1 + varint_len) % 512) % 512;
      if ((pad < 128) != (varint_len == 1)) continue;
      record.push_back('P');
      PutVarint(&record, pad);
      record.append(pad, '\0');
      break;
    }
    Emit(&out, record);
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_DigestFinal_ex(digest_->ctx, digest, &len);
    out.append(reinterpret_cast<const char*>(digest), len);
    bytes_ += len;
    finished_ = true;
  }
  return out;
}

Result<RestoreReport> RestoreSnapshot(const std::string& snapshot_file, const std::string& data_dir,
                                      const std::function<void(std::string_view)>& progress) {
  std::ifstream file(snapshot_file, std::ios::binary);
  if (!file) return Status::NotFound("cannot open " + snapshot_file);
  const std::string data((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  auto damaged = [&](const std::string& why) {
    return Status::InvalidArgument(snapshot_file + " is not a whole strata snapshot: " + why);
  };
  if (data.size() < kMagic.size() + kDigestBytes || data.compare(0, kMagic.size(), kMagic) != 0) {
    return damaged("it does not start as one");
  }
  const std::string_view body(data.data(), data.size() - kDigestBytes);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(body.data(), body.size(), digest, &len, EVP_sha256(), nullptr);
  if (len != kDigestBytes || std::string_view(reinterpret_cast<const char*>(digest), len) !=
                                 std::string_view(data).substr(body.size())) {
    return damaged("its checksum does not match (cut short or damaged)");
  }
  std::error_code ec;
  if (std::filesystem::exists(KvStoreDir(data_dir), ec)) {
    return Status::PreconditionFailed(data_dir + " already holds a store; restore into a new one");
  }
  std::filesystem::create_directories(data_dir, ec);
  if (ec) return Status::Unavailable("cannot create " + data_dir + ": " + ec.message());

  Reader in(body);
  RestoreReport report;
  uint64_t format = 0, revision = 0, leases = 0;
  if (!in.Literal(kMagic) || !in.Varint(&format) || format != kFormatVersion ||
      !in.Varint(&revision)) {
    return damaged("unknown format");
  }
  report.revision = static_cast<int64_t>(revision);
  char tag = 0;
  if (!in.Byte(&tag) || tag != 'L' || !in.Varint(&leases)) return damaged("no lease section");
  std::vector<std::pair<int64_t, int64_t>> lease_list;
  for (uint64_t i = 0; i < leases; ++i) {
    uint64_t id = 0, ttl = 0;
    if (!in.Varint(&id) || !in.Varint(&ttl)) return damaged("a lease is cut");
    lease_list.emplace_back(static_cast<int64_t>(id), static_cast<int64_t>(ttl));
  }

  StoreOpenOptions options;
  options.durability.sync = SyncMode::kNone;  // one Sync at the end
  options.engine.max_key_bytes = size_t{64} << 20;
  auto store = Store::Open(KvStoreDir(data_dir), options);
  if (!store.ok()) return store.status();
  MvccStore& mvcc = store.value()->mvcc();
  uint64_t compact = 0;
  bool ended = false;
  while (!ended) {
    if (!in.Byte(&tag)) return damaged("it ends early");
    if (tag == 'E') {
      if (!in.Varint(&compact)) return damaged("the end is cut");
      ended = true;
      break;
    }
    if (tag != 'K') return damaged("an unknown section");
    std::string_view key;
    uint64_t n = 0;
    if (!in.Bytes(&key) || !in.Varint(&n)) return damaged("a key is cut");
    for (uint64_t i = 0; i < n; ++i) {
      uint64_t ts = 0;
      char kind = 0;
      std::string_view value;
      if (!in.Varint(&ts) || !in.Byte(&kind) || (kind == 1 && !in.Bytes(&value))) {
        return damaged("a version is cut");
      }
      if (ts == 0 || ts > revision) return damaged("a version outside the snapshot");
      auto w = kind == 1 ? mvcc.Put(key, value, Timestamp(ts)) : mvcc.Delete(key, Timestamp(ts));
      if (!w.ok()) return w.status();
      ++report.versions;
    }
    if (++report.keys % 100000 == 0 && progress) {
      progress("restored " + std::to_string(report.keys) + " keys");
    }
  }
  if (!in.empty()) {
    std::string_view padding;
    if (!in.Byte(&tag) || tag != 'P' || !in.Bytes(&padding) || !in.empty()) {
      return damaged("bytes after its end");
    }
  }
  // The revision itself survives even if its last write was compacted away.
  mvcc.RestoreMaxTimestamp(Timestamp(revision));
  if (compact > 0) {
    mvcc.Compact(Timestamp(compact));
    report.compact_revision = static_cast<int64_t>(compact);
  }
  if (Status s = store.value()->Checkpoint(); !s.ok()) return s;
  if (Status s = store.value()->Sync(); !s.ok()) return s;

  StoreOpenOptions lease_options;
  auto journal = StoreLeaseJournal::Open(LeaseStoreDir(data_dir), lease_options);
  if (!journal.ok()) return journal.status();
  for (const auto& [id, ttl] : lease_list) {
    if (Status s = journal.value()->Record(id, ttl); !s.ok()) return s;
  }
  report.leases = lease_list.size();
  return report;
}

}  // namespace strata::service
