#include "server/client_tls.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <fstream>
#include <sstream>

#include <grpcpp/security/server_credentials.h>

namespace strata::server {
namespace {

Result<std::string> ReadPem(const std::string& flag, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::InvalidArgument(flag + " " + path + ": cannot be read");
  std::ostringstream out;
  out << in.rdbuf();
  if (out.str().empty()) return Status::InvalidArgument(flag + " " + path + ": empty");
  return out.str();
}

// OpenSSL objects with their deleters.
struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct KeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using Bio = std::unique_ptr<BIO, BioFree>;

Bio MemoryBio(const std::string& pem) {
  return Bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
}

}  // namespace

Result<std::shared_ptr<grpc::ServerCredentials>> MakeClientTlsCredentials(
    const ClientTlsOptions& options) {
  if (options.cert_file.empty() || options.key_file.empty()) {
    return Status::InvalidArgument("https:// client URLs need --cert-file and --key-file");
  }
  if (options.client_cert_auth && options.trusted_ca_file.empty()) {
    return Status::InvalidArgument("--client-cert-auth needs --trusted-ca-file");
  }
  auto cert = ReadPem("--cert-file", options.cert_file);
  if (!cert.ok()) return cert.status();
  auto key = ReadPem("--key-file", options.key_file);
  if (!key.ok()) return key.status();
  std::string ca;
  if (!options.trusted_ca_file.empty()) {
    auto r = ReadPem("--trusted-ca-file", options.trusted_ca_file);
    if (!r.ok()) return r.status();
    ca = std::move(r.value());
  }

  std::unique_ptr<X509, X509Free> x509(
      PEM_read_bio_X509(MemoryBio(cert.value()).get(), nullptr, nullptr, nullptr));
  if (!x509) {
    return Status::InvalidArgument("--cert-file " + options.cert_file + ": not a PEM certificate");
  }
  std::unique_ptr<EVP_PKEY, KeyFree> pkey(
      PEM_read_bio_PrivateKey(MemoryBio(key.value()).get(), nullptr, nullptr, nullptr));
  if (!pkey) {
    return Status::InvalidArgument("--key-file " + options.key_file +
                                   ": not a PEM private key (or it is encrypted)");
  }
  if (X509_check_private_key(x509.get(), pkey.get()) != 1) {
    ERR_clear_error();
    return Status::InvalidArgument("--key-file " + options.key_file +
                                   " is not the key of --cert-file " + options.cert_file);
  }
  if (X509_cmp_current_time(X509_get0_notAfter(x509.get())) <= 0) {
    return Status::InvalidArgument("--cert-file " + options.cert_file +
                                   ": the certificate has expired");
  }
  if (!ca.empty()) {
    std::unique_ptr<X509, X509Free> first(
        PEM_read_bio_X509(MemoryBio(ca).get(), nullptr, nullptr, nullptr));
    if (!first) {
      return Status::InvalidArgument("--trusted-ca-file " + options.trusted_ca_file +
                                     ": no PEM certificate in it");
    }
  }
  ERR_clear_error();

  grpc::SslServerCredentialsOptions ssl(
      options.client_cert_auth ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
                               : GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  ssl.pem_root_certs = ca;
  ssl.pem_key_cert_pairs.push_back({key.value(), cert.value()});
  return grpc::SslServerCredentials(ssl);
}

}  // namespace strata::server
