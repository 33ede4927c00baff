#include "protocol/envelope_peek.h"

#include <cstdint>
#include <vector>

namespace strata::protocol {
namespace {

class Scanner {
 public:
  explicit Scanner(std::string_view text) : t_(text) {}

  PeekedEnvelope Run() {
    PeekedEnvelope out;
    SkipSpace();
    if (!Eat('{')) return out;
    // Depth 1: the envelope; depth 2: inside "body" (when it is an object).
    int depth = 1;
    bool in_body = false;
    // What the key just read names, at the depth it was read.
    std::string key;
    bool expecting_key = true;
    while (pos_ < t_.size()) {
      SkipSpace();
      if (pos_ >= t_.size()) break;
      const char c = t_[pos_];
      if (c == ',') {
        ++pos_;
        expecting_key = true;
        continue;
      }
      if (c == '}' || c == ']') {
        ++pos_;
        --depth;
        if (depth == 1) in_body = false;
        if (depth <= 0) break;
        expecting_key = true;
        continue;
      }
      if (expecting_key && (depth == 1 || (in_body && depth == 2))) {
        auto k = String();
        if (!k) break;
        key = std::move(*k);
        SkipSpace();
        if (!Eat(':')) break;
        expecting_key = false;
        SkipSpace();
        if (pos_ >= t_.size()) break;
        // The value of a key we care about.
        const char v = t_[pos_];
        if (depth == 1 && key == "src" && v == '"') {
          out.src = String();
          continue;
        }
        if (depth == 1 && key == "body" && v == '{') {
          ++pos_;
          ++depth;
          in_body = true;
          expecting_key = true;
          continue;
        }
        if (depth == 2 && (v == '-' || (v >= '0' && v <= '9'))) {
          const size_t start = pos_;
          const bool fits = Number();
          const std::string_view number = t_.substr(start, pos_ - start);
          // Copied into the reply's in_reply_to, so only a well-formed JSON
          // integer ("06" or "1-2" would make the reply itself invalid).
          if (key == "msg_id" && fits && IsJsonInteger(number)) {
            out.msg_id_json = std::string(number);
          }
          if (!fits && !out.out_of_range_field) out.out_of_range_field = key;
          continue;
        }
        continue;  // any other value is skipped below, token by token
      }
      // Skip one token of a value we do not look into.
      if (c == '{' || c == '[') {
        ++pos_;
        ++depth;
        expecting_key = (c == '{');
        continue;
      }
      if (c == '"') {
        if (!SkipString()) break;
        continue;
      }
      if (c == ':') {
        ++pos_;
        continue;
      }
      ++pos_;  // numbers, true, false, null: character by character
    }
    return out;
  }

 private:
  void SkipSpace() {
    while (pos_ < t_.size() &&
           (t_[pos_] == ' ' || t_[pos_] == '\t' || t_[pos_] == '\n' || t_[pos_] == '\r')) {
      ++pos_;
    }
  }
  bool Eat(char c) {
    if (pos_ < t_.size() && t_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  bool SkipString() {
    ++pos_;  // the opening quote
    while (pos_ < t_.size()) {
      const char c = t_[pos_++];
      if (c == '\\') {
        ++pos_;
      } else if (c == '"') {
        return true;
      }
    }
    return false;
  }
  // A string, with the simple escapes decoded (\uXXXX is kept as written:
  // enough to address a reply, which is all this is for).
  std::optional<std::string> String() {
    if (!Eat('"')) return std::nullopt;
    std::string s;
    while (pos_ < t_.size()) {
      char c = t_[pos_++];
      if (c == '"') return s;
      if (c == '\\' && pos_ < t_.size()) {
        const char e = t_[pos_++];
        switch (e) {
          case 'n':
            c = '\n';
            break;
          case 't':
            c = '\t';
            break;
          case 'r':
            c = '\r';
            break;
          case 'b':
            c = '\b';
            break;
          case 'f':
            c = '\f';
            break;
          case 'u':
            s += "\\u";
            continue;
          default:
            c = e;
        }
      }
      s.push_back(c);
    }
    return std::nullopt;  // cut off
  }
  // -?(0|[1-9][0-9]*): an integer as JSON writes it.
  static bool IsJsonInteger(std::string_view n) {
    if (!n.empty() && n.front() == '-') n.remove_prefix(1);
    if (n.empty() || (n.size() > 1 && n.front() == '0')) return false;
    for (char c : n) {
      if (c < '0' || c > '9') return false;
    }
    return true;
  }
  // Reads a number; false if it is an integer outside 64 bits.
  bool Number() {
    const bool negative = Eat('-');
    bool integer = true;
    unsigned __int128 value = 0;
    bool overflow = false;
    while (pos_ < t_.size()) {
      const char c = t_[pos_];
      if (c >= '0' && c <= '9') {
        if (!overflow) {
          value = value * 10 + static_cast<unsigned>(c - '0');
          if (value > (static_cast<unsigned __int128>(1) << 64)) overflow = true;
        }
      } else if (c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-') {
        integer = false;
      } else {
        break;
      }
      ++pos_;
    }
    if (!integer) return true;
    if (overflow) return false;
    if (negative) return value <= (static_cast<unsigned __int128>(1) << 63);
    return value < (static_cast<unsigned __int128>(1) << 64);
  }

  std::string_view t_;
  size_t pos_ = 0;
};

}  // namespace

PeekedEnvelope PeekEnvelope(std::string_view text) { return Scanner(text).Run(); }

}  // namespace strata::protocol
