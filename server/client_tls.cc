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

// A flag as the user gave it: "--cert-file" or "--peer-cert-file".
std::string Flag(const ClientTlsOptions& options, const char* name) {
  return "--" + options.flag_prefix + name;
}

struct CheckedFiles {
  std::string cert, key, ca;
};

// Reads and checks the files: the key is the certificate's, the
// certificate has not expired, the CA file holds a certificate.
Result<CheckedFiles> ReadAndCheck(const ClientTlsOptions& options) {
  auto cert = ReadPem(Flag(options, "cert-file"), options.cert_file);
  if (!cert.ok()) return cert.status();
  auto key = ReadPem(Flag(options, "key-file"), options.key_file);
  if (!key.ok()) return key.status();
  std::string ca;
  if (!options.trusted_ca_file.empty()) {
    auto r = ReadPem(Flag(options, "trusted-ca-file"), options.trusted_ca_file);
    if (!r.ok()) return r.status();
    ca = std::move(r.value());
  }

  std::unique_ptr<X509, X509Free> x509(
      PEM_read_bio_X509(MemoryBio(cert.value()).get(), nullptr, nullptr, nullptr));
  if (!x509) {
    return Status::InvalidArgument(Flag(options, "cert-file") + " " + options.cert_file +
                                   ": not a PEM certificate");
  }
  std::unique_ptr<EVP_PKEY, KeyFree> pkey(
      PEM_read_bio_PrivateKey(MemoryBio(key.value()).get(), nullptr, nullptr, nullptr));
  if (!pkey) {
    return Status::InvalidArgument(Flag(options, "key-file") + " " + options.key_file +
                                   ": not a PEM private key (or it is encrypted)");
  }
  if (X509_check_private_key(x509.get(), pkey.get()) != 1) {
    ERR_clear_error();
    return Status::InvalidArgument(Flag(options, "key-file") + " " + options.key_file +
                                   " is not the key of " + Flag(options, "cert-file") + " " +
                                   options.cert_file);
  }
  if (X509_cmp_current_time(X509_get0_notAfter(x509.get())) <= 0) {
    return Status::InvalidArgument(Flag(options, "cert-file") + " " + options.cert_file +
                                   ": the certificate has expired");
  }
  if (!ca.empty()) {
    std::unique_ptr<X509, X509Free> first(
        PEM_read_bio_X509(MemoryBio(ca).get(), nullptr, nullptr, nullptr));
    if (!first) {
      return Status::InvalidArgument(Flag(options, "trusted-ca-file") + " " +
                                     options.trusted_ca_file + ": no PEM certificate in it");
    }
  }
  ERR_clear_error();
  return CheckedFiles{std::move(cert.value()), std::move(key.value()), std::move(ca)};
}

}  // namespace

Result<std::shared_ptr<grpc::ServerCredentials>> MakeClientTlsCredentials(
    const ClientTlsOptions& options) {
  if (options.cert_file.empty() || options.key_file.empty()) {
    return Status::InvalidArgument(
        "https:// " + std::string(options.flag_prefix.empty() ? "client" : "peer") + " URLs need " +
        Flag(options, "cert-file") + " and " + Flag(options, "key-file"));
  }
  if (options.client_cert_auth && options.trusted_ca_file.empty()) {
    return Status::InvalidArgument(Flag(options, "client-cert-auth") + " needs " +
                                   Flag(options, "trusted-ca-file"));
  }
  auto files = ReadAndCheck(options);
  if (!files.ok()) return files.status();
  const std::string& ca = files->ca;
  grpc::SslServerCredentialsOptions ssl(
      options.client_cert_auth ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
                               : GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  ssl.pem_root_certs = ca;
  ssl.pem_key_cert_pairs.push_back({files->key, files->cert});
  return grpc::SslServerCredentials(ssl);
}

Result<std::shared_ptr<grpc::ChannelCredentials>> MakePeerChannelCredentials(
    const ClientTlsOptions& options) {
  if (options.trusted_ca_file.empty()) {
    return Status::InvalidArgument("https:// peer URLs need " + Flag(options, "trusted-ca-file") +
                                   " (the CA the other members' certificates are checked with)");
  }
  auto files = ReadAndCheck(options);
  if (!files.ok()) return files.status();
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = files->ca;
  ssl.pem_private_key = files->key;
  ssl.pem_cert_chain = files->cert;
  return grpc::SslCredentials(ssl);
}

}  // namespace strata::server
