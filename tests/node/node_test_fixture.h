// Fixtures for the node tests: each test gets a fresh strata-node process and
// must leave it exiting cleanly (status 0, nothing unexpected on stdout).
#ifndef STRATA_TESTS_NODE_NODE_TEST_FIXTURE_H_
#define STRATA_TESTS_NODE_NODE_TEST_FIXTURE_H_

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "node_session.h"

namespace strata::testing {

// A node that has not received `init`.
class FreshNodeTest : public ::testing::Test {
 protected:
  void SetUp() override { node_ = std::make_unique<NodeSession>(NodeArgs()); }
  void TearDown() override { node_->ExpectCleanExit(); }

  // Command-line arguments for the node; fixtures override to add flags.
  virtual std::vector<std::string> NodeArgs() const { return {}; }

  NodeSession& node() { return *node_; }

 private:
  std::unique_ptr<NodeSession> node_;
};

// A single-node store after a successful `init`.
class NodeTest : public FreshNodeTest {
 protected:
  void SetUp() override {
    FreshNodeTest::SetUp();
    node().Init();
  }
};

}  // namespace strata::testing

#endif  // STRATA_TESTS_NODE_NODE_TEST_FIXTURE_H_
