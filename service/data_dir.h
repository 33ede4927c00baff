// Where the etcd model keeps its stores inside a server's --data-dir.
#ifndef STRATA_SERVICE_DATA_DIR_H_
#define STRATA_SERVICE_DATA_DIR_H_

#include <string>

namespace strata::service {

// The key-value store: revisions, keys and their versions.
inline std::string KvStoreDir(const std::string& data_dir) { return data_dir + "/kv"; }
// The lease journal (service/lease_journal.h).
inline std::string LeaseStoreDir(const std::string& data_dir) { return data_dir + "/lease"; }
// Users, roles and permissions.
inline std::string AuthStoreDir(const std::string& data_dir) { return data_dir + "/auth"; }

}  // namespace strata::service

#endif  // STRATA_SERVICE_DATA_DIR_H_
