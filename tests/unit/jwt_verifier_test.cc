#include "adapters/jwt_verifier.h"

#include <chrono>
#include <cstdio>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "jwt_fixtures.h"

namespace wsrelay::jwt {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using testing::jwksKeys;
using testing::shared;
using testing::staticKeys;
using testing::token;

// 2025-06-15: after the expired fixtures (2001), before the valid ones (2100).
constexpr int64_t kNow = 1750000000000;
constexpr int64_t kExp2100Ms = 4102444800000;
// The "edge" fixture: exp and nbf in seconds.
constexpr int64_t kEdgeExpMs = 1700000000000;
constexpr int64_t kEdgeNbfMs = 1699990000000;

const char* const kValid[] = {"valid_hs256", "valid_hs384", "valid_hs512",       "valid_rs256",
                              "valid_rs384", "valid_rs512", "valid_rs256_nokid", "valid_es256",
                              "valid_es384", "valid_eddsa"};

class JwtVerifierTest : public ::testing::Test {
protected:
    void use(KeySet keys) { source_.publish(shared(std::move(keys))); }
    void useStaticAndJwks() {
        KeySet keys = staticKeys();
        keys.addAll(jwksKeys());
        use(std::move(keys));
    }

    Failure verify(const std::string& tok, int64_t now_ms = kNow) {
        Verifier verifier(options_, source_);
        claims_ = Claims{};
        return verifier.verify(tok, now_ms, claims_);
    }
    Failure verifyFixture(const std::string& name, int64_t now_ms = kNow) {
        return verify(token(name), now_ms);
    }

    KeySource source_;
    VerifyOptions options_;
    Claims claims_;
    int refreshes_ = 0;
};

TEST_F(JwtVerifierTest, EveryAlgorithmVerifiesWithTheJwks) {
    KeySet keys = jwksKeys();
    std::string error;
    ASSERT_TRUE(keys.addSecret(testing::fixture("secret.txt"), error));  // HS384/512: no kid
    use(std::move(keys));
    for (const char* name : kValid) {
        if (std::string(name) == "valid_rs256_nokid") continue;
        EXPECT_EQ(verifyFixture(name), Failure::None) << name;
        EXPECT_EQ(claims_.subject, "alice") << name;
        EXPECT_EQ(claims_.expires_at_ms, kExp2100Ms) << name;
        EXPECT_THAT(claims_.subscribe, ElementsAre("chat:*", "news")) << name;
        EXPECT_THAT(claims_.publish, ElementsAre("chat:alice")) << name;
    }
}

TEST_F(JwtVerifierTest, KeysWithoutKidAreTriedForAnyKid) {
    use(staticKeys());
    for (const char* name : kValid) EXPECT_EQ(verifyFixture(name), Failure::None) << name;
    EXPECT_EQ(verifyFixture("unknown_kid"), Failure::None);
}

TEST_F(JwtVerifierTest, CertificateKeyVerifies) {
    KeySet keys;
    std::string error;
    ASSERT_TRUE(keys.addPem(testing::fixture("rsa_cert.pem"), error)) << error;
    use(std::move(keys));
    EXPECT_EQ(verifyFixture("valid_rs256"), Failure::None);
    EXPECT_EQ(verifyFixture("valid_rs512"), Failure::None);
}

TEST_F(JwtVerifierTest, NoKeySetYetIsKeysUnavailable) {
    EXPECT_EQ(verifyFixture("valid_hs256"), Failure::KeysUnavailable);
    EXPECT_EQ(verify(""), Failure::Missing);
}

TEST_F(JwtVerifierTest, TimeClaims) {
    useStaticAndJwks();
    EXPECT_EQ(verifyFixture("expired"), Failure::Expired);
    EXPECT_EQ(verifyFixture("nbf_future"), Failure::NotYetValid);
    EXPECT_EQ(verifyFixture("float_exp"), Failure::None);
    EXPECT_EQ(claims_.expires_at_ms, kExp2100Ms + 500);
    EXPECT_EQ(verifyFixture("exp_string"), Failure::Malformed);
}

TEST_F(JwtVerifierTest, ATokenWithoutExpIsRefusedUnlessAllowed) {
    useStaticAndJwks();
    EXPECT_TRUE(VerifyOptions{}.require_exp);
    EXPECT_EQ(verifyFixture("no_exp"), Failure::MissingExp);
    EXPECT_EQ(claims_.subject, "");
    // Checked where exp is: after the signature, before iss and aud.
    options_.issuer = "https://other.test";
    options_.audiences = {"other"};
    EXPECT_EQ(verifyFixture("no_exp"), Failure::MissingExp);
    const std::string no_exp = token("no_exp");
    EXPECT_EQ(verify(no_exp.substr(0, no_exp.size() - 3)), Failure::BadSignature);

    options_ = VerifyOptions{};
    options_.require_exp = false;
    EXPECT_EQ(verifyFixture("no_exp"), Failure::None);
    EXPECT_EQ(claims_.subject, "alice");
    EXPECT_EQ(claims_.expires_at_ms, 0);
    // The switch only concerns an absent exp: a present one is checked the same.
    EXPECT_EQ(verifyFixture("expired"), Failure::Expired);
    EXPECT_EQ(verifyFixture("exp_string"), Failure::Malformed);
    EXPECT_EQ(verifyFixture("valid_rs256"), Failure::None);
    EXPECT_EQ(claims_.expires_at_ms, kExp2100Ms);
}

TEST_F(JwtVerifierTest, ExpiryEdgesAreExact) {
    use(staticKeys());
    const std::string edge = token("edge");
    EXPECT_EQ(verify(edge, kEdgeExpMs - 1), Failure::None);
    EXPECT_EQ(claims_.expires_at_ms, kEdgeExpMs);
    EXPECT_EQ(verify(edge, kEdgeExpMs), Failure::Expired);
    options_.leeway_ms = 500;
    EXPECT_EQ(verify(edge, kEdgeExpMs + 499), Failure::None);
    EXPECT_EQ(claims_.expires_at_ms, kEdgeExpMs);  // the leeway is the caller's to add
    EXPECT_EQ(verify(edge, kEdgeExpMs + 500), Failure::Expired);
}

TEST_F(JwtVerifierTest, NotBeforeEdgesAreExact) {
    use(staticKeys());
    const std::string edge = token("edge");
    EXPECT_EQ(verify(edge, kEdgeNbfMs - 1), Failure::NotYetValid);
    EXPECT_EQ(verify(edge, kEdgeNbfMs), Failure::None);
    options_.leeway_ms = 1000;
    EXPECT_EQ(verify(edge, kEdgeNbfMs - 1000), Failure::None);
    EXPECT_EQ(verify(edge, kEdgeNbfMs - 1001), Failure::NotYetValid);
}

TEST_F(JwtVerifierTest, FractionalExpCountsInMilliseconds) {
    use(staticKeys());
    const std::string edge = token("edge_float");  // exp 1700000000.25
    EXPECT_EQ(verify(edge, kEdgeExpMs + 249), Failure::None);
    EXPECT_EQ(claims_.expires_at_ms, kEdgeExpMs + 250);
    EXPECT_EQ(verify(edge, kEdgeExpMs + 250), Failure::Expired);
}

TEST_F(JwtVerifierTest, IssuerAndAudienceAreCheckedOnlyWhenConfigured) {
    useStaticAndJwks();
    EXPECT_EQ(verifyFixture("wrong_iss"), Failure::None);
    EXPECT_EQ(verifyFixture("wrong_aud"), Failure::None);
    EXPECT_EQ(verifyFixture("no_aud"), Failure::None);

    options_.issuer = "https://issuer.test";
    EXPECT_EQ(verifyFixture("valid_rs256"), Failure::None);
    EXPECT_EQ(verifyFixture("wrong_iss"), Failure::Issuer);

    options_.audiences = {"first", "wsrelay"};
    EXPECT_EQ(verifyFixture("valid_rs256"), Failure::None);
    EXPECT_EQ(verifyFixture("aud_array"), Failure::None);
    EXPECT_EQ(verifyFixture("wrong_aud"), Failure::Audience);
    EXPECT_EQ(verifyFixture("no_aud"), Failure::Audience);
    options_.audiences = {"other"};  // the second entry of aud_array's ["other","wsrelay"]
    EXPECT_EQ(verifyFixture("aud_array"), Failure::None);
    EXPECT_EQ(verifyFixture("valid_rs256"), Failure::Audience);
}

TEST_F(JwtVerifierTest, SignatureIsCheckedBeforeTheClaims) {
    useStaticAndJwks();
    options_.issuer = "https://issuer.test";
    const std::string expired = token("expired");
    const std::string valid = token("valid_rs256");
    // The expired token's header and payload with another token's signature.
    const std::string forged =
        expired.substr(0, expired.rfind('.')) + valid.substr(valid.rfind('.'));
    EXPECT_EQ(verify(forged), Failure::BadSignature);
}

TEST_F(JwtVerifierTest, TimeIsCheckedBeforeIssuerAndAudience) {
    useStaticAndJwks();
    options_.issuer = "https://other.test";
    options_.audiences = {"other"};
    EXPECT_EQ(verifyFixture("expired"), Failure::Expired);
    EXPECT_EQ(verifyFixture("nbf_future"), Failure::NotYetValid);
    EXPECT_EQ(verifyFixture("wrong_aud"), Failure::Issuer);
    options_.issuer.clear();
    EXPECT_EQ(verifyFixture("wrong_aud"), Failure::Audience);
}

TEST_F(JwtVerifierTest, BadSignatures) {
    useStaticAndJwks();
    EXPECT_EQ(verifyFixture("bad_signature"), Failure::BadSignature);
    EXPECT_EQ(verifyFixture("swapped_payload"), Failure::BadSignature);
    const std::string valid = token("valid_es256");
    const std::string unsigned_part = valid.substr(0, valid.rfind('.') + 1);
    EXPECT_EQ(verify(unsigned_part), Failure::BadSignature);
    EXPECT_EQ(verify(unsigned_part + "AAAA"), Failure::BadSignature);
    const std::string hs = token("valid_hs256");
    EXPECT_EQ(verify(hs.substr(0, hs.size() - 3)), Failure::BadSignature);  // truncated MAC
}

TEST_F(JwtVerifierTest, AlgNoneAndUnknownAlgorithmsAreRefused) {
    useStaticAndJwks();
    EXPECT_EQ(verifyFixture("alg_none"), Failure::Algorithm);
    EXPECT_EQ(verifyFixture("alg_none_upper"), Failure::Algorithm);
    EXPECT_EQ(verifyFixture("unknown_alg"), Failure::Algorithm);
}

TEST_F(JwtVerifierTest, HmacMadeWithThePublicKeyPemIsRefused) {
    KeySet rsa_only;
    std::string error;
    ASSERT_TRUE(rsa_only.addPem(testing::fixture("rsa_public.pem"), error));
    use(std::move(rsa_only));
    EXPECT_EQ(verifyFixture("hs256_rsa_pem"), Failure::Algorithm);
    EXPECT_EQ(verifyFixture("valid_rs256"), Failure::None);

    use(staticKeys());  // with a secret, the MAC is simply wrong
    EXPECT_EQ(verifyFixture("hs256_rsa_pem"), Failure::BadSignature);

    use(jwksKeys());  // the kid names the RSA key, which never verifies HS256
    EXPECT_EQ(verifyFixture("hs256_rsa_pem_kid"), Failure::Algorithm);
}

TEST_F(JwtVerifierTest, TheCurveDecidesTheEcAlgorithm) {
    KeySet p384;
    std::string error;
    ASSERT_TRUE(p384.addPem(testing::fixture("ec384_public.pem"), error));
    use(std::move(p384));
    EXPECT_EQ(verifyFixture("es256_signed_by_p384"), Failure::Algorithm);
    EXPECT_EQ(verifyFixture("valid_es384"), Failure::None);
    use(staticKeys());
    EXPECT_EQ(verifyFixture("es256_signed_by_p384"), Failure::BadSignature);
}

TEST_F(JwtVerifierTest, AllowedAlgorithmsNarrowWhatKeysCanDo) {
    useStaticAndJwks();
    options_.allowed = algBit(Alg::RS256) | algBit(Alg::ES256);
    EXPECT_EQ(verifyFixture("valid_rs256"), Failure::None);
    EXPECT_EQ(verifyFixture("valid_es256"), Failure::None);
    for (const char* name :
         {"valid_rs384", "valid_rs512", "valid_hs256", "valid_es384", "valid_eddsa"}) {
        EXPECT_EQ(verifyFixture(name), Failure::Algorithm) << name;
    }
    options_.allowed = 0;
    EXPECT_EQ(verifyFixture("valid_rs256"), Failure::Algorithm);
}

TEST_F(JwtVerifierTest, NoKeyOfTheTokensTypeIsAlgorithm) {
    use(jwksKeys());  // its only HMAC key is narrowed to HS256
    EXPECT_EQ(verifyFixture("valid_hs384"), Failure::Algorithm);
    EXPECT_EQ(verifyFixture("valid_hs256"), Failure::None);
}

TEST_F(JwtVerifierTest, UnknownKidAsksForARefresh) {
    source_.setRefreshHook([this] { ++refreshes_; });
    use(jwksKeys());
    EXPECT_EQ(verifyFixture("unknown_kid"), Failure::UnknownKey);
    EXPECT_EQ(refreshes_, 1);
    EXPECT_EQ(verifyFixture("valid_rs256_rotated"), Failure::UnknownKey);
    EXPECT_EQ(refreshes_, 2);
    EXPECT_EQ(verifyFixture("valid_rs256"), Failure::None);
    EXPECT_EQ(verifyFixture("valid_rs256_nokid"), Failure::None);
    EXPECT_EQ(refreshes_, 2);
}

TEST_F(JwtVerifierTest, AnUnknownKidThatNoKeyWithoutKidVerifiesAsksForARefresh) {
    source_.setRefreshHook([this] { ++refreshes_; });
    useStaticAndJwks();  // the PEM RSA key has no kid, so it is tried for any unknown kid
    EXPECT_EQ(verifyFixture("valid_rs256_rotated"), Failure::BadSignature);  // signed by rsa-2
    EXPECT_EQ(refreshes_, 1);
    // The PEM key verifies it: nothing to fetch.
    EXPECT_EQ(verifyFixture("unknown_kid"), Failure::None);
    EXPECT_EQ(refreshes_, 1);
    // A known kid with a bad signature is not a rotation either.
    EXPECT_EQ(verifyFixture("bad_signature"), Failure::BadSignature);
    EXPECT_EQ(refreshes_, 1);
}

TEST_F(JwtVerifierTest, AKnownKidIsTheOnlyKeyTried) {
    KeySet keys = jwksKeys();
    KeySet rotated = jwksKeys("jwks_rotated.json");
    keys.addAll(rotated);
    use(std::move(keys));
    EXPECT_EQ(verifyFixture("valid_rs256_rotated"), Failure::None);
    // rsa-1's token relabelled as rsa-2 is tried against rsa-2 only.
    KeySet relabelled;
    std::string error;
    ASSERT_TRUE(relabelled.addPem(testing::fixture("rsa_public.pem"), error));
    relabelled.addAll(jwksKeys("jwks_rotated.json"));
    use(std::move(relabelled));
    EXPECT_EQ(verifyFixture("valid_rs256_nokid"), Failure::None);  // tries both
    EXPECT_EQ(verifyFixture("valid_rs256"), Failure::None);        // rsa-1 unknown: empty kid
}

TEST_F(JwtVerifierTest, ReloadsTheKeySetWhenTheGenerationChanges) {
    use(jwksKeys());
    Verifier verifier(options_, source_);
    Claims claims;
    const std::string rotated = token("valid_rs256_rotated");
    EXPECT_EQ(verifier.verify(rotated, kNow, claims), Failure::UnknownKey);
    use(jwksKeys("jwks_rotated.json"));
    EXPECT_EQ(verifier.verify(rotated, kNow, claims), Failure::None);
    EXPECT_EQ(verifier.verify(token("valid_rs256"), kNow, claims), Failure::UnknownKey);
}

TEST_F(JwtVerifierTest, UserClaim) {
    use(staticKeys());
    EXPECT_EQ(verifyFixture("int_sub"), Failure::None);
    EXPECT_EQ(claims_.subject, "12345");
    EXPECT_EQ(verifyFixture("no_sub"), Failure::Claims);
    EXPECT_EQ(verifyFixture("empty_sub"), Failure::Claims);
    EXPECT_EQ(verifyFixture("float_sub"), Failure::Claims);
    options_.user_claim = "iss";
    EXPECT_EQ(verifyFixture("valid_hs256"), Failure::None);
    EXPECT_EQ(claims_.subject, "https://issuer.test");
    options_.user_claim = "channels";  // an array is not a user id
    EXPECT_EQ(verifyFixture("valid_hs256"), Failure::Claims);
}

TEST_F(JwtVerifierTest, PermissionClaims) {
    use(staticKeys());
    EXPECT_EQ(verifyFixture("channels_string"), Failure::None);
    EXPECT_THAT(claims_.subscribe, ElementsAre("chat:lobby"));
    EXPECT_THAT(claims_.publish, IsEmpty());
    EXPECT_EQ(verifyFixture("channels_number"), Failure::Malformed);
    options_.subscribe_claim = "publish";
    options_.publish_claim = "absent";
    EXPECT_EQ(verifyFixture("valid_hs256"), Failure::None);
    EXPECT_THAT(claims_.subscribe, ElementsAre("chat:alice"));
    EXPECT_THAT(claims_.publish, IsEmpty());
    options_.publish_claim = "exp";  // a number is not a pattern list
    EXPECT_EQ(verifyFixture("valid_hs256"), Failure::Malformed);
}

TEST_F(JwtVerifierTest, MalformedTokens) {
    useStaticAndJwks();
    for (const char* name :
         {"malformed_crit", "malformed_payload_not_json", "malformed_payload_array",
          "malformed_header_not_json", "malformed_kid_number", "malformed_no_alg",
          "malformed_two_parts", "malformed_four_parts", "malformed_padding", "malformed_bad_char",
          "malformed_std_base64", "malformed_oversized"}) {
        EXPECT_EQ(verifyFixture(name), Failure::Malformed) << name;
    }
    const std::string valid = token("valid_hs256");
    for (const std::string& bad :
         {std::string("."), std::string(".."), std::string("..."), std::string("a.b"),
          std::string("abc"), "." + valid, valid + ".", " " + valid, valid + " ",
          valid.substr(0, valid.find('.')) + ".." + valid.substr(valid.rfind('.') + 1),
          std::string(9000, 'a'), std::string("e30.e30.") + std::string(8200, 'A')}) {
        EXPECT_EQ(verify(bad), Failure::Malformed) << bad.substr(0, 40);
    }
}

TEST_F(JwtVerifierTest, EightKibIsTheLargestTokenLookedAt) {
    use(staticKeys());
    // A valid token with its signature part stretched by zero sextets: still base64url (when the
    // tail length allows), no longer the right signature.
    for (const char* name : kValid) {
        const std::string valid = token(name);
        const size_t signature_chars = 8192 - valid.rfind('.') - 1;
        if (signature_chars % 4 == 1) continue;
        const std::string big = valid + std::string(8192 - valid.size(), 'A');
        EXPECT_EQ(verify(big), Failure::BadSignature) << name;
        EXPECT_EQ(verify(big + "AAAA"), Failure::Malformed) << name;
        return;
    }
    FAIL() << "no fixture fits";
}

TEST(JwtFailureTest, TextsAreTheContractsTable) {
    const std::pair<Failure, const char*> table[] = {
        {Failure::Missing, "missing token"},
        {Failure::Malformed, "malformed token"},
        {Failure::Algorithm, "algorithm not allowed"},
        {Failure::UnknownKey, "unknown key"},
        {Failure::BadSignature, "bad signature"},
        {Failure::Expired, "token expired"},
        {Failure::MissingExp, "missing exp claim"},
        {Failure::NotYetValid, "token not yet valid"},
        {Failure::Issuer, "wrong issuer"},
        {Failure::Audience, "wrong audience"},
        {Failure::Claims, "missing user claim"},
        {Failure::KeysUnavailable, "signing keys not loaded"},
    };
    EXPECT_EQ(std::size(table) + 1, static_cast<size_t>(Failure::kCount));  // + None
    for (const auto& [failure, text] : table) EXPECT_EQ(failureText(failure), text);
}

// Throwaway figures: --gtest_also_run_disabled_tests --gtest_filter='*Benchmark*'
TEST_F(JwtVerifierTest, DISABLED_Benchmark) {
    useStaticAndJwks();
    Verifier verifier(options_, source_);
    for (const char* name :
         {"valid_hs256", "valid_rs256", "valid_es256", "valid_es384", "valid_eddsa"}) {
        const std::string tok = token(name);
        Claims claims;
        int n = 0;
        const auto start = std::chrono::steady_clock::now();
        auto elapsed = std::chrono::steady_clock::duration::zero();
        while (elapsed < std::chrono::seconds(1)) {
            for (int i = 0; i < 100; ++i)
                ASSERT_EQ(verifier.verify(tok, kNow, claims), Failure::None);
            n += 100;
            elapsed = std::chrono::steady_clock::now() - start;
        }
        const double s = std::chrono::duration<double>(elapsed).count();
        std::printf("%-12s %9.0f verifications/s (%.1f us)\n", name, n / s, 1e6 * s / n);
    }
}

}  // namespace
}  // namespace wsrelay::jwt
