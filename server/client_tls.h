// ClientTls: the TLS a client connection is served with, from etcd's flags
// (--cert-file, --key-file, --trusted-ca-file, --client-cert-auth); and
// the TLS between the members of a cluster, from the same flags with
// --peer- in front (a member's peer port serves it, its links to the other
// members present the same certificate).
//
// The files are read and checked once at start, with OpenSSL, so that a
// wrong path, a key that does not belong to the certificate or an expired
// server certificate stops the server with a sentence naming the flag,
// instead of a gRPC handshake failing later for every client.
#ifndef STRATA_SERVER_CLIENT_TLS_H_
#define STRATA_SERVER_CLIENT_TLS_H_

#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>

#include <memory>
#include <string>

#include "strata/status.h"

namespace strata::server {

struct ClientTlsOptions {
  std::string cert_file;        // the server's certificate (PEM), chain allowed
  std::string key_file;         // its private key (PEM)
  std::string trusted_ca_file;  // CAs whose client certificates are accepted
  // Refuse a client without a certificate signed by a trusted CA (and
  // unexpired): the TLS handshake fails, as etcd's.
  bool client_cert_auth = false;
  // "" for the client flags, "peer-" for the peer ones: how errors name them.
  std::string flag_prefix;

  bool configured() const { return !cert_file.empty() || !key_file.empty(); }
};

// Checks the files and makes gRPC's server credentials from them.
// kInvalidArgument names the flag and what is wrong with its file.
Result<std::shared_ptr<grpc::ServerCredentials>> MakeClientTlsCredentials(
    const ClientTlsOptions& options);
// What a member's links to the other members present: its certificate and
// key, verifying theirs against the trusted CA (needed).
Result<std::shared_ptr<grpc::ChannelCredentials>> MakePeerChannelCredentials(
    const ClientTlsOptions& options);

// --peer-auto-tls, as etcd's: a key and a self-signed certificate made at
// start (P-256, valid a year, common name `name`, naming `host` as its
// subject alternative name so peers' TLS finds its own name in it), served
// on the peer port and presented by the links; neither side checks the
// other's certificate.
// The links are encrypted but not authenticated: whoever reaches the peer
// port is believed, as with plain text.
struct PeerCredentials {
  std::shared_ptr<grpc::ServerCredentials> served;
  std::shared_ptr<grpc::ChannelCredentials> presented;
};
Result<PeerCredentials> MakePeerAutoTlsCredentials(const std::string& name,
                                                   const std::string& host);

}  // namespace strata::server

#endif  // STRATA_SERVER_CLIENT_TLS_H_
