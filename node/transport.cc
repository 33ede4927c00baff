#include "node/transport.h"

#include "protocol/json_writer.h"

namespace strata::node {

void Transport::ReplyError(const ReplyAddress& to, const protocol::ErrorReply& error) {
  std::string fields;
  protocol::JsonWriter w = protocol::JsonWriter::ContinuingObject(&fields);
  w.FieldUint("code", static_cast<uint64_t>(error.code)).Field("text", error.text);
  Reply(to, "error", fields);
}

}  // namespace strata::node
