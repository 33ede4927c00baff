#include "service/stored_value.h"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

namespace strata::service {
namespace {

RC_GTEST_PROP(StoredValueTest, RoundTrips,
              (int64_t create, int64_t version, int64_t lease, std::string value)) {
  StoredValue v{create, version, lease, value};
  const std::string encoded = EncodeStoredValue(v);
  auto back = DecodeStoredValue(encoded);  // views into `encoded`
  RC_ASSERT(back.has_value());
  RC_ASSERT(back->create_revision == create);
  RC_ASSERT(back->version == version);
  RC_ASSERT(back->lease == lease);
  RC_ASSERT(std::string(back->value) == value);
}

TEST(StoredValueTest, RefusesWhatIsNotOne) {
  EXPECT_FALSE(DecodeStoredValue("").has_value());
  EXPECT_FALSE(DecodeStoredValue("plain").has_value());
  EXPECT_FALSE(DecodeStoredValue(std::string("\x01\x80", 2)).has_value()) << "a cut varint";
  std::string endless(1, '\x01');
  endless.append(20, '\xff');
  EXPECT_FALSE(DecodeStoredValue(endless).has_value());
}

}  // namespace
}  // namespace strata::service
