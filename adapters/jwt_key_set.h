#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

// Keys that verify client JWTs (docs/auth.md). Built at startup and by the JWKS refresher, never
// on the handshake path; immutable once published, so workers share them without a lock.
typedef struct evp_pkey_st EVP_PKEY;

namespace wsrelay::jwt {

enum class Alg : uint8_t { HS256, HS384, HS512, RS256, RS384, RS512, ES256, ES384, EdDSA, kCount };
using AlgSet = uint32_t;  // bit (1 << Alg)

// RFC 7518 §3.3: "A key of size 2048 bits or larger MUST be used" with RS256/384/512. A smaller
// key is refused rather than warned about: 1024-bit RSA is within reach of a well-funded attacker.
inline constexpr int kMinRsaBits = 2048;

constexpr AlgSet algBit(Alg a) { return AlgSet{1} << static_cast<unsigned>(a); }
inline constexpr AlgSet kHmacAlgs = algBit(Alg::HS256) | algBit(Alg::HS384) | algBit(Alg::HS512);
inline constexpr AlgSet kAllAlgs = (AlgSet{1} << static_cast<unsigned>(Alg::kCount)) - 1;

// "HS256" ... "EdDSA"; nullopt for anything else, "none" included.
std::optional<Alg> algFromName(std::string_view name);
std::string_view algName(Alg alg);

// One verification key. The key's type decides which algorithms it may verify (an RSA key never
// verifies an HS* token: that is what stops algorithm confusion); a JWK "alg" narrows it further.
struct Key {
    std::string kid;  // empty: a configured secret or PEM key, tried for any kid
    AlgSet algs = 0;
    std::string secret;              // HMAC keys only
    std::shared_ptr<EVP_PKEY> pkey;  // public keys only (EVP_PKEY_free as deleter)
};

class KeySet {
public:
    const std::vector<Key>& keys() const { return keys_; }
    bool empty() const { return keys_.empty(); }
    bool hasKid(std::string_view kid) const;
    void add(Key key) { keys_.push_back(std::move(key)); }
    // Appends every key of `other` (static keys + the last good JWKS).
    void addAll(const KeySet& other);

    // Each returns false with `error` set (one line, no key material) when nothing usable came
    // out of the input; the set is then as it was before the call.
    bool addSecret(std::string secret, std::string& error);
    // One or more PEM blocks: PUBLIC KEY (RSA, EC P-256/P-384, Ed25519) or CERTIFICATE. Blocks of
    // other types are skipped, but an RSA key under kMinRsaBits fails the whole input, naming its
    // block: a configured key that cannot be trusted is a configuration error.
    bool addPem(std::string_view pem, std::string& error);
    // A JWK Set ({"keys":[...]}): RSA, EC (P-256, P-384), OKP (Ed25519) and oct keys. Keys with
    // "use" other than "sig", of unsupported types, or RSA under kMinRsaBits are skipped: one line
    // each in `skipped` (its kid, or its position, and why). The set is the identity provider's,
    // and one bad key must not take the others down.
    bool addJwks(std::string_view json, std::string& error,
                 std::vector<std::string>* skipped = nullptr);

private:
    std::vector<Key> keys_;
};

}  // namespace wsrelay::jwt
