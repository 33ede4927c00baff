#include "server/client_tls.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <fstream>
#include <sstream>

#include <grpcpp/security/server_credentials.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_certificate_verifier.h>
#include <grpcpp/security/tls_credentials_options.h>

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

// What a memory BIO holds.
std::string Drain(BIO* bio) {
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<size_t>(size));
}

struct KeyAndCertificate {
  std::string key, cert;  // PEM
};

// A new P-256 key and a certificate for it, signed by itself, for `host`
// (an IP address or a DNS name; empty: none).
Result<KeyAndCertificate> SelfSigned(const std::string& name, const std::string& host) {
  std::unique_ptr<EVP_PKEY, KeyFree> key(EVP_EC_gen("P-256"));
  std::unique_ptr<X509, X509Free> cert(X509_new());
  bool ok = key && cert && X509_set_version(cert.get(), 2) == 1;
  unsigned char serial[16];
  ok = ok && RAND_bytes(serial, sizeof serial) == 1;
  if (ok) {
    serial[0] &= 0x7f;  // positive
    BIGNUM* bn = BN_bin2bn(serial, sizeof serial, nullptr);
    ok = bn != nullptr && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert.get())) != nullptr;
    BN_free(bn);
  }
  ok = ok && X509_gmtime_adj(X509_getm_notBefore(cert.get()), -60) != nullptr &&
       X509_gmtime_adj(X509_getm_notAfter(cert.get()), 365L * 24 * 3600) != nullptr &&
       X509_set_pubkey(cert.get(), key.get()) == 1;
  if (ok) {
    X509_NAME* subject = X509_get_subject_name(cert.get());
    const std::string cn = name.empty() ? "strata" : name;
    ok = X509_NAME_add_entry_by_txt(subject, "O", MBSTRING_UTF8,
                                    reinterpret_cast<const unsigned char*>("strata auto-tls"), -1,
                                    -1, 0) == 1 &&
         X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_UTF8,
                                    reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1,
                                    0) == 1 &&
         X509_set_issuer_name(cert.get(), subject) == 1;
  }
  if (ok && !host.empty()) {
    const bool ip = host.find_first_not_of("0123456789.:abcdefABCDEF") == std::string::npos &&
                    host.find_first_of(".:") != std::string::npos;
    const std::string value = (ip ? "IP:" : "DNS:") + host;
    X509_EXTENSION* san =
        X509V3_EXT_conf_nid(nullptr, nullptr, NID_subject_alt_name, value.c_str());
    ok = san != nullptr && X509_add_ext(cert.get(), san, -1) == 1;
    X509_EXTENSION_free(san);
  }
  ok = ok && X509_sign(cert.get(), key.get(), EVP_sha256()) > 0;
  Bio key_pem(BIO_new(BIO_s_mem())), cert_pem(BIO_new(BIO_s_mem()));
  ok = ok && key_pem && cert_pem &&
       PEM_write_bio_PrivateKey(key_pem.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) ==
           1 &&
       PEM_write_bio_X509(cert_pem.get(), cert.get()) == 1;
  if (!ok) {
    const unsigned long err = ERR_get_error();
    char text[256] = "unknown error";
    if (err != 0) ERR_error_string_n(err, text, sizeof text);
    ERR_clear_error();
    return Status::Unavailable(std::string("--peer-auto-tls: making a certificate failed: ") +
                               text);
  }
  return KeyAndCertificate{Drain(key_pem.get()), Drain(cert_pem.get())};
}

}  // namespace

Result<PeerCredentials> MakePeerAutoTlsCredentials(const std::string& name,
                                                   const std::string& host) {
  auto made = SelfSigned(name, host);
  if (!made.ok()) return made.status();
  grpc::SslServerCredentialsOptions ssl(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  ssl.pem_key_cert_pairs.push_back({made->key, made->cert});
  namespace tls = grpc::experimental;
  tls::TlsChannelCredentialsOptions link;
  link.set_verify_server_certs(false);
  link.set_check_call_host(false);
  link.set_certificate_verifier(std::make_shared<tls::NoOpCertificateVerifier>());
  link.set_certificate_provider(std::make_shared<tls::StaticDataCertificateProvider>(
      std::vector<tls::IdentityKeyCertPair>{{made->key, made->cert}}));
  link.watch_identity_key_cert_pairs();
  return PeerCredentials{grpc::SslServerCredentials(ssl), tls::TlsCredentials(link)};
}

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
