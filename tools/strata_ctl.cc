// strata-ctl: what etcdctl does not do for a strata server. Plain key-value
// work stays etcdctl's job; `strata-ctl --help` lists the commands.
#include <grpcpp/grpcpp.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>

#include "rpc.grpc.pb.h"
#include "service/snapshot.h"

namespace {

namespace pb = etcdserverpb;

// A client of the etcd API does not need the server's receive limits: a
// snapshot chunk or a large Range comes in whole.
std::shared_ptr<grpc::Channel> Connect(const std::string& endpoint) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(-1);
  return grpc::CreateCustomChannel(endpoint, grpc::InsecureChannelCredentials(), args);
}

int SnapshotSave(const std::string& endpoint, const std::string& path) {
  auto stub = pb::Maintenance::NewStub(Connect(endpoint));
  grpc::ClientContext ctx;
  auto reader = stub->Snapshot(&ctx, pb::SnapshotRequest());
  const std::string part = path + ".part";
  std::ofstream out(part, std::ios::binary | std::ios::trunc);
  if (!out) {
    std::cerr << "Error: cannot write " << part << "\n";
    return 1;
  }
  pb::SnapshotResponse chunk;
  uint64_t bytes = 0;
  int64_t revision = 0;
  while (reader->Read(&chunk)) {
    out.write(chunk.blob().data(), static_cast<std::streamsize>(chunk.blob().size()));
    bytes += chunk.blob().size();
    revision = chunk.header().revision();
  }
  grpc::Status status = reader->Finish();
  out.close();
  if (!status.ok() || !out) {
    std::filesystem::remove(part);
    std::cerr << "Error: " << (status.ok() ? "writing " + part + " failed" : status.error_message())
              << "\n";
    return 1;
  }
  std::filesystem::rename(part, path);
  std::cout << "Snapshot saved at " << path << " (revision " << revision << ", " << bytes
            << " bytes)\n";
  return 0;
}

int SnapshotRestore(const std::string& path, const std::string& data_dir) {
  auto report = strata::service::RestoreSnapshot(
      path, data_dir, [](std::string_view line) { std::cerr << line << "\n"; });
  if (!report.ok()) {
    std::cerr << "Error: " << report.status().message() << "\n";
    return 1;
  }
  const auto& r = report.value();
  std::cout << "Restored " << path << " into " << data_dir << ": revision " << r.revision
            << ", compacted at " << r.compact_revision << ", " << r.keys << " keys, "
            << r.versions << " versions, " << r.leases << " leases\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"strata-ctl: strata's own commands, beside etcdctl"};
  app.require_subcommand(1);
  std::string endpoint = "127.0.0.1:2379";
  app.add_option("--endpoints", endpoint, "the server, host:port")->capture_default_str();

  auto* snapshot = app.add_subcommand("snapshot", "save a server's snapshot, or restore one");
  snapshot->require_subcommand(1);
  std::string save_path;
  auto* save = snapshot->add_subcommand("save", "stream the server's snapshot into FILE");
  save->add_option("file", save_path, "where to write it")->required();
  std::string restore_path, data_dir;
  auto* restore = snapshot->add_subcommand(
      "restore", "make a new data directory from FILE (then start strata-server on it)");
  restore->add_option("file", restore_path, "a snapshot written by `snapshot save`")->required();
  restore->add_option("--data-dir", data_dir, "the new data directory (must not hold a store)")
      ->required();
  CLI11_PARSE(app, argc, argv);

  if (save->parsed()) return SnapshotSave(endpoint, save_path);
  if (restore->parsed()) return SnapshotRestore(restore_path, data_dir);
  return 2;
}
