#include "storage/store_image.h"

namespace strata::storage {

namespace {

constexpr std::string_view kImageMagic = "STRATAIM";
constexpr uint64_t kImageFormatVersion = 1;
constexpr size_t kImageKeysPerBatch = 256;

}  // namespace

void PutExportedKey(std::string* out, std::string_view key, uint64_t write_count,
                    std::span<const ExportedVersion> versions) {
  PutBytes(out, key);
  PutVarint(out, write_count);
  PutVarint(out, versions.size());
  for (const ExportedVersion& v : versions) {
    PutVarint(out, v.timestamp);
    PutVarint(out, v.version);
    out->push_back(v.deleted ? 0 : 1);
    if (!v.deleted) PutBytes(out, v.value);
  }
}

bool RestoreExportedKey(Decoder* in, MvccStore* store, uint64_t* versions) {
  std::string_view key;
  uint64_t write_count = 0, count = 0;
  if (!in->Bytes(&key) || !in->Varint(&write_count) || !in->Varint(&count)) return false;
  for (uint64_t v = 0; v < count; ++v) {
    uint64_t ts = 0, version = 0;
    uint8_t kind = 0;
    std::string_view value;
    if (!in->Varint(&ts) || ts > Timestamp::kMaxValue || !in->Varint(&version) ||
        !in->Byte(&kind) || kind > 1 || (kind == 1 && !in->Bytes(&value))) {
      return false;
    }
    store->RestoreVersion(key, Timestamp(ts), version, kind == 1 ? &value : nullptr, write_count);
  }
  if (count == 0) store->RestoreRetiredKey(key, write_count);
  *versions += count;
  return true;
}

std::string SaveStoreImage(const MvccStore& store) {
  std::string keys;
  uint64_t count = 0;
  std::string cursor;
  bool done = false;
  while (!done) {
    done = store.ExportKeys(
        &cursor, kImageKeysPerBatch, [] {},
        [&](std::string_view key, uint64_t write_count, std::span<const ExportedVersion> versions) {
          PutExportedKey(&keys, key, write_count, versions);
          ++count;
        });
  }
  std::string out(kImageMagic);
  PutVarint(&out, kImageFormatVersion);
  PutVarint(&out, store.compaction_horizon().value());
  const std::optional<Timestamp> max_ts = store.max_timestamp();
  PutVarint(&out, max_ts ? max_ts->value() + 1 : 0);
  PutVarint(&out, count);
  out.append(keys);
  return out;
}

Status LoadStoreImage(std::string_view image, MvccStore* store) {
  auto damaged = [](std::string_view what) {
    return Status::InvalidArgument("a store image with " + std::string(what) +
                                   " (not one this version of strata wrote, or damaged)");
  };
  if (image.substr(0, kImageMagic.size()) != kImageMagic) return damaged("no magic");
  Decoder in(image.substr(kImageMagic.size()));
  uint64_t version = 0, horizon = 0, max_ts_plus_one = 0, count = 0;
  if (!in.Varint(&version) || version != kImageFormatVersion) return damaged("an unknown version");
  if (!in.Varint(&horizon) || !in.Varint(&max_ts_plus_one) || !in.Varint(&count) ||
      horizon > Timestamp::kMaxValue || max_ts_plus_one > Timestamp::kMaxValue + 1) {
    return damaged("a header that does not decode");
  }
  uint64_t versions = 0;
  for (uint64_t k = 0; k < count; ++k) {
    if (!RestoreExportedKey(&in, store, &versions)) return damaged("a key that does not decode");
  }
  if (!in.done()) return damaged("bytes after its last key");
  if (horizon > 0) store->RestoreHorizon(Timestamp(horizon));
  if (max_ts_plus_one > 0) store->RestoreMaxTimestamp(Timestamp(max_ts_plus_one - 1));
  return Status::Ok();
}

}  // namespace strata::storage
