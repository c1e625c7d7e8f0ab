#include "relay/tls/credentials.h"

#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>

namespace wsrelay::tls {
namespace {

// A certificate chain or a key is a few KiB; anything this large is not one (and reading a
// device or a growing file must end).
constexpr off_t kMaxPemBytes = off_t{1} << 20;

struct BioFree {
    void operator()(BIO* b) const { BIO_free(b); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;

std::string opensslError() {
    const unsigned long e = ERR_peek_last_error();
    const char* reason = e == 0 ? "unknown error" : ERR_reason_error_string(e);
    std::string out = reason != nullptr ? reason : "error " + std::to_string(e);
    ERR_clear_error();
    return out;
}

// Only regular files (after symlinks), opened without blocking: a FIFO named by mistake must not
// hang startup or a reload.
bool readPemFile(const std::string& path, const char* key, std::string& out, std::string& error) {
    const int fd = open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        error = std::string(key) + ": " + path + ": " + strerror(errno);
        return false;
    }
    struct stat st {};
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        error = std::string(key) + ": " + path + ": not a regular file";
        return false;
    }
    if (st.st_size > kMaxPemBytes) {
        close(fd);
        error = std::string(key) + ": " + path + ": larger than 1 MiB";
        return false;
    }
    out.clear();
    char buf[8192];
    for (;;) {
        const ssize_t n = read(fd, buf, sizeof buf);
        if (n > 0) {
            out.append(buf, static_cast<size_t>(n));
            if (out.size() > static_cast<size_t>(kMaxPemBytes)) break;
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            error = std::string(key) + ": " + path + ": " + strerror(errno);
            close(fd);
            return false;
        }
        break;
    }
    close(fd);
    if (out.size() > static_cast<size_t>(kMaxPemBytes)) {
        error = std::string(key) + ": " + path + ": larger than 1 MiB";
        return false;
    }
    return true;
}

// PEM_read_bio_* ends a clean file with "no start line"; any other error means a block that is
// cut short or damaged (a file caught half-written).
bool cleanEnd() {
    const unsigned long e = ERR_peek_last_error();
    const bool clean = ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE;
    if (clean) ERR_clear_error();
    return clean;
}

int64_t notAfter(X509* cert) {
    tm t{};
    if (ASN1_TIME_to_tm(X509_get0_notAfter(cert), &t) != 1) return 0;
    return static_cast<int64_t>(timegm(&t));
}

std::string serialOf(X509* cert) {
    BIGNUM* bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr);
    if (bn == nullptr) return "?";
    char* hex = BN_bn2hex(bn);
    std::string out = hex != nullptr ? hex : "?";
    OPENSSL_free(hex);
    BN_free(bn);
    return out;
}

std::string subjectOf(X509* cert) {
    char line[256];
    X509_NAME_oneline(X509_get_subject_name(cert), line, sizeof line);
    return line;
}

}  // namespace

void X509Free::operator()(X509* x) const { X509_free(x); }
void PkeyFree::operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
void SslCtxFree::operator()(SSL_CTX* c) const { SSL_CTX_free(c); }

FileStamp stampOf(const std::string& path) {
    FileStamp s;
    struct stat st {};
    if (stat(path.c_str(), &st) != 0) return s;
    s.exists = true;
    s.dev = st.st_dev;
    s.ino = st.st_ino;
    s.size = st.st_size;
    s.mtime_ns = int64_t{st.st_mtim.tv_sec} * 1000000000 + st.st_mtim.tv_nsec;
    s.ctime_ns = int64_t{st.st_ctim.tv_sec} * 1000000000 + st.st_ctim.tv_nsec;
    return s;
}

std::unique_ptr<Credentials> loadCredentials(const std::string& cert_file,
                                             const std::string& key_file, std::string& error) {
    std::string cert_pem;
    std::string key_pem;
    if (!readPemFile(cert_file, "tls.cert_file", cert_pem, error)) return nullptr;
    if (!readPemFile(key_file, "tls.key_file", key_pem, error)) return nullptr;
    ERR_clear_error();

    auto out = std::make_unique<Credentials>();
    BioPtr certs(BIO_new_mem_buf(cert_pem.data(), static_cast<int>(cert_pem.size())));
    for (;;) {
        X509Ptr cert(PEM_read_bio_X509(certs.get(), nullptr, nullptr, nullptr));
        if (!cert) break;
        if (!out->leaf) {
            out->leaf = std::move(cert);
        } else {
            out->chain.push_back(std::move(cert));
        }
    }
    if (!cleanEnd()) {
        error = "tls.cert_file: " + cert_file + ": damaged or incomplete PEM certificate (" +
                opensslError() + ")";
        return nullptr;
    }
    if (!out->leaf) {
        error = "tls.cert_file: " + cert_file + ": no PEM certificate in the file";
        return nullptr;
    }

    BioPtr key(BIO_new_mem_buf(key_pem.data(), static_cast<int>(key_pem.size())));
    // A null password callback with an empty password: an encrypted key fails instead of asking
    // on the terminal.
    char empty[] = "";
    out->key.reset(PEM_read_bio_PrivateKey(key.get(), nullptr, nullptr, empty));
    if (!out->key) {
        const bool none = cleanEnd();
        error =
            "tls.key_file: " + key_file + ": " +
            (none ? std::string("no PEM private key in the file")
                  : "damaged, incomplete or encrypted PEM private key (" + opensslError() + ")");
        return nullptr;
    }
    if (X509_check_private_key(out->leaf.get(), out->key.get()) != 1) {
        ERR_clear_error();
        error = "tls.key_file: " + key_file + ": the key does not match the certificate in " +
                "tls.cert_file (" + cert_file + ")";
        return nullptr;
    }
    out->not_after = notAfter(out->leaf.get());
    out->serial = serialOf(out->leaf.get());
    out->subject = subjectOf(out->leaf.get());
    return out;
}

SslCtxPtr makeServerContext(const Credentials& credentials, const ContextOptions& options,
                            std::string& error) {
    ERR_clear_error();
    SslCtxPtr ctx(SSL_CTX_new(TLS_server_method()));
    if (!ctx) {
        error = "cannot create a TLS context: " + opensslError();
        return nullptr;
    }
    SSL_CTX* c = ctx.get();
    const int min = options.min_version == MinVersion::Tls1_3 ? TLS1_3_VERSION : TLS1_2_VERSION;
    SSL_CTX_set_min_proto_version(c, min);
    // A client that closes without close_notify is an end of stream, as on TCP: WebSocket and
    // HTTP frame their own messages, so a truncation cannot pass for a whole one.
    SSL_CTX_set_options(c, SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION |
                               SSL_OP_NO_RENEGOTIATION | SSL_OP_IGNORE_UNEXPECTED_EOF);
    // Read buffers are freed while a connection is idle: 19,000 idle sockets would otherwise keep
    // ~34 KiB each. Read-ahead takes a record's header and body in one recv().
    SSL_CTX_set_mode(c, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_read_ahead(c, 1);
    static const unsigned char kSessionContext[] = "wsrelay";
    SSL_CTX_set_session_id_context(c, kSessionContext, sizeof kSessionContext - 1);
    if (!options.ciphers.empty() && SSL_CTX_set_cipher_list(c, options.ciphers.c_str()) != 1) {
        error = "tls.ciphers: " + opensslError();
        return nullptr;
    }
    if (SSL_CTX_use_certificate(c, credentials.leaf.get()) != 1) {
        error = "tls.cert_file: " + opensslError();
        return nullptr;
    }
    for (const X509Ptr& cert : credentials.chain) {
        if (SSL_CTX_add1_chain_cert(c, cert.get()) != 1) {
            error = "tls.cert_file: intermediate certificate: " + opensslError();
            return nullptr;
        }
    }
    if (SSL_CTX_use_PrivateKey(c, credentials.key.get()) != 1 ||
        SSL_CTX_check_private_key(c) != 1) {
        error = "tls.key_file: " + opensslError();
        return nullptr;
    }
    return ctx;
}

std::string checkCipherList(std::string_view ciphers) {
    SslCtxPtr ctx(SSL_CTX_new(TLS_server_method()));
    if (!ctx) return "cannot create a TLS context";
    const std::string list(ciphers);
    if (SSL_CTX_set_cipher_list(ctx.get(), list.c_str()) != 1) {
        ERR_clear_error();
        return "OpenSSL selects no TLS 1.2 cipher from '" + list + "'";
    }
    return "";
}

}  // namespace wsrelay::tls
