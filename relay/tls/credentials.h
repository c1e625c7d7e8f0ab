#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

// The server certificate for wss:// (tls.cert_file, tls.key_file): read from PEM files, checked to
// belong together, and turned into the OpenSSL server context every TLS connection is made from.
// Depends on OpenSSL only: conf/ checks the two files with the same code that loads them, so that
// `--check-config` refuses what startup refuses.
typedef struct ssl_ctx_st SSL_CTX;
typedef struct x509_st X509;
typedef struct evp_pkey_st EVP_PKEY;

namespace wsrelay::tls {

struct X509Free {
    void operator()(X509* x) const;
};
struct PkeyFree {
    void operator()(EVP_PKEY* k) const;
};
struct SslCtxFree {
    void operator()(SSL_CTX* c) const;
};
using X509Ptr = std::unique_ptr<X509, X509Free>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;
using SslCtxPtr = std::unique_ptr<SSL_CTX, SslCtxFree>;

// A certificate chain and the private key of its first certificate. Immutable once loaded.
struct Credentials {
    X509Ptr leaf;
    std::vector<X509Ptr> chain;  // intermediates, in file order
    PkeyPtr key;
    int64_t not_after = 0;  // Unix seconds
    std::string serial;     // hex, for logs
    std::string subject;    // one line, for logs
};

// Whether a file changed: the identity and times of what the path names now, following symlinks
// (a Kubernetes Secret volume swaps a `..data` symlink; the link's own inode never changes).
struct FileStamp {
    bool exists = false;
    dev_t dev = 0;
    ino_t ino = 0;
    off_t size = 0;
    int64_t mtime_ns = 0;
    int64_t ctime_ns = 0;
    bool operator==(const FileStamp&) const = default;
};
FileStamp stampOf(const std::string& path);

// Reads both files and checks them: the certificate file holds at least one certificate (the
// server's first, then intermediates) and nothing else unreadable, the key file one private key,
// and the key is the certificate's. Null with `error` naming the key (tls.cert_file or
// tls.key_file) and the reason; a half-written file fails here, it is never half-loaded.
std::unique_ptr<Credentials> loadCredentials(const std::string& cert_file,
                                             const std::string& key_file, std::string& error);

enum class MinVersion { Tls1_2, Tls1_3 };
struct ContextOptions {
    MinVersion min_version = MinVersion::Tls1_2;
    std::string ciphers;  // OpenSSL cipher list for TLS 1.2; TLS 1.3 suites keep their default
};

// A server context: the credentials, the minimum version, the cipher list, the server's cipher
// preference, no compression, no renegotiation, buffers released while idle. Null with `error`.
// The context is not changed afterwards, so every worker's connections may be made from it.
SslCtxPtr makeServerContext(const Credentials& credentials, const ContextOptions& options,
                            std::string& error);

// "" when OpenSSL accepts `ciphers` as a TLS 1.2 cipher list and it selects at least one cipher.
std::string checkCipherList(std::string_view ciphers);

}  // namespace wsrelay::tls
