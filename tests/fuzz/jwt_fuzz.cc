// libFuzzer target for JWT decoding and verification (adapters/jwt_verifier.h) with fixed keys:
// the HS256 secret, every PEM public key and the JWKS of tests/unit/fixtures/jwt.
// The properties: nothing crashes; a token accepted signs the same bytes (header.payload) as one
// of the fixtures PyJWT signed with a real key, so nothing the fuzzer made up verifies; and its
// claims are the ones that genuine token gives, unexpired at the verification time.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "adapters/jwks_fetcher.h"
#include "adapters/jwt_verifier.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using wsrelay::fuzz::check;

using namespace wsrelay;
using namespace wsrelay::jwt;

constexpr int64_t kNow = 1750000000000;  // 2025-06-15, as in jwt_verifier_test.cc

std::string fixture(const std::string& name) {
    std::string text, error;
    check(
        readFile(std::string(WSRELAY_SOURCE_DIR) + "/tests/unit/fixtures/jwt/" + name, text, error),
        "cannot read a fixture", error);
    return text;
}

std::string_view signingInput(std::string_view token) {
    const size_t dot = token.rfind('.');
    return dot == std::string_view::npos ? std::string_view() : token.substr(0, dot);
}

// Fixtures whose signature was made up or made with a key of another type: never genuine.
bool forged(std::string_view name) {
    for (std::string_view f : {"bad_signature", "swapped_payload", "alg_none", "alg_none_upper",
                               "hs256_rsa_pem", "hs256_rsa_pem_kid", "es256_signed_by_p384"}) {
        if (name == f) return true;
    }
    return false;
}

struct Fixed {
    KeySource source;
    std::unique_ptr<Verifier> verifier;
    std::map<std::string, Claims, std::less<>> genuine;  // signing input -> its claims
};

bool sameClaims(const Claims& a, const Claims& b) {
    return a.subject == b.subject && a.expires_at_ms == b.expires_at_ms &&
           a.subscribe == b.subscribe && a.publish == b.publish;
}

Fixed& fixed() {
    static Fixed* f = [] {
        auto* f = new Fixed;
        KeySet keys;
        std::string error;
        check(keys.addSecret(fixture("secret.txt"), error), "secret refused", error);
        check(keys.addPem(fixture("all_public.pem"), error), "PEM refused", error);
        check(keys.addJwks(fixture("jwks.json"), error), "JWKS refused", error);
        f->source.publish(std::make_shared<const KeySet>(std::move(keys)));
        f->verifier = std::make_unique<Verifier>(VerifyOptions{}, f->source);
        const std::filesystem::path dir =
            std::filesystem::path(WSRELAY_SOURCE_DIR) / "tests/unit/fixtures/jwt";
        for (const auto& entry : std::filesystem::directory_iterator(dir)) {
            const std::string name = entry.path().stem().string();
            if (entry.path().extension() != ".txt" || name == "secret" || forged(name)) continue;
            const std::string token = fixture(name + ".txt");
            Claims claims;
            if (f->verifier->verify(token, kNow, claims) == Failure::None) {
                f->genuine.emplace(std::string(signingInput(token)), std::move(claims));
            }
        }
        check(f->genuine.size() >= 10, "fewer genuine fixtures accepted than the ten valid_*");
        return f;
    }();
    return *f;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    Fixed& f = fixed();
    const std::string_view token(reinterpret_cast<const char*>(data), size);
    Claims claims;
    const Failure failure = f.verifier->verify(token, kNow, claims);
    check(failure < Failure::kCount, "failure out of range", token);
    check(!failureText(failure).empty(), "failure without a text", token);
    if (failure != Failure::None) return 0;

    const auto it = f.genuine.find(signingInput(token));
    check(it != f.genuine.end(), "accepted a token no real key signed", token);
    check(sameClaims(claims, it->second), "claims differ from the genuine token's", token);
    check(claims.expires_at_ms > kNow, "accepted an expired token", token);
    return 0;
}
