#include "storage_test_support.h"

#include <fcntl.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <sstream>
#include <stdexcept>

namespace strata {

void PrintTo(StatusCode code, std::ostream* os) { *os << StatusCodeName(code); }

void PrintTo(const Status& status, std::ostream* os) {
  *os << StatusCodeName(status.code());
  if (!status.ok()) *os << ": " << status.message();
}

void PrintTo(SyncMode mode, std::ostream* os) { *os << storage_testing::SyncModeName(mode); }

namespace storage_testing {

namespace fs = std::filesystem;

// File helpers throw on failure: a test cannot go on with a half-done
// setup, and gtest reports an uncaught exception with its message.
[[noreturn]] void Die(const std::string& what) {
  throw std::runtime_error(StrCat(what, ": ", std::strerror(errno)));
}

TempDir::TempDir() {
  std::string pattern = "/tmp/strata-storage-test-XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr) Die("mkdtemp");
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ignored;
  fs::remove_all(path_, ignored);
}

std::string TempDir::File(std::string_view name) const {
  std::string out = path_;
  out += '/';
  out += name;
  return out;
}

const char* SyncModeName(SyncMode mode) {
  switch (mode) {
    case SyncMode::kAlways:
      return "kAlways";
    case SyncMode::kBatch:
      return "kBatch";
    case SyncMode::kNone:
      return "kNone";
  }
  return "?";
}

StoreOpenOptions SmallOptions(SyncMode mode) {
  StoreOpenOptions options;
  options.durability.sync = mode;
  options.durability.batch_delay = std::chrono::microseconds(200);
  options.durability.wait_for_durability = true;
  options.durability.segment_bytes = 4096;
  options.durability.checkpoint_after_log_bytes = 0;
  return options;
}

std::string StatusText(const Status& status) { return ::testing::PrintToString(status); }

std::unique_ptr<Store> OpenOrFail(const std::string& dir, const StoreOpenOptions& options) {
  Result<std::unique_ptr<Store>> store = Store::Open(dir, options);
  if (!store.ok()) {
    ADD_FAILURE() << "Store::Open(" << dir << ") failed: " << StatusText(store.status());
    return nullptr;
  }
  return std::move(*store);
}

// ---------------------------------------------------------------------------
// State.

std::string EscapeBytes(std::string_view bytes) {
  std::string out;
  for (unsigned char c : bytes) {
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out += static_cast<char>(c);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    }
  }
  return out;
}

std::string NumberedKey(std::string_view prefix, uint64_t n, int width) {
  const std::string digits = std::to_string(n);
  std::string key(prefix);
  if (static_cast<int>(digits.size()) < width) key.append(width - digits.size(), '0');
  key += digits;
  return key;
}

namespace {

constexpr size_t kEverything = size_t{1} << 22;

std::string DescribeVersion(uint64_t version, Timestamp timestamp, bool deleted,
                            std::string_view value) {
  std::string out = StrCat("v", std::to_string(version), "@", std::to_string(timestamp.value()));
  if (deleted) {
    out += " deleted";
  } else {
    // Long values are shown by length and checksum so a failure stays readable.
    if (value.size() > 40) {
      out += StrCat(" =<", std::to_string(value.size()), " bytes, xxh3 ",
                    std::to_string(XXH3_64bits(value.data(), value.size())), ">");
    } else {
      out += StrCat(" =\"", EscapeBytes(value), "\"");
    }
  }
  return out;
}

std::string DescribeKey(const MvccStore& store, const std::string& key, Timestamp horizon) {
  std::string line;
  Result<ReadResult> at_horizon = store.Get(key, horizon);
  if (!at_horizon.ok())
    return StrCat("Get at the horizon failed: ", StatusText(at_horizon.status()));
  // A tombstone at or below the horizon and "no version" read the same; a
  // sweep turns the first into the second, so both count as absent.
  if (at_horizon->found && !at_horizon->deleted) {
    line += StrCat("at horizon: ", DescribeVersion(at_horizon->version, at_horizon->timestamp,
                                                   false, at_horizon->value));
  }
  Result<HistoryResult> history = store.History(key, horizon, std::nullopt, kEverything);
  if (!history.ok()) return StrCat("History failed: ", StatusText(history.status()));
  for (const HistoryEntry& entry : history->versions) {
    // Versions at the horizon itself are what the read above saw (or a
    // tombstone a sweep may drop); with nothing compacted (horizon 0) every
    // version counts.
    if (horizon.value() > 0 && entry.timestamp <= horizon) continue;
    if (!line.empty()) line += "; ";
    line += DescribeVersion(entry.version, entry.timestamp, entry.deleted, entry.value);
  }
  return line;
}

}  // namespace

StoreState CaptureState(const MvccStore& store, const std::vector<std::string>& known_keys) {
  StoreState state;
  state.horizon = store.compaction_horizon();
  state.max_timestamp = store.max_timestamp();

  std::set<std::string> keys(known_keys.begin(), known_keys.end());
  if (Result<ScanResult> scan = store.Scan(KeyRange::All(), Timestamp::Max(), kEverything);
      scan.ok()) {
    for (const ScanItem& item : scan->items) keys.insert(item.key);
  } else {
    ADD_FAILURE() << "Scan failed: " << StatusText(scan.status());
  }
  if (Result<ChangesResult> changes = store.Changes(state.horizon, KeyRange::All(), kEverything);
      changes.ok()) {
    for (const Change& change : changes->changes) keys.insert(change.key);
  } else {
    ADD_FAILURE() << "Changes failed: " << StatusText(changes.status());
  }

  for (const std::string& key : keys) {
    std::string line = DescribeKey(store, key, state.horizon);
    if (!line.empty()) state.keys.emplace(key, std::move(line));
  }
  return state;
}

std::string ToString(const StoreState& state) {
  std::ostringstream out;
  out << "horizon " << state.horizon.value() << ", max_timestamp "
      << (state.max_timestamp ? std::to_string(state.max_timestamp->value()) : "none") << ", "
      << state.keys.size() << " keys\n";
  for (const auto& [key, line] : state.keys)
    out << "  \"" << EscapeBytes(key) << "\": " << line << "\n";
  return out.str();
}

std::string DescribeDifference(const StoreState& expected, const StoreState& actual) {
  if (expected == actual) return "";
  std::ostringstream out;
  if (expected.horizon != actual.horizon) {
    out << "horizon: expected " << expected.horizon.value() << ", got " << actual.horizon.value()
        << "\n";
  }
  if (expected.max_timestamp != actual.max_timestamp) {
    auto show = [](const std::optional<Timestamp>& t) {
      return t ? std::to_string(t->value()) : std::string("none");
    };
    out << "max_timestamp: expected " << show(expected.max_timestamp) << ", got "
        << show(actual.max_timestamp) << "\n";
  }
  int shown = 0;
  std::set<std::string> keys;
  for (const auto& [key, line] : expected.keys) keys.insert(key);
  for (const auto& [key, line] : actual.keys) keys.insert(key);
  for (const std::string& key : keys) {
    auto e = expected.keys.find(key);
    auto a = actual.keys.find(key);
    const std::string want = e == expected.keys.end() ? "(absent)" : e->second;
    const std::string got = a == actual.keys.end() ? "(absent)" : a->second;
    if (want == got) continue;
    if (++shown > 10) {
      out << "  ...\n";
      break;
    }
    out << "key \"" << EscapeBytes(key) << "\":\n  expected " << want << "\n  got      " << got
        << "\n";
  }
  return out.str();
}

// ---------------------------------------------------------------------------
// Files.

std::string ReadFileBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) Die(StrCat("open ", path));
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void WriteFileBytes(const std::string& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) Die(StrCat("create ", path));
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) Die(StrCat("write ", path));
}

uint64_t FileSize(const std::string& path) { return fs::file_size(path); }

void TruncateFile(const std::string& path, uint64_t size) {
  if (::truncate(path.c_str(), static_cast<off_t>(size)) != 0) Die(StrCat("truncate ", path));
}

void OverwriteBytes(const std::string& path, uint64_t offset, std::string_view bytes) {
  const int fd = ::open(path.c_str(), O_WRONLY);
  if (fd < 0) Die(StrCat("open ", path));
  const ssize_t written = ::pwrite(fd, bytes.data(), bytes.size(), static_cast<off_t>(offset));
  ::close(fd);
  if (written != static_cast<ssize_t>(bytes.size())) Die(StrCat("pwrite ", path));
}

void FlipByte(const std::string& path, uint64_t offset, uint8_t mask) {
  std::string contents = ReadFileBytes(path);
  if (offset >= contents.size()) {
    throw std::runtime_error(
        StrCat("FlipByte: offset ", std::to_string(offset), " is past the end of ", path));
  }
  const char flipped = static_cast<char>(static_cast<uint8_t>(contents[offset]) ^ mask);
  OverwriteBytes(path, offset, std::string_view(&flipped, 1));
}

void CopyDirFiles(const std::string& from, const std::string& to) {
  for (const fs::directory_entry& entry : fs::directory_iterator(from)) {
    if (!entry.is_regular_file()) continue;
    fs::copy_file(entry.path(), fs::path(to) / entry.path().filename(),
                  fs::copy_options::overwrite_existing);
  }
}

std::vector<std::string> ListFiles(const std::string& dir, std::string_view prefix,
                                   std::string_view suffix) {
  std::vector<std::string> names;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (name.size() >= prefix.size() + suffix.size() && name.starts_with(prefix) &&
        name.ends_with(suffix)) {
      names.push_back(name);
    }
  }
  std::sort(names.begin(), names.end());
  return names;
}

std::vector<std::string> WalSegmentNames(const std::string& dir) {
  return ListFiles(dir, "wal-", ".log");
}

std::vector<std::string> CheckpointNames(const std::string& dir) {
  return ListFiles(dir, "checkpoint-", ".ckpt");
}

std::string WalSegmentName(uint64_t first_lsn) {
  return StrCat("wal-", NumberedKey("", first_lsn, 20), ".log");
}

std::string CheckpointName(uint64_t lsn) {
  return StrCat("checkpoint-", NumberedKey("", lsn, 20), ".ckpt");
}

// ---------------------------------------------------------------------------
// WAL layout.

uint64_t Checksum(std::string_view bytes) { return XXH3_64bits(bytes.data(), bytes.size()); }

namespace {

template <typename T>
T LoadLittleEndian(std::string_view bytes, size_t offset) {
  T value = 0;
  for (size_t i = 0; i < sizeof(T); ++i) {
    value |= static_cast<T>(static_cast<uint8_t>(bytes[offset + i])) << (8 * i);
  }
  return value;
}

std::string StoreLittleEndian64(uint64_t value) {
  std::string out(8, '\0');
  for (size_t i = 0; i < 8; ++i) out[i] = static_cast<char>((value >> (8 * i)) & 0xff);
  return out;
}

bool AllZero(std::string_view bytes) {
  return std::all_of(bytes.begin(), bytes.end(), [](char c) { return c == 0; });
}

}  // namespace

bool WalRecordInfo::Mentions(std::string_view bytes) const {
  return payload.find(bytes) != std::string::npos;
}

WalSegmentInfo ReadWalSegment(const std::string& dir, const std::string& name) {
  WalSegmentInfo segment;
  segment.name = name;
  const std::string bytes = ReadFileBytes(StrCat(dir, "/", name));
  segment.file_bytes = bytes.size();
  if (bytes.size() < kSegmentHeaderBytes) return segment;
  const std::string_view view(bytes);
  segment.first_lsn = LoadLittleEndian<uint64_t>(view, 16);
  segment.header_ok = view.substr(0, 8) == kSegmentMagic &&
                      LoadLittleEndian<uint32_t>(view, 8) == 1 &&
                      LoadLittleEndian<uint32_t>(view, 12) == kSegmentHeaderBytes &&
                      LoadLittleEndian<uint64_t>(view, 24) == Checksum(view.substr(0, 24));
  if (!segment.header_ok) return segment;

  uint64_t offset = kSegmentHeaderBytes;
  uint64_t expected_lsn = segment.first_lsn;
  auto stop = [&](const std::string& why) {
    segment.stopped_at_bad_record = StrCat(why, " at offset ", std::to_string(offset));
  };
  while (true) {
    segment.data_end = offset;
    if (offset + kRecordHeaderBytes > bytes.size()) {
      if (!AllZero(view.substr(offset))) stop("partial record header");
      break;
    }
    const std::string_view header = view.substr(offset, kRecordHeaderBytes);
    if (AllZero(header)) break;
    WalRecordInfo record;
    record.offset = offset;
    record.payload_bytes = LoadLittleEndian<uint32_t>(header, 8);
    record.type = static_cast<uint8_t>(header[12]);
    record.lsn = LoadLittleEndian<uint64_t>(header, 16);
    if (record.payload_end() > bytes.size()) {
      stop("record length past the end of the file");
      break;
    }
    const std::string_view covered =
        view.substr(offset + 8, kRecordHeaderBytes - 8 + record.payload_bytes);
    if (LoadLittleEndian<uint64_t>(header, 0) != Checksum(covered)) {
      stop("checksum mismatch");
      break;
    }
    if (!AllZero(header.substr(13, 3))) {
      stop("non-zero reserved bytes");
      break;
    }
    if (record.lsn != expected_lsn) {
      stop(StrCat("LSN ", std::to_string(record.lsn), " where ", std::to_string(expected_lsn),
                  " was expected"));
      break;
    }
    record.payload = std::string(view.substr(offset + kRecordHeaderBytes, record.payload_bytes));
    segment.records.push_back(std::move(record));
    ++expected_lsn;
    offset = segment.records.back().padded_end();
  }
  return segment;
}

std::vector<WalSegmentInfo> ReadWal(const std::string& dir) {
  std::vector<WalSegmentInfo> segments;
  for (const std::string& name : WalSegmentNames(dir))
    segments.push_back(ReadWalSegment(dir, name));
  return segments;
}

void ResealRecord(const std::string& path, uint64_t offset) {
  const std::string bytes = ReadFileBytes(path);
  const uint32_t length = LoadLittleEndian<uint32_t>(bytes, offset + 8);
  const std::string_view covered =
      std::string_view(bytes).substr(offset + 8, kRecordHeaderBytes - 8 + length);
  OverwriteBytes(path, offset, StoreLittleEndian64(Checksum(covered)));
}

// ---------------------------------------------------------------------------
// Messages.

std::string Without(std::string_view message, std::string_view ignored) {
  if (ignored.empty()) return std::string(message);
  std::string out;
  size_t from = 0;
  for (size_t at = message.find(ignored); at != std::string_view::npos;
       at = message.find(ignored, from)) {
    out.append(message.substr(from, at - from));
    out.append(" ");
    from = at + ignored.size();
  }
  out.append(message.substr(from));
  return out;
}

std::vector<uint64_t> NumbersIn(std::string_view full_message, std::string_view ignored) {
  const std::string message = Without(full_message, ignored);
  std::vector<uint64_t> numbers;
  size_t i = 0;
  while (i < message.size()) {
    if (!std::isdigit(static_cast<unsigned char>(message[i]))) {
      ++i;
      continue;
    }
    size_t end = i;
    while (end < message.size() && std::isdigit(static_cast<unsigned char>(message[end]))) ++end;
    if (end - i <= 19) numbers.push_back(std::stoull(message.substr(i, end - i)));
    i = end;
  }
  return numbers;
}

bool MentionsNumber(std::string_view message, uint64_t number) {
  for (uint64_t n : NumbersIn(std::string(message))) {
    if (n == number) return true;
  }
  char hex[32];
  std::snprintf(hex, sizeof hex, "0x%llx", static_cast<unsigned long long>(number));
  std::string lower(message);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  for (size_t at = lower.find(hex); at != std::string::npos; at = lower.find(hex, at + 1)) {
    const size_t after = at + std::strlen(hex);
    if (after >= lower.size() || !std::isxdigit(static_cast<unsigned char>(lower[after]))) {
      return true;
    }
  }
  return false;
}

std::chrono::steady_clock::duration StressDuration(double default_seconds) {
  double seconds = default_seconds;
  if (const char* env = std::getenv("STRATA_STRESS_SECONDS")) seconds = std::atof(env);
  return std::chrono::duration_cast<std::chrono::steady_clock::duration>(
      std::chrono::duration<double>(seconds));
}

}  // namespace storage_testing
}  // namespace strata
