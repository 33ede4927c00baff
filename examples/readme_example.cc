// The README's C++ example, whole: tests/packaging checks that the lines
// between the markers are the README's, and runs this program.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

// README:begin
#include "strata/mvcc_store.h"
#include "strata/store.h"
#include "strata/txn_store.h"

int Example(const std::string& dir) {
  strata::MvccStore store;
  auto first = store.Put("x", "old", strata::Timestamp(100));  // Result<WriteResult>
  auto second = store.Put("x", "new", strata::Timestamp(200));
  auto read = store.Get("x", strata::Timestamp(150));      // read->value == "old", version 1
  auto compacted = store.Compact(strata::Timestamp(150));  // reads below 150 now get kCompacted

  strata::TxnStore db(&store);  // transactions over the same store
  strata::TxnOptions serializable;
  serializable.isolation = strata::Isolation::kSerializable;  // or kSnapshot
  auto txn = db.Begin(serializable);
  auto x = txn->Get("x");  // the snapshot at txn->start_timestamp(): "new"
  strata::Status put = txn->Put("x", "newer");
  strata::Result<strata::Timestamp> done = txn->Commit();  // kConflict names the key

  // The same, durable: recovers what is in the directory, logs before acknowledging.
  auto durable = strata::Store::Open(dir, {});  // kInvalidArgument names damage
  if (!durable.ok()) return 1;
  auto t = (*durable)->db().Begin();
  strata::Status kept_put = t->Put("x", "kept");
  auto kept = t->Commit();  // returns once the commit is fsynced (group commit)
  // README:end
  const bool ok = first.ok() && second.ok() && read.ok() && read->value == "old" &&
                  read->version == 1 && compacted.versions_removed == 0 && x.ok() &&
                  x->value == "new" && put.ok() && done.ok() && kept_put.ok() && kept.ok();
  return ok ? 0 : 1;
}

int main() {
  const auto dir = std::filesystem::temp_directory_path() / "strata-readme-example";
  std::filesystem::remove_all(dir);
  const int failed = Example(dir.string());
  std::filesystem::remove_all(dir);
  std::puts(failed ? "readme_example: FAILED" : "readme_example: ok");
  return failed;
}
