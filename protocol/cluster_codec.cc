#include "protocol/cluster_codec.h"

#include <algorithm>

#include "protocol/canonical_json.h"

namespace strata::protocol {

using simdjson::dom::array;
using simdjson::dom::element;
using simdjson::dom::object;

namespace {

constexpr char kHexDigits[] = "0123456789abcdef";

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

MaybeError Bad(std::string_view name, std::string_view what) {
  std::string text = "field '";
  text.append(name).append("' must be ").append(what);
  return Malformed(std::move(text));
}

MaybeError ReadHexElement(element e, std::string_view name, std::string* out) {
  std::string_view hex;
  if (e.get_string().get(hex) || !ParseHexKey(hex, out)) return Bad(name, "a hex key");
  return std::nullopt;
}

// `*present` is false when the field is omitted (an empty list).
MaybeError ReadArray(const Body& body, std::string_view name, array* out, bool* present) {
  auto e = body.Find(name);
  *present = e.has_value();
  if (*present && e->get_array().get(*out)) return Bad(name, "an array");
  return std::nullopt;
}

}  // namespace

void WriteHexKey(JsonWriter* w, std::string_view engine_key) {
  std::string hex;
  hex.reserve(engine_key.size() * 2);
  for (unsigned char c : engine_key) {
    hex.push_back(kHexDigits[c >> 4]);
    hex.push_back(kHexDigits[c & 15]);
  }
  w->String(hex);
}

bool ParseHexKey(std::string_view hex, std::string* engine_key) {
  if (hex.size() % 2 != 0) return false;
  engine_key->clear();
  engine_key->reserve(hex.size() / 2);
  for (size_t i = 0; i < hex.size(); i += 2) {
    int hi = HexValue(hex[i]), lo = HexValue(hex[i + 1]);
    if (hi < 0 || lo < 0) return false;
    engine_key->push_back(static_cast<char>(hi << 4 | lo));
  }
  return true;
}

void WriteTxnId(JsonWriter* w, std::string_view name, const cluster::TxnId& txn) {
  w->Key(name).BeginArray().Uint(txn.stamp).Uint(txn.coordinator).EndArray();
}

std::string TxnIdFields(const cluster::TxnId& txn) {
  std::string fields;
  JsonWriter w = JsonWriter::ContinuingObject(&fields);
  WriteTxnId(&w, "txn", txn);
  return fields;
}

MaybeError ReadTxnId(const Body& body, std::string_view name, cluster::TxnId* out) {
  auto e = body.Find(name);
  array parts;
  uint64_t stamp = 0, coordinator = 0;
  if (!e || e->get_array().get(parts) || parts.size() != 2 || parts.at(0).get_uint64().get(stamp) ||
      parts.at(1).get_uint64().get(coordinator) || coordinator > UINT32_MAX) {
    return Bad(name, "a transaction id [stamp, coordinator]");
  }
  *out = cluster::TxnId{stamp, static_cast<uint32_t>(coordinator)};
  return std::nullopt;
}

void WriteShardIds(JsonWriter* w, std::string_view name, const std::vector<uint32_t>& shards) {
  w->Key(name).BeginArray();
  for (uint32_t shard : shards) w->Uint(shard);
  w->EndArray();
}

MaybeError ReadShardIds(const Body& body, std::string_view name, uint32_t shard_count,
                        std::vector<uint32_t>* out) {
  array items;
  bool present = false;
  if (auto err = ReadArray(body, name, &items, &present)) return err;
  out->clear();
  if (!present) return std::nullopt;
  if (items.size() > shard_count) return Bad(name, "a list of distinct shard ids");
  for (element item : items) {
    uint64_t shard = 0;
    if (item.get_uint64().get(shard) || shard >= shard_count ||
        std::find(out->begin(), out->end(), shard) != out->end()) {
      return Bad(name, "a list of distinct shard ids below " + std::to_string(shard_count));
    }
    out->push_back(static_cast<uint32_t>(shard));
  }
  return std::nullopt;
}

void WriteWrites(JsonWriter* w, std::string_view name, const std::vector<BatchWrite>& writes) {
  w->Key(name).BeginArray();
  for (const BatchWrite& write : writes) {
    w->BeginObject().Key("k");
    WriteHexKey(w, write.key);
    if (write.value) {
      w->Key("val").Raw(*write.value);
    } else {
      w->Key("del").Bool(true);
    }
    w->EndObject();
  }
  w->EndArray();
}

MaybeError ReadWrites(const Body& body, std::string_view name, std::vector<BatchWrite>* out) {
  array items;
  bool present = false;
  if (auto err = ReadArray(body, name, &items, &present)) return err;
  if (!present) {
    out->clear();
    return std::nullopt;
  }
  out->clear();
  out->reserve(items.size());
  for (element item : items) {
    object fields;
    element key, value;
    if (item.get_object().get(fields) || fields.at_key("k").get(key)) {
      return Bad(name, "an array of {k, val} or {k, del} writes");
    }
    BatchWrite write;
    if (auto err = ReadHexElement(key, name, &write.key)) return err;
    if (!fields.at_key("val").get(value)) {
      write.value.emplace();
      AppendCanonicalJson(value, &*write.value);
    }
    out->push_back(std::move(write));
  }
  return std::nullopt;
}

void WriteHexKeys(JsonWriter* w, std::string_view name, const std::vector<std::string>& keys) {
  w->Key(name).BeginArray();
  for (const std::string& key : keys) WriteHexKey(w, key);
  w->EndArray();
}

MaybeError ReadHexKeys(const Body& body, std::string_view name, std::vector<std::string>* out) {
  array items;
  bool present = false;
  if (auto err = ReadArray(body, name, &items, &present)) return err;
  if (!present) {
    out->clear();
    return std::nullopt;
  }
  out->assign(items.size(), std::string());
  size_t i = 0;
  for (element item : items) {
    if (auto err = ReadHexElement(item, name, &(*out)[i++])) return err;
  }
  return std::nullopt;
}

void WriteRange(JsonWriter* w, const KeyRange& range) {
  w->BeginObject().Key("start");
  WriteHexKey(w, range.start);
  if (range.end) {
    w->Key("end");
    WriteHexKey(w, *range.end);
  }
  w->EndObject();
}

MaybeError ReadRange(element e, KeyRange* out) {
  object fields;
  element start, end;
  if (e.get_object().get(fields) || fields.at_key("start").get(start)) {
    return Bad("range", "an object {start, end?}");
  }
  if (auto err = ReadHexElement(start, "range.start", &out->start)) return err;
  out->end.reset();
  if (!fields.at_key("end").get(end)) {
    out->end.emplace();
    if (auto err = ReadHexElement(end, "range.end", &*out->end)) return err;
  }
  return std::nullopt;
}

void WriteRanges(JsonWriter* w, std::string_view name, const std::vector<KeyRange>& ranges) {
  w->Key(name).BeginArray();
  for (const KeyRange& range : ranges) WriteRange(w, range);
  w->EndArray();
}

MaybeError ReadRanges(const Body& body, std::string_view name, std::vector<KeyRange>* out) {
  array items;
  bool present = false;
  if (auto err = ReadArray(body, name, &items, &present)) return err;
  if (!present) {
    out->clear();
    return std::nullopt;
  }
  out->assign(items.size(), KeyRange());
  size_t i = 0;
  for (element item : items) {
    if (auto err = ReadRange(item, &(*out)[i++])) return err;
  }
  return std::nullopt;
}

void WriteReadResult(JsonWriter* w, const ReadResult& read) {
  w->BeginObject();
  if (read.found) {
    w->FieldUint("v", read.version).FieldUint("t", read.timestamp.value());
    if (read.deleted) {
      w->Key("del").Bool(true);
    } else {
      w->Key("val").Raw(read.value);
    }
  }
  w->EndObject();
}

MaybeError ReadReadResult(element e, ReadResult* out) {
  object fields;
  if (e.get_object().get(fields)) return Bad("reads", "an array of read results");
  *out = ReadResult();
  uint64_t version = 0, timestamp = 0;
  if (fields.at_key("v").get_uint64().get(version)) return std::nullopt;  // not found
  if (fields.at_key("t").get_uint64().get(timestamp)) return Bad("reads", "read results with t");
  out->found = true;
  out->version = version;
  out->timestamp = Timestamp(timestamp);
  element value;
  if (fields.at_key("val").get(value)) {
    out->deleted = true;
  } else {
    AppendCanonicalJson(value, &out->value);
  }
  return std::nullopt;
}

}  // namespace strata::protocol
