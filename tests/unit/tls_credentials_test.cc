// The certificate files of wss:// (relay/tls/credentials.h) and their reload (cert_store.h):
// certificates made here with OpenSSL, written to a temporary directory.
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "metrics/relay_metrics.h"
#include "relay/tls/cert_store.h"
#include "relay/tls/credentials.h"

namespace wsrelay::tls {
namespace {

using ::testing::HasSubstr;

struct Pair {
    std::string cert;
    std::string key;
};

// A self-signed P-256 certificate with `serial`, valid for a day, and its key, as PEM.
Pair makePair(long serial) {
    EVP_PKEY* key = EVP_EC_gen("P-256");
    X509* cert = X509_new();
    ASN1_INTEGER_set(X509_get_serialNumber(cert), serial);
    X509_gmtime_adj(X509_getm_notBefore(cert), 0);
    X509_gmtime_adj(X509_getm_notAfter(cert), 86400);
    X509_set_pubkey(cert, key);
    X509_NAME* name = X509_get_subject_name(cert);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>("localhost"), -1, -1, 0);
    X509_set_issuer_name(cert, name);
    X509_sign(cert, key, EVP_sha256());
    auto pem = [](auto write) {
        BIO* bio = BIO_new(BIO_s_mem());
        write(bio);
        char* data = nullptr;
        const long size = BIO_get_mem_data(bio, &data);
        std::string out(data, static_cast<size_t>(size));
        BIO_free(bio);
        return out;
    };
    Pair pair{pem([&](BIO* b) { PEM_write_bio_X509(b, cert); }), pem([&](BIO* b) {
                  PEM_write_bio_PrivateKey(b, key, nullptr, nullptr, 0, nullptr, nullptr);
              })};
    X509_free(cert);
    EVP_PKEY_free(key);
    return pair;
}

class TlsFilesTest : public ::testing::Test {
protected:
    void SetUp() override {
        char tmpl[] = "/tmp/wsrelay-tls-test-XXXXXX";
        ASSERT_NE(mkdtemp(tmpl), nullptr);
        dir_ = tmpl;
        cert_ = dir_ + "/tls.crt";
        key_ = dir_ + "/tls.key";
    }
    void TearDown() override { std::filesystem::remove_all(dir_); }

    // Written beside and renamed over: one step, as a careful writer does.
    static void write(const std::string& path, const std::string& text) {
        const std::string tmp = path + ".tmp";
        std::ofstream(tmp, std::ios::binary) << text;
        std::filesystem::rename(tmp, path);
    }
    void install(const Pair& pair) {
        write(cert_, pair.cert);
        write(key_, pair.key);
    }
    CertStore::Options options(std::chrono::milliseconds interval) const {
        CertStore::Options o;
        o.cert_file = cert_;
        o.key_file = key_;
        o.context.ciphers = "ECDHE+AESGCM:ECDHE+CHACHA20";
        o.reload_interval = interval;
        return o;
    }
    // Polls until the store has looked at the files once more (an interval has passed).
    static void pollOnce(CertStore& store, const metrics::WorkerMetrics& m) {
        const int64_t before = m.tls_cert_reloads[metrics::FetchResult::Ok].value() +
                               m.tls_cert_reloads[metrics::FetchResult::Error].value();
        for (int i = 0; i < 1000000; ++i) {
            store.poll();
            if (m.tls_cert_reloads[metrics::FetchResult::Ok].value() +
                    m.tls_cert_reloads[metrics::FetchResult::Error].value() !=
                before) {
                return;
            }
        }
        FAIL() << "the store never looked at the changed files";
    }

    std::string dir_;
    std::string cert_;
    std::string key_;
};

TEST_F(TlsFilesTest, LoadsAMatchingPair) {
    install(makePair(4242));
    std::string error;
    auto credentials = loadCredentials(cert_, key_, error);
    ASSERT_NE(credentials, nullptr) << error;
    EXPECT_EQ("1092", credentials->serial);  // 4242 in hex
    EXPECT_GT(credentials->not_after, 0);
    EXPECT_NE(makeServerContext(*credentials, {}, error), nullptr) << error;
}

TEST_F(TlsFilesTest, EachFailureNamesItsKey) {
    const Pair a = makePair(1);
    const Pair b = makePair(2);
    std::string error;

    EXPECT_EQ(loadCredentials(dir_ + "/missing.crt", key_, error), nullptr);
    EXPECT_THAT(error, HasSubstr("tls.cert_file: " + dir_ + "/missing.crt: No such file"));

    write(cert_, a.cert);
    write(key_, b.key);
    EXPECT_EQ(loadCredentials(cert_, key_, error), nullptr);
    EXPECT_THAT(error, HasSubstr("tls.key_file"));
    EXPECT_THAT(error, HasSubstr("does not match the certificate in tls.cert_file"));

    write(cert_, a.cert.substr(0, a.cert.size() / 2));  // a copy caught half-way
    write(key_, a.key);
    EXPECT_EQ(loadCredentials(cert_, key_, error), nullptr);
    EXPECT_THAT(error, HasSubstr("tls.cert_file"));
    EXPECT_THAT(error, HasSubstr("damaged or incomplete"));

    write(cert_, a.key);  // no certificate at all
    EXPECT_EQ(loadCredentials(cert_, key_, error), nullptr);
    EXPECT_THAT(error, HasSubstr("no PEM certificate"));

    write(cert_, a.cert);
    write(key_, a.key.substr(0, a.key.size() - 40));
    EXPECT_EQ(loadCredentials(cert_, key_, error), nullptr);
    EXPECT_THAT(error, HasSubstr("tls.key_file"));

    EXPECT_EQ(loadCredentials(dir_, key_, error), nullptr);
    EXPECT_THAT(error, HasSubstr("not a regular file"));
}

TEST_F(TlsFilesTest, CipherListsAreChecked) {
    EXPECT_EQ("", checkCipherList("ECDHE+AESGCM:ECDHE+CHACHA20"));
    EXPECT_THAT(checkCipherList("NOTHING-AT-ALL"), HasSubstr("no TLS 1.2 cipher"));
}

TEST_F(TlsFilesTest, StoreRefusesBadFilesAtStartAndKeepsTheOldContextOnABadReload) {
    metrics::WorkerMetrics m;
    EXPECT_THROW({ CertStore store(options(std::chrono::milliseconds(1)), m); },
                 std::runtime_error);

    install(makePair(1));
    CertStore store(options(std::chrono::milliseconds(1)), m);
    uint64_t generation = 0;
    const std::shared_ptr<SSL_CTX> first = store.context(generation);
    ASSERT_NE(first, nullptr);
    EXPECT_GT(m.tls_cert_expiry.value(), 0);

    // Nothing changed: nothing loaded, nothing counted.
    for (int i = 0; i < 1000; ++i) store.poll();
    EXPECT_EQ(generation, store.generation());
    EXPECT_EQ(0, m.tls_cert_reloads[metrics::FetchResult::Ok].value());

    // A new certificate with the old key: refused, the old context stays, retried.
    const Pair next = makePair(2);
    write(cert_, next.cert);
    pollOnce(store, m);
    EXPECT_EQ(1, m.tls_cert_reloads[metrics::FetchResult::Error].value());
    EXPECT_EQ(generation, store.generation());
    pollOnce(store, m);
    EXPECT_EQ(2, m.tls_cert_reloads[metrics::FetchResult::Error].value());

    // Its key arrives: loaded, a new context and generation.
    write(key_, next.key);
    pollOnce(store, m);
    EXPECT_EQ(1, m.tls_cert_reloads[metrics::FetchResult::Ok].value());
    uint64_t now = 0;
    const std::shared_ptr<SSL_CTX> second = store.context(now);
    EXPECT_NE(generation, now);
    EXPECT_NE(first.get(), second.get());
}

}  // namespace
}  // namespace wsrelay::tls
