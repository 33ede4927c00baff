#include "protocol/envelope.h"

#include "protocol/canonical_json.h"
#include "protocol/envelope_peek.h"
#include "protocol/limits.h"

namespace strata::protocol {

using simdjson::dom::element;
using simdjson::dom::element_type;

EnvelopeParser::EnvelopeParser() : parser_(kMaxLineBytes) {
  // Start small; the parser grows to the longest line seen (up to the limit)
  // and keeps this depth limit. A failed allocation here is retried, and
  // reported, by the first parse.
  if (parser_.allocate(64 * 1024, kMaxJsonDepth) != simdjson::SUCCESS) return;
}

namespace {

std::string ParseErrorText(simdjson::error_code code) {
  switch (code) {
    case simdjson::DEPTH_ERROR:
      return "the message nests deeper than " + std::to_string(kMaxJsonDepth) + " levels";
    case simdjson::UTF8_ERROR:
      return "the message is not valid UTF-8";
    case simdjson::CAPACITY:
      return "the message is longer than " + std::to_string(kMaxLineBytes) + " bytes";
    default:
      return std::string("the line is not valid JSON: ") + simdjson::error_message(code);
  }
}

}  // namespace

ParseOutcome EnvelopeParser::Parse(std::string_view line, Envelope* out, ErrorReply* error) {
  auto unanswerable = [&](std::string text) {
    *error = Malformed(std::move(text));
    return ParseOutcome::kUnanswerable;
  };
  if (line.size() > kMaxLineBytes) return unanswerable(ParseErrorText(simdjson::CAPACITY));
  padded_.assign(line);
  padded_.append(simdjson::SIMDJSON_PADDING, '\0');

  element root;
  if (auto code = parser_.parse(padded_.data(), line.size(), false).get(root)) {
    return Peeked(line, code, out, error);
  }
  simdjson::dom::object message;
  if (root.get_object().get(message)) return unanswerable("the message is not a JSON object");

  element src, dest, body;
  int seen_src = 0, seen_dest = 0, seen_body = 0;
  for (auto [name, value] : message) {
    if (name == "src")
      ++seen_src, src = value;
    else if (name == "dest")
      ++seen_dest, dest = value;
    else if (name == "body")
      ++seen_body, body = value;
  }
  if (seen_src > 1 || seen_dest > 1 || seen_body > 1) {
    return unanswerable("the message repeats 'src', 'dest' or 'body'");
  }
  if (seen_src == 0 || !src.is_string()) return unanswerable("the message has no string 'src'");
  if (seen_body == 0 || !body.is_object()) return unanswerable("the message has no object 'body'");
  out->src = std::string_view(src);
  out->dest = (seen_dest == 1 && dest.is_string()) ? std::string_view(dest) : std::string_view();

  // Fields are loaded before anything else so that a repeated msg_id is
  // caught too.
  MaybeError body_error = out->body.Load(simdjson::dom::object(body));
  auto msg_id = out->body.Find("msg_id");
  out->has_msg_id = msg_id.has_value() && !msg_id->is_null();
  if (!out->has_msg_id) {
    // Without a msg_id nothing can be answered; a valid request still runs.
    if (body_error) return unanswerable(body_error->text);
  } else {
    out->msg_id_json.clear();
    AppendCanonicalJson(*msg_id, &out->msg_id_json);  // into the reused buffer
    if (body_error) {
      *error = *body_error;
      return ParseOutcome::kMalformed;
    }
    if (msg_id->type() != element_type::INT64 && msg_id->type() != element_type::UINT64) {
      *error = Malformed("field 'msg_id' must be an integer");
      return ParseOutcome::kMalformed;
    }
  }
  auto type = out->body.Find("type");
  if (!type || !type->is_string()) {
    *error = Malformed("field 'type' is required and must be a string");
    return out->has_msg_id ? ParseOutcome::kMalformed : ParseOutcome::kUnanswerable;
  }
  out->type = std::string_view(*type);
  return ParseOutcome::kOk;
}

ParseOutcome EnvelopeParser::Peeked(std::string_view text, simdjson::error_code code, Envelope* out,
                                    ErrorReply* error) {
  *error = Malformed(ParseErrorText(code));
  // Only JSON that is well-formed as far as it goes, but too long, too deep
  // or holding a too-large integer, is answered; a line that is not JSON
  // stays unanswered (PROTOCOL.md), as its "src" cannot be trusted.
  if (code != simdjson::DEPTH_ERROR && code != simdjson::CAPACITY &&
      code != simdjson::NUMBER_ERROR) {
    return ParseOutcome::kUnanswerable;
  }
  const PeekedEnvelope peek = PeekEnvelope(text);
  if (code == simdjson::NUMBER_ERROR) {
    const auto& field = peek.out_of_range_field;
    if (!field || !simdjson::validate_utf8(field->data(), field->size())) {
      return ParseOutcome::kUnanswerable;
    }
    *error = Malformed("field '" + *field +
                       "' is an integer out of range (integers here fit in 64 bits; "
                       "timestamps are from 0 to 2^63-1)");
  }
  if (!peek.src || !peek.msg_id_json ||
      !simdjson::validate_utf8(peek.src->data(), peek.src->size())) {
    return ParseOutcome::kUnanswerable;
  }
  peeked_src_ = *peek.src;
  out->src = peeked_src_;
  out->dest = std::string_view();
  out->type = std::string_view();
  out->has_msg_id = true;
  out->msg_id_json = *peek.msg_id_json;
  return ParseOutcome::kMalformed;
}

ParseOutcome EnvelopeParser::ParseOverlong(std::string_view start, Envelope* out,
                                           ErrorReply* error) {
  return Peeked(start, simdjson::CAPACITY, out, error);
}

}  // namespace strata::protocol
