// libFuzzer target for the JWKS document parser (KeySet::addJwks, adapters/jwt_key_set.h): the
// identity provider's JSON is fetched over the network and is untrusted.
// The properties: nothing crashes; a refusal says why and leaves the set as it was; every key
// accepted may verify at least one algorithm, and only those of its type (an HMAC secret only
// HS*, a public key never HS*: no algorithm confusion); an RSA key has at least kMinRsaBits;
// every key skipped is reported in one line.

#include <openssl/evp.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "adapters/jwt_key_set.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using wsrelay::fuzz::check;

using namespace wsrelay::jwt;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view json(reinterpret_cast<const char*>(data), size);
    KeySet keys;
    Key configured;  // a key already in the set: a refused document must leave it alone
    configured.algs = algBit(Alg::HS256);
    configured.secret = "configured secret, at least thirty-two bytes";
    keys.add(configured);

    std::string error;
    std::vector<std::string> skipped;
    if (!keys.addJwks(json, error, &skipped)) {
        check(!error.empty(), "refused without a reason", json);
        check(error.find('\n') == std::string::npos, "reason is not one line", error);
        check(keys.keys().size() == 1 && keys.keys()[0].secret == configured.secret,
              "a refused document changed the set", json);
        return 0;
    }
    check(keys.keys().size() > 1, "accepted a document without a usable key", json);
    for (const std::string& line : skipped) {
        check(!line.empty() && line.find('\n') == std::string::npos, "skipped line", line);
    }
    for (size_t i = 1; i < keys.keys().size(); ++i) {
        const Key& key = keys.keys()[i];
        check(key.algs != 0 && (key.algs & ~kAllAlgs) == 0, "key with no or unknown algorithms",
              json);
        if (key.pkey) {
            check(key.secret.empty(), "public key with a secret", json);
            check((key.algs & kHmacAlgs) == 0, "public key allowed an HS* algorithm", json);
            if (EVP_PKEY_base_id(key.pkey.get()) == EVP_PKEY_RSA) {
                check(EVP_PKEY_bits(key.pkey.get()) >= kMinRsaBits, "weak RSA key accepted", json);
            }
        } else {
            check(!key.secret.empty(), "key with neither a secret nor a public key", json);
            check((key.algs & ~kHmacAlgs) == 0, "secret allowed a public-key algorithm", json);
        }
        check(keys.hasKid(key.kid) || key.kid.empty(), "kid not found", key.kid);
    }
    return 0;
}
