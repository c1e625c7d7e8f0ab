#include "adapters/tls_files.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cerrno>
#include <cstring>
#include <memory>

namespace wsrelay {
namespace {

struct BioCloser {
    void operator()(BIO* b) const { BIO_free(b); }
};
struct X509Closer {
    void operator()(X509* x) const { X509_free(x); }
};
struct KeyCloser {
    void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using BioPtr = std::unique_ptr<BIO, BioCloser>;
using X509Ptr = std::unique_ptr<X509, X509Closer>;
using KeyPtr = std::unique_ptr<EVP_PKEY, KeyCloser>;

BioPtr open(std::string_view path, std::string& error) {
    const std::string name(path);
    errno = 0;
    BioPtr bio(BIO_new_file(name.c_str(), "r"));
    if (!bio) {
        error =
            "cannot read " + name + (errno != 0 ? std::string(": ") + std::strerror(errno) : "");
        ERR_clear_error();
    }
    return bio;
}

// Refuses to prompt for a passphrase (the default callback reads the terminal).
int noPassphrase(char*, int, int, void*) { return -1; }

// PEM_read_bio_X509 ends a file with a "no start line" error; anything else is a bad block.
bool endOfPem() {
    const unsigned long e = ERR_peek_last_error();
    const bool end = ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE;
    ERR_clear_error();
    return end;
}

X509Ptr firstCertificate(std::string_view path, std::string& error) {
    BioPtr bio = open(path, error);
    if (!bio) return nullptr;
    X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, noPassphrase, nullptr));
    ERR_clear_error();
    if (!cert) error = std::string(path) + " holds no PEM certificate";
    return cert;
}

}  // namespace

std::string checkPemCertificates(std::string_view path) {
    if (path.empty()) return "";
    std::string error;
    BioPtr bio = open(path, error);
    if (!bio) return error;
    int count = 0;
    for (;;) {
        X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, noPassphrase, nullptr));
        if (!cert) break;
        ++count;
    }
    if (!endOfPem()) {
        return std::string(path) + ": certificate " + std::to_string(count + 1) +
               " is not a valid PEM certificate";
    }
    if (count == 0) return std::string(path) + " holds no PEM certificate";
    return "";
}

std::string checkPemPrivateKey(std::string_view path) {
    if (path.empty()) return "";
    std::string error;
    BioPtr bio = open(path, error);
    if (!bio) return error;
    KeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, noPassphrase, nullptr));
    ERR_clear_error();
    if (!key) {
        return std::string(path) +
               " holds no PEM private key (or an encrypted one: a key with a passphrase cannot "
               "be used)";
    }
    return "";
}

std::string checkKeyMatchesCertificate(std::string_view cert_path, std::string_view key_path) {
    std::string error;
    X509Ptr cert = firstCertificate(cert_path, error);
    if (!cert) return error;
    BioPtr bio = open(key_path, error);
    if (!bio) return error;
    KeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, noPassphrase, nullptr));
    ERR_clear_error();
    if (!key) return std::string(key_path) + " holds no PEM private key";
    const bool match = X509_check_private_key(cert.get(), key.get()) == 1;
    ERR_clear_error();
    if (!match) {
        return "the key in " + std::string(key_path) + " does not belong to the certificate in " +
               std::string(cert_path);
    }
    return "";
}

}  // namespace wsrelay
