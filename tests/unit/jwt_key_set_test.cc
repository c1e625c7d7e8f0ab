#include "adapters/jwt_key_set.h"

#include <string>

#include "adapters/base64url.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "jwt_fixtures.h"

namespace wsrelay::jwt {
namespace {

using ::testing::ElementsAre;
using testing::fixture;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using testing::jwksKeys;
using ::testing::Not;

const Key* keyWithKid(const KeySet& keys, std::string_view kid) {
    for (const Key& key : keys.keys()) {
        if (key.kid == kid) return &key;
    }
    return nullptr;
}

constexpr AlgSet kRsa = algBit(Alg::RS256) | algBit(Alg::RS384) | algBit(Alg::RS512);

TEST(JwtBase64UrlTest, DecodesEveryTailLength) {
    std::string out;
    ASSERT_TRUE(base64UrlDecode("", out));
    EXPECT_EQ(out, "");
    ASSERT_TRUE(base64UrlDecode("YQ", out));
    EXPECT_EQ(out, "a");
    ASSERT_TRUE(base64UrlDecode("YWI", out));
    EXPECT_EQ(out, "ab");
    ASSERT_TRUE(base64UrlDecode("YWJj", out));
    EXPECT_EQ(out, "abc");
    ASSERT_TRUE(base64UrlDecode("-_8", out));
    EXPECT_EQ(out, "\xfb\xff");
}

TEST(JwtBase64UrlTest, RoundTripsAllByteValues) {
    std::string bytes;
    for (int i = 0; i < 256; ++i) bytes += static_cast<char>(i);
    for (size_t len = 0; len <= bytes.size(); len += 37) {
        const std::string in = bytes.substr(0, len);
        std::string out;
        const std::string encoded = base64UrlEncode(in);
        EXPECT_EQ(encoded.find_first_of("+/="), std::string::npos);
        ASSERT_TRUE(base64UrlDecode(encoded, out)) << encoded;
        EXPECT_EQ(out, in);
    }
}

TEST(JwtBase64UrlTest, RefusesWhatIsNotCanonicalBase64Url) {
    std::string out;
    for (const char* bad : {"Y", "YWJjZ", "YW+j", "YW/j", "YW j", "YWJj\n",
                            "YQ=", "YQ==", "YWI=", "====", "YR", "YWJ", "Y\x80"}) {
        EXPECT_FALSE(base64UrlDecode(bad, out)) << bad;
    }
    EXPECT_FALSE(base64UrlDecode(std::string_view("YW\0j", 4), out));
}

TEST(JwtBase64UrlTest, PaddingOnlyWhenAllowedAndOnlyExact) {
    std::string out;
    ASSERT_TRUE(base64UrlDecode("YQ==", out, true));
    EXPECT_EQ(out, "a");
    ASSERT_TRUE(base64UrlDecode("YWI=", out, true));
    EXPECT_EQ(out, "ab");
    ASSERT_TRUE(base64UrlDecode("YQ", out, true));
    EXPECT_EQ(out, "a");
    for (const char* bad : {"YQ=", "YQ===", "Y===", "====", "YWJj====", "Y=Q=", "=YWI"}) {
        EXPECT_FALSE(base64UrlDecode(bad, out, true)) << bad;
    }
}

TEST(JwtAlgTest, NamesRoundTripAndNoneIsNotAnAlgorithm) {
    for (unsigned i = 0; i < static_cast<unsigned>(Alg::kCount); ++i) {
        const auto alg = static_cast<Alg>(i);
        EXPECT_EQ(algFromName(algName(alg)), alg);
    }
    for (const char* name : {"none", "None", "NONE", "", "hs256", "PS256", "ES512", "EdDSA "}) {
        EXPECT_EQ(algFromName(name), std::nullopt) << name;
    }
}

TEST(JwtKeySetTest, SecretVerifiesHmacOnly) {
    KeySet keys;
    std::string error;
    EXPECT_FALSE(keys.addSecret("", error));
    EXPECT_THAT(error, Not(IsEmpty()));
    ASSERT_TRUE(keys.addSecret("s3cret", error));
    ASSERT_EQ(keys.keys().size(), 1u);
    EXPECT_EQ(keys.keys()[0].algs, kHmacAlgs);
    EXPECT_EQ(keys.keys()[0].secret, "s3cret");
    EXPECT_EQ(keys.keys()[0].pkey, nullptr);
    EXPECT_TRUE(keys.keys()[0].kid.empty());
}

TEST(JwtKeySetTest, EachPemKeyTypeGetsTheAlgorithmsOfItsType) {
    const struct {
        const char* file;
        AlgSet algs;
    } cases[] = {{"rsa_public.pem", kRsa},
                 {"rsa_cert.pem", kRsa},
                 {"ec256_public.pem", algBit(Alg::ES256)},
                 {"ec384_public.pem", algBit(Alg::ES384)},
                 {"ed25519_public.pem", algBit(Alg::EdDSA)}};
    for (const auto& c : cases) {
        KeySet keys;
        std::string error;
        ASSERT_TRUE(keys.addPem(fixture(c.file), error)) << c.file << ": " << error;
        ASSERT_EQ(keys.keys().size(), 1u) << c.file;
        EXPECT_EQ(keys.keys()[0].algs, c.algs) << c.file;
        EXPECT_NE(keys.keys()[0].pkey, nullptr);
        EXPECT_TRUE(keys.keys()[0].kid.empty());
        EXPECT_TRUE(keys.keys()[0].secret.empty());
    }
}

TEST(JwtKeySetTest, PemWithSeveralBlocksAddsEveryKey) {
    KeySet keys;
    std::string error;
    ASSERT_TRUE(keys.addPem(fixture("all_public.pem"), error)) << error;
    ASSERT_EQ(keys.keys().size(), 4u);
    EXPECT_EQ(keys.keys()[0].algs, kRsa);
    EXPECT_EQ(keys.keys()[1].algs, algBit(Alg::ES256));
    EXPECT_EQ(keys.keys()[2].algs, algBit(Alg::ES384));
    EXPECT_EQ(keys.keys()[3].algs, algBit(Alg::EdDSA));
}

TEST(JwtKeySetTest, PemWithoutAUsableKeyIsAnError) {
    std::string error;
    KeySet keys;
    EXPECT_FALSE(keys.addPem("", error));
    EXPECT_THAT(error, Not(IsEmpty()));
    EXPECT_FALSE(keys.addPem("not a pem file\n", error));
    EXPECT_FALSE(keys.addPem(fixture("ec521_public.pem"), error));
    EXPECT_THAT(error, HasSubstr("curve"));
    EXPECT_FALSE(
        keys.addPem("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", error));
    EXPECT_FALSE(
        keys.addPem("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", error));
    EXPECT_THAT(error, HasSubstr("PRIVATE KEY"));
    std::string truncated = fixture("rsa_public.pem");
    truncated.resize(truncated.size() / 2);
    EXPECT_FALSE(keys.addPem(truncated, error));
    EXPECT_TRUE(keys.empty());
}

TEST(JwtKeySetTest, JwksKeepsSigningKeysAndSkipsTheRest) {
    KeySet keys;
    std::string error;
    std::vector<std::string> skipped = {"left over"};
    ASSERT_TRUE(keys.addJwks(fixture("jwks.json"), error, &skipped)) << error;
    EXPECT_THAT(skipped, ElementsAre("kid \"rsa-enc\": \"use\" is not \"sig\"",
                                     "kid \"ec-521\": unsupported EC curve P-521",
                                     "kid \"rsa-oaep\": \"alg\" RSA-OAEP does not fit the key"));
    ASSERT_EQ(keys.keys().size(), 5u);
    const struct {
        const char* kid;
        AlgSet algs;
    } expected[] = {{"rsa-1", kRsa},
                    {"ec-256", algBit(Alg::ES256)},
                    {"ec-384", algBit(Alg::ES384)},
                    {"ed-1", algBit(Alg::EdDSA)},
                    {"hs-1", algBit(Alg::HS256)}};  // its "alg" narrows the HMAC key
    for (const auto& e : expected) {
        const Key* key = keyWithKid(keys, e.kid);
        ASSERT_NE(key, nullptr) << e.kid;
        EXPECT_EQ(key->algs, e.algs) << e.kid;
    }
    EXPECT_EQ(keyWithKid(keys, "hs-1")->secret, fixture("secret.txt"));
    EXPECT_TRUE(keys.hasKid("ed-1"));
    EXPECT_FALSE(keys.hasKid("rsa-enc"));
    EXPECT_FALSE(keys.hasKid("ec-521"));
    EXPECT_FALSE(keys.hasKid("rsa-oaep"));
    EXPECT_FALSE(keys.hasKid(""));
}

TEST(JwtKeySetTest, JwkWithoutKidIsKeptWithAnEmptyKid) {
    KeySet keys;
    std::string error;
    ASSERT_TRUE(keys.addJwks(R"({"keys":[{"kty":"oct","k":"c2VjcmV0"}]})", error)) << error;
    ASSERT_EQ(keys.keys().size(), 1u);
    EXPECT_TRUE(keys.keys()[0].kid.empty());
    EXPECT_EQ(keys.keys()[0].secret, "secret");
    EXPECT_EQ(keys.keys()[0].algs, kHmacAlgs);
    EXPECT_TRUE(keys.hasKid(""));
}

TEST(JwtKeySetTest, JwksWithNothingUsableIsAnError) {
    const char* bad[] = {
        "",
        "not json",
        "[]",
        "{}",
        R"({"keys":{}})",
        R"({"keys":[]})",
        R"({"keys":[1,"x",null]})",
        R"({"keys":[{"kid":"a","k":"c2VjcmV0"}]})",                            // no kty
        R"({"keys":[{"kty":"oct","kid":"a"}]})",                               // no k
        R"({"keys":[{"kty":"oct","kid":"a","k":""}]})",                        // empty k
        R"({"keys":[{"kty":"oct","kid":"a","k":"c2Vj+mV0"}]})",                // not base64url
        R"({"keys":[{"kty":"oct","kid":7,"k":"c2VjcmV0"}]})",                  // kid not a string
        R"({"keys":[{"kty":"oct","kid":"a","k":"c2VjcmV0","use":"enc"}]})",    // not for signing
        R"({"keys":[{"kty":"oct","kid":"a","k":"c2VjcmV0","alg":"RS256"}]})",  // alg of another
                                                                               // type
        R"({"keys":[{"kty":"oct","kid":"a","k":"c2VjcmV0","alg":"none"}]})",
        R"({"keys":[{"kty":"RSA","kid":"a","n":"AQAB"}]})",  // no e
        R"({"keys":[{"kty":"OKP","kid":"a","crv":"Ed448","x":"AAAA"}]})",
        R"({"keys":[{"kty":"OKP","kid":"a","crv":"Ed25519","x":"AAAA"}]})",  // x too short
        R"({"keys":[{"kty":"EC","kid":"a","crv":"P-256","x":"AAAA","y":"AAAA"}]})",
        R"({"keys":[{"kty":"XYZ","kid":"a"}]})",
    };
    for (const char* json : bad) {
        KeySet keys;
        std::string error;
        EXPECT_FALSE(keys.addJwks(json, error)) << json;
        EXPECT_THAT(error, Not(IsEmpty())) << json;
        EXPECT_TRUE(keys.empty()) << json;
    }
}

TEST(JwtKeySetTest, EcPointNotOnTheCurveIsSkipped) {
    KeySet good = jwksKeys();
    const std::string jwks = fixture("jwks.json");
    // The fixture's P-256 key with one bit of y flipped: almost surely off the curve.
    const size_t at = jwks.find("\"y\": \"", jwks.find("\"ec-256\"")) + 6;
    std::string broken = jwks;
    broken[at] = broken[at] == 'A' ? 'B' : 'A';
    KeySet keys;
    std::string error;
    std::vector<std::string> skipped;
    ASSERT_TRUE(keys.addJwks(broken, error, &skipped)) << error;
    ASSERT_EQ(skipped.size(), 4u);
    EXPECT_EQ(skipped[0], "kid \"ec-256\": invalid EC key");
    EXPECT_FALSE(keys.hasKid("ec-256"));
    EXPECT_TRUE(keys.hasKid("ec-384"));
}

TEST(JwtKeySetTest, RsaPemUnder2048BitsIsAnErrorNamingItsBlock) {
    for (const char* file : {"rsa1024_public.pem", "rsa1024_cert.pem"}) {
        KeySet keys;
        std::string error;
        EXPECT_FALSE(keys.addPem(fixture(file), error)) << file;
        EXPECT_THAT(error, HasSubstr("PEM block 1 ")) << file;
        EXPECT_THAT(error, HasSubstr("RSA key of 1024 bits (at least 2048 are required)")) << file;
        EXPECT_TRUE(keys.empty()) << file;
    }
    // Beside usable keys it still fails the whole file, and leaves the set as it was.
    KeySet keys;
    std::string error;
    ASSERT_TRUE(keys.addSecret("s3cret", error));
    EXPECT_FALSE(keys.addPem(fixture("all_public.pem") + fixture("rsa1024_cert.pem"), error));
    EXPECT_EQ(error,
              "PEM block 5 (CERTIFICATE): RSA key of 1024 bits (at least 2048 are required)");
    ASSERT_EQ(keys.keys().size(), 1u);
    EXPECT_EQ(keys.keys()[0].secret, "s3cret");
    // 2048 bits is enough.
    EXPECT_TRUE(keys.addPem(fixture("rsa_public.pem"), error)) << error;
}

TEST(JwtKeySetTest, RsaJwkUnder2048BitsIsSkippedAndTheRestLoaded) {
    KeySet keys;
    std::string error;
    std::vector<std::string> skipped;
    ASSERT_TRUE(keys.addJwks(fixture("jwks_weak_rsa.json"), error, &skipped)) << error;
    EXPECT_THAT(skipped, ElementsAre("kid \"rsa-1024\": RSA key of 1024 bits (at least 2048 are "
                                     "required)"));
    ASSERT_EQ(keys.keys().size(), 1u);
    EXPECT_TRUE(keys.hasKid("ec-good"));
    EXPECT_FALSE(keys.hasKid("rsa-1024"));

    // Alone in a set, it leaves nothing usable: an error that says why.
    const std::string jwks = fixture("jwks_weak_rsa.json");
    const std::string only_weak = jwks.substr(0, jwks.find("},") + 1) + "]}";
    KeySet none;
    EXPECT_FALSE(none.addJwks(only_weak, error));
    EXPECT_THAT(error, HasSubstr("kid \"rsa-1024\": RSA key of 1024 bits"));
    EXPECT_TRUE(none.empty());
}

TEST(JwtKeySetTest, WhatASkippedJwkSaysIsShortAndPrintable) {
    const std::string long_kid(500, 'k');
    const std::string json =
        R"({"keys":[{"kty":"oct","kid":"a\nb\u001b[31m","k":"c2VjcmV0","use":"enc"},)"
        R"({"kty":"oct","kid":")" +
        long_kid +
        R"(","use":"x","k":"c2VjcmV0"},)"
        R"({"kty":"what\u0007ever"},)"
        R"({"kty":"oct","k":"c2VjcmV0"}]})";
    KeySet keys;
    std::string error;
    std::vector<std::string> skipped;
    ASSERT_TRUE(keys.addJwks(json, error, &skipped)) << error;
    ASSERT_EQ(skipped.size(), 3u);
    EXPECT_EQ(skipped[0], "kid \"a?b?[31m\": \"use\" is not \"sig\"");
    EXPECT_EQ(skipped[1], "kid \"" + std::string(64, 'k') + "...\": \"use\" is not \"sig\"");
    EXPECT_EQ(skipped[2], "key 3: unsupported kty what?ever");
}

TEST(JwtKeySetTest, AddAllAppends) {
    KeySet all = testing::staticKeys();
    const size_t before = all.keys().size();
    all.addAll(jwksKeys());
    EXPECT_EQ(all.keys().size(), before + 5);
    EXPECT_TRUE(all.hasKid("rsa-1"));
    EXPECT_TRUE(all.hasKid(""));
}

}  // namespace
}  // namespace wsrelay::jwt
