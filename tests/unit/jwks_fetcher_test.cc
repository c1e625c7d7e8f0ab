#include "adapters/jwks_fetcher.h"

#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "jwt_fixtures.h"

namespace wsrelay::jwt {
namespace {

using ::testing::ElementsAre;
using testing::fixture;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using testing::token;

constexpr int64_t kNow = 1750000000000;

using Fetch = JwksFetch;

// What the fetcher thread reported, awaited with a bounded wait.
class FetchLog {
public:
    JwksEvents events() {
        JwksEvents e;
        e.on_fetch = [this](const JwksFetch& fetch) {
            {
                std::lock_guard<std::mutex> lock(mu_);
                fetches_.push_back(fetch);
            }
            cv_.notify_all();
        };
        return e;
    }
    // The n-th report (1-based), or nullopt after 10 s.
    std::optional<Fetch> waitFor(size_t n) {
        std::unique_lock<std::mutex> lock(mu_);
        if (!cv_.wait_for(lock, std::chrono::seconds(10), [&] { return fetches_.size() >= n; })) {
            return std::nullopt;
        }
        return fetches_[n - 1];
    }
    size_t count() {
        std::lock_guard<std::mutex> lock(mu_);
        return fetches_.size();
    }

private:
    std::mutex mu_;
    std::condition_variable cv_;
    std::vector<Fetch> fetches_;
};

class JwksFetcherTest : public ::testing::Test {
protected:
    void SetUp() override {
        path_ = ::testing::TempDir() + "jwks_fetcher_test_" + std::to_string(getpid()) + "_" +
                ::testing::UnitTest::GetInstance()->current_test_info()->name() + ".json";
        options_.url = "file://" + path_;
        options_.refresh_interval_ms = 3600000;
        options_.min_refresh_interval_ms = 0;
    }
    void TearDown() override { std::remove(path_.c_str()); }

    void writeJwks(const std::string& text) {
        // Written aside and renamed, so a refresh never reads half a file.
        const std::string tmp = path_ + ".tmp";
        std::ofstream(tmp, std::ios::trunc) << text;
        ASSERT_EQ(std::rename(tmp.c_str(), path_.c_str()), 0);
    }

    KeySet secretOnly() {
        KeySet keys;
        std::string error;
        EXPECT_TRUE(keys.addSecret(fixture("secret.txt"), error));
        return keys;
    }

    std::string path_;
    JwksOptions options_;
    KeySource source_;
    FetchLog log_;
};

TEST_F(JwksFetcherTest, StaticKeysOnlyArePublishedWithoutAThread) {
    options_.url.clear();
    JwksFetcher fetcher(options_, secretOnly(), source_, log_.events());
    std::string error;
    ASSERT_TRUE(fetcher.start(error)) << error;
    ASSERT_NE(source_.current(), nullptr);
    EXPECT_EQ(source_.current()->keys().size(), 1u);
    EXPECT_FALSE(fetcher.jwksLoaded());
    fetcher.requestRefresh();
    EXPECT_EQ(log_.count(), 0u);
}

TEST_F(JwksFetcherTest, FileJwksIsLoadedAtStartBesideTheStaticKeys) {
    writeJwks(fixture("jwks.json"));
    JwksFetcher fetcher(options_, secretOnly(), source_, log_.events());
    std::string error;
    ASSERT_TRUE(fetcher.start(error)) << error;
    EXPECT_TRUE(fetcher.jwksLoaded());
    const auto keys = source_.current();
    ASSERT_NE(keys, nullptr);
    EXPECT_EQ(keys->keys().size(), 6u);
    EXPECT_TRUE(keys->hasKid("rsa-1"));
    EXPECT_TRUE(keys->hasKid(""));
    const auto first = log_.waitFor(1);
    ASSERT_TRUE(first);
    EXPECT_TRUE(first->ok);
    EXPECT_EQ(first->keys, 6u);
    EXPECT_EQ(first->skipped.size(), 3u);  // use "enc", P-521, alg RSA-OAEP
}

TEST_F(JwksFetcherTest, AWeakRsaKeyIsReportedAndTheOthersServe) {
    // The weak set plus rsa-2 of the rotated one: another RSA key, so that RS256 tokens get as
    // far as the key look-up.
    const std::string weak = fixture("jwks_weak_rsa.json");
    const std::string rotated = fixture("jwks_rotated.json");
    const size_t open = rotated.find('[') + 1;
    writeJwks(weak.substr(0, weak.rfind(']')) + "," +
              rotated.substr(open, rotated.rfind(']') - open) + "]}");
    JwksFetcher fetcher(options_, KeySet{}, source_, log_.events());
    std::string error;
    ASSERT_TRUE(fetcher.start(error)) << error;
    const auto first = log_.waitFor(1);
    ASSERT_TRUE(first);
    EXPECT_TRUE(first->ok) << first->error;
    EXPECT_EQ(first->keys, 2u);
    EXPECT_THAT(first->skipped,
                ElementsAre("kid \"rsa-1024\": RSA key of 1024 bits (at least 2048 are required)"));

    Verifier verifier(VerifyOptions{}, source_);
    Claims claims;
    EXPECT_EQ(verifier.verify(token("ec_good_es256"), kNow, claims), Failure::None);
    EXPECT_EQ(verifier.verify(token("valid_rs256_rotated"), kNow, claims), Failure::None);
    EXPECT_EQ(verifier.verify(token("rsa1024_rs256"), kNow, claims), Failure::UnknownKey);
    EXPECT_EQ(verifier.verify(token("rsa1024_rs256_nokid"), kNow, claims), Failure::BadSignature);
}

TEST_F(JwksFetcherTest, RotationIsPickedUpOnRequest) {
    writeJwks(fixture("jwks.json"));
    JwksFetcher fetcher(options_, KeySet{}, source_, log_.events());
    std::string error;
    ASSERT_TRUE(fetcher.start(error)) << error;
    ASSERT_TRUE(log_.waitFor(1));
    EXPECT_FALSE(source_.current()->hasKid("rsa-2"));

    writeJwks(fixture("jwks_rotated.json"));
    fetcher.requestRefresh();
    const auto second = log_.waitFor(2);
    ASSERT_TRUE(second) << "no refresh within 10 s";
    EXPECT_TRUE(second->ok) << second->error;
    EXPECT_EQ(second->keys, 1u);
    EXPECT_TRUE(source_.current()->hasKid("rsa-2"));
    EXPECT_FALSE(source_.current()->hasKid("rsa-1"));
}

TEST_F(JwksFetcherTest, AnUnknownKidRefreshesAndTheNextTryPasses) {
    writeJwks(fixture("jwks.json"));
    JwksFetcher fetcher(options_, KeySet{}, source_, log_.events());
    source_.setRefreshHook([&fetcher] { fetcher.requestRefresh(); });
    std::string error;
    ASSERT_TRUE(fetcher.start(error)) << error;
    ASSERT_TRUE(log_.waitFor(1));

    Verifier verifier(VerifyOptions{}, source_);
    Claims claims;
    const std::string rotated = token("valid_rs256_rotated");
    writeJwks(fixture("jwks_rotated.json"));
    EXPECT_EQ(verifier.verify(rotated, kNow, claims), Failure::UnknownKey);
    ASSERT_TRUE(log_.waitFor(2)) << "no refresh within 10 s";
    EXPECT_EQ(verifier.verify(rotated, kNow, claims), Failure::None);
    EXPECT_EQ(claims.subject, "alice");
}

TEST_F(JwksFetcherTest, AFailedRefreshKeepsTheLastGoodSet) {
    writeJwks(fixture("jwks.json"));
    JwksFetcher fetcher(options_, secretOnly(), source_, log_.events());
    std::string error;
    ASSERT_TRUE(fetcher.start(error)) << error;
    ASSERT_TRUE(log_.waitFor(1));
    const uint64_t generation = source_.generation();

    writeJwks("{\"keys\": [");
    fetcher.requestRefresh();
    const auto failed = log_.waitFor(2);
    ASSERT_TRUE(failed);
    EXPECT_FALSE(failed->ok);
    EXPECT_THAT(failed->error, HasSubstr("JSON"));
    EXPECT_EQ(source_.generation(), generation);
    EXPECT_TRUE(source_.current()->hasKid("rsa-1"));
    EXPECT_EQ(source_.current()->keys().size(), 6u);
    EXPECT_TRUE(fetcher.jwksLoaded());

    // A failed fetch is retried after 1 s even without a request.
    writeJwks(fixture("jwks_rotated.json"));
    bool recovered = false;
    for (size_t n = 3; n < 8 && !recovered; ++n) {
        const auto retried = log_.waitFor(n);
        ASSERT_TRUE(retried) << "no retry within 10 s";
        recovered = retried->ok;
    }
    EXPECT_TRUE(recovered);
    EXPECT_TRUE(source_.current()->hasKid("rsa-2"));
}

TEST_F(JwksFetcherTest, AFileThatCannotBeLoadedIsAStartupError) {
    std::string error;
    {
        JwksFetcher fetcher(options_, secretOnly(), source_, log_.events());
        EXPECT_FALSE(fetcher.start(error));
        EXPECT_THAT(error, HasSubstr(path_));
        EXPECT_FALSE(fetcher.jwksLoaded());
    }
    writeJwks("{\"keys\":[]}");
    {
        JwksFetcher fetcher(options_, secretOnly(), source_, log_.events());
        error.clear();
        EXPECT_FALSE(fetcher.start(error));
        EXPECT_THAT(error, Not(IsEmpty()));
    }
    options_.url = "file://relative/jwks.json";
    {
        JwksFetcher fetcher(options_, secretOnly(), source_, log_.events());
        EXPECT_FALSE(fetcher.start(error));
        EXPECT_THAT(error, HasSubstr("absolute"));
    }
}

TEST_F(JwksFetcherTest, OnlyHttpHttpsAndFileUrls) {
    options_.url = "ftp://127.0.0.1/jwks.json";
    JwksFetcher fetcher(options_, secretOnly(), source_, log_.events());
    std::string error;
    EXPECT_FALSE(fetcher.start(error));
    EXPECT_THAT(error, HasSubstr("http://"));
}

// Which protocols a fetch may be redirected to (libcurl's *_PROTOCOLS_STR). Tested here rather
// than end to end: the https side would need a TLS server that the relay's libcurl trusts, which a
// test cannot set up without touching the system's CA store. tests/integration/test_auth_jwks.py
// follows real redirects from an http:// URL.
TEST(JwksFetchProtocolsTest, HttpsStaysOnHttps) {
    EXPECT_STREQ(jwksFetchProtocols("https://idp.example.com/.well-known/jwks.json"), "https");
    EXPECT_STREQ(jwksFetchProtocols("HTTPS://IDP.EXAMPLE.COM/jwks.json"), "https");
    EXPECT_STREQ(jwksFetchProtocols("HttPs://idp/jwks.json"), "https");
}

TEST(JwksFetchProtocolsTest, HttpMayGoToEither) {
    EXPECT_STREQ(jwksFetchProtocols("http://idp.internal/jwks.json"), "http,https");
    EXPECT_STREQ(jwksFetchProtocols("HTTP://idp.internal/jwks.json"), "http,https");
}

TEST(JwksReadFileTest, ReadsWholeFilesAndSaysWhyNot) {
    std::string text, error;
    ASSERT_TRUE(readFile(testing::fixturePath("jwks.json"), text, error)) << error;
    EXPECT_EQ(text.front(), '{');
    EXPECT_EQ(text.back(), '}');
    EXPECT_FALSE(readFile("/nonexistent/wsrelay/jwks.json", text, error));
    EXPECT_THAT(error, HasSubstr("No such file"));
    EXPECT_FALSE(readFile("/", text, error));
    EXPECT_THAT(error, Not(IsEmpty()));
}

}  // namespace
}  // namespace wsrelay::jwt
