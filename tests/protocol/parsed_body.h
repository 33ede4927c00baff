// ParsedBody: a request body from JSON text, for tests of the typed parsers.
#ifndef STRATA_TESTS_PROTOCOL_PARSED_BODY_H_
#define STRATA_TESTS_PROTOCOL_PARSED_BODY_H_

#include <gtest/gtest.h>

#include <string>

#include "protocol/body.h"

namespace strata::protocol {

class ParsedBody {
 public:
  // The body of `json` (an object); valid until the next call.
  const Body& Parse(const std::string& json) {
    simdjson::dom::object object;
    EXPECT_EQ(parser_.parse(json).get(object), simdjson::SUCCESS) << json;
    body_ = Body();
    EXPECT_FALSE(body_.Load(object).has_value()) << json;
    return body_;
  }

 private:
  simdjson::dom::parser parser_;
  Body body_;
};

}  // namespace strata::protocol

#endif  // STRATA_TESTS_PROTOCOL_PARSED_BODY_H_
