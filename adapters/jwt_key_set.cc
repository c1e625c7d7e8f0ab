#include "adapters/jwt_key_set.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <simdjson.h>

#include <array>

#include "adapters/base64url.h"

namespace wsrelay::jwt {
namespace {

constexpr std::array<std::string_view, static_cast<size_t>(Alg::kCount)> kAlgNames = {
    "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "ES256", "ES384", "EdDSA"};

constexpr AlgSet kRsaAlgs = algBit(Alg::RS256) | algBit(Alg::RS384) | algBit(Alg::RS512);

std::shared_ptr<EVP_PKEY> ownKey(EVP_PKEY* pkey) {
    return std::shared_ptr<EVP_PKEY>(pkey, EVP_PKEY_free);
}

// The algorithms a public key's type allows; 0 for types we do not verify with (RSA-PSS, P-521,
// Ed448, DSA, ...). The curve, not the token, decides between ES256 and ES384.
AlgSet algsForKey(EVP_PKEY* pkey, std::string& why) {
    if (EVP_PKEY_is_a(pkey, "RSA")) return kRsaAlgs;
    if (EVP_PKEY_is_a(pkey, "ED25519")) return algBit(Alg::EdDSA);
    if (EVP_PKEY_is_a(pkey, "EC")) {
        char group[64] = {0};
        size_t len = 0;
        if (EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                           &len) != 1) {
            why = "EC key without a named curve";
            return 0;
        }
        const std::string_view name(group, len);
        if (name == "prime256v1" || name == "P-256") return algBit(Alg::ES256);
        if (name == "secp384r1" || name == "P-384") return algBit(Alg::ES384);
        why = "unsupported EC curve " + std::string(name);
        return 0;
    }
    why = std::string("unsupported key type ") +
          (EVP_PKEY_get0_type_name(pkey) ? EVP_PKEY_get0_type_name(pkey) : "?");
    return 0;
}

// Why an RSA key is too small to trust, or "" when it is not an RSA key or is large enough.
std::string weakRsa(EVP_PKEY* pkey) {
    if (!EVP_PKEY_is_a(pkey, "RSA")) return {};
    const int bits = EVP_PKEY_get_bits(pkey);
    if (bits >= kMinRsaBits) return {};
    return "RSA key of " + std::to_string(bits) + " bits (at least " + std::to_string(kMinRsaBits) +
           " are required)";
}

bool publicKeyIsValid(EVP_PKEY* pkey) {
    EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_from_pkey(nullptr, pkey, nullptr);
    if (ctx == nullptr) return false;
    const bool ok = EVP_PKEY_public_check(ctx) == 1;
    EVP_PKEY_CTX_free(ctx);
    return ok;
}

EVP_PKEY* keyFromParams(const char* type, OSSL_PARAM_BLD* bld) {
    OSSL_PARAM* params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr);
    EVP_PKEY* pkey = nullptr;
    if (params != nullptr && ctx != nullptr && EVP_PKEY_fromdata_init(ctx) == 1) {
        if (EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1) pkey = nullptr;
    }
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    return pkey;
}

EVP_PKEY* rsaFromJwk(const std::string& n, const std::string& e) {
    BIGNUM* bn_n = BN_bin2bn(reinterpret_cast<const unsigned char*>(n.data()),
                             static_cast<int>(n.size()), nullptr);
    BIGNUM* bn_e = BN_bin2bn(reinterpret_cast<const unsigned char*>(e.data()),
                             static_cast<int>(e.size()), nullptr);
    OSSL_PARAM_BLD* bld = OSSL_PARAM_BLD_new();
    EVP_PKEY* pkey = nullptr;
    if (bn_n != nullptr && bn_e != nullptr && bld != nullptr &&
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn_n) == 1 &&
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn_e) == 1) {
        pkey = keyFromParams("RSA", bld);
    }
    OSSL_PARAM_BLD_free(bld);
    BN_free(bn_n);
    BN_free(bn_e);
    return pkey;
}

EVP_PKEY* ecFromJwk(const char* group, const std::string& x, const std::string& y) {
    std::string point;
    point.reserve(1 + x.size() + y.size());
    point += '\x04';  // uncompressed
    point += x;
    point += y;
    OSSL_PARAM_BLD* bld = OSSL_PARAM_BLD_new();
    EVP_PKEY* pkey = nullptr;
    if (bld != nullptr &&
        OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, group, 0) == 1 &&
        OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point.data(),
                                         point.size()) == 1) {
        pkey = keyFromParams("EC", bld);
    }
    OSSL_PARAM_BLD_free(bld);
    return pkey;
}

// Text from a JWK Set (a kid, a kty...) as it may appear in a message that gets logged: the set
// comes from the identity provider, so it is cut short and anything but printable ASCII becomes '?'
// (no line breaks or terminal escapes in the log).
std::string printable(std::string_view text, size_t max) {
    std::string out;
    for (char c : text.substr(0, max)) out += c >= 0x20 && c < 0x7f ? c : '?';
    if (text.size() > max) out += "...";
    return out;
}

bool stringMember(simdjson::dom::object obj, std::string_view name, std::string_view& out,
                  bool& present) {
    simdjson::dom::element e;
    present = false;
    if (obj.at_key(name).get(e) != simdjson::SUCCESS) return true;
    present = true;
    return e.get_string().get(out) == simdjson::SUCCESS;
}

bool b64Member(simdjson::dom::object obj, std::string_view name, std::string& out) {
    std::string_view text;
    bool present = false;
    return stringMember(obj, name, text, present) && present &&
           base64UrlDecode(text, out, /*allow_padding=*/true) && !out.empty();
}

// One JWK; false with `why` (never key material) when it is skipped.
bool keyFromJwk(simdjson::dom::object jwk, Key& key, std::string& why) {
    std::string_view kty, kid, use, alg, crv;
    bool has_kty = false, has_kid = false, has_use = false, has_alg = false, has_crv = false;
    if (!stringMember(jwk, "kty", kty, has_kty) || !has_kty) {
        why = "no \"kty\"";
        return false;
    }
    if (!stringMember(jwk, "kid", kid, has_kid)) {
        why = "\"kid\" is not a string";
        return false;
    }
    key.kid = std::string(kid);
    if (!stringMember(jwk, "use", use, has_use) || (has_use && use != "sig")) {
        why = "\"use\" is not \"sig\"";
        return false;
    }
    if (!stringMember(jwk, "alg", alg, has_alg)) {
        why = "\"alg\" is not a string";
        return false;
    }
    if (kty == "oct") {
        if (!b64Member(jwk, "k", key.secret)) {
            why = "oct key without a valid \"k\"";
            return false;
        }
        key.algs = kHmacAlgs;
    } else if (kty == "RSA") {
        std::string n, e;
        if (!b64Member(jwk, "n", n) || !b64Member(jwk, "e", e)) {
            why = "RSA key without valid \"n\" and \"e\"";
            return false;
        }
        key.pkey = ownKey(rsaFromJwk(n, e));
        key.algs = kRsaAlgs;
    } else if (kty == "EC" || kty == "OKP") {
        if (!stringMember(jwk, "crv", crv, has_crv) || !has_crv) {
            why = std::string(kty) + " key without \"crv\"";
            return false;
        }
        std::string x, y;
        if (!b64Member(jwk, "x", x)) {
            why = std::string(kty) + " key without a valid \"x\"";
            return false;
        }
        if (kty == "OKP") {
            if (crv != "Ed25519") {
                why = "unsupported OKP curve " + std::string(crv);
                return false;
            }
            if (x.size() != 32) {
                why = "Ed25519 \"x\" is not 32 bytes";
                return false;
            }
            key.pkey = ownKey(EVP_PKEY_new_raw_public_key(
                EVP_PKEY_ED25519, nullptr, reinterpret_cast<const unsigned char*>(x.data()),
                x.size()));
            key.algs = algBit(Alg::EdDSA);
        } else {
            // RFC 7518 §6.2.1.2: x and y are the full field size, leading zeros kept.
            size_t size = 0;
            const char* group = nullptr;
            if (crv == "P-256") {
                size = 32;
                group = "P-256";
                key.algs = algBit(Alg::ES256);
            } else if (crv == "P-384") {
                size = 48;
                group = "P-384";
                key.algs = algBit(Alg::ES384);
            } else {
                why = "unsupported EC curve " + std::string(crv);
                return false;
            }
            if (!b64Member(jwk, "y", y) || x.size() != size || y.size() != size) {
                why = "EC \"x\"/\"y\" do not fit " + std::string(crv);
                return false;
            }
            key.pkey = ownKey(ecFromJwk(group, x, y));
        }
    } else {
        why = "unsupported kty " + std::string(kty);
        return false;
    }
    if (key.secret.empty() && (key.pkey == nullptr || !publicKeyIsValid(key.pkey.get()))) {
        ERR_clear_error();
        why = std::string("invalid ") + std::string(kty) + " key";
        return false;
    }
    if (key.pkey) {
        why = weakRsa(key.pkey.get());
        if (!why.empty()) return false;
    }
    if (has_alg) {
        const std::optional<Alg> named = algFromName(alg);
        if (!named || (key.algs & algBit(*named)) == 0) {
            why = "\"alg\" " + std::string(alg) + " does not fit the key";
            return false;
        }
        key.algs = algBit(*named);
    }
    return true;
}

struct BioCloser {
    void operator()(BIO* bio) const { BIO_free(bio); }
};

}  // namespace

std::optional<Alg> algFromName(std::string_view name) {
    for (size_t i = 0; i < kAlgNames.size(); ++i) {
        if (kAlgNames[i] == name) return static_cast<Alg>(i);
    }
    return std::nullopt;
}

std::string_view algName(Alg alg) {
    const auto i = static_cast<size_t>(alg);
    return i < kAlgNames.size() ? kAlgNames[i] : std::string_view("?");
}

bool KeySet::hasKid(std::string_view kid) const {
    for (const Key& key : keys_) {
        if (key.kid == kid) return true;
    }
    return false;
}

void KeySet::addAll(const KeySet& other) {
    keys_.insert(keys_.end(), other.keys_.begin(), other.keys_.end());
}

bool KeySet::addSecret(std::string secret, std::string& error) {
    if (secret.empty()) {
        error = "the HMAC secret is empty";
        return false;
    }
    Key key;
    key.algs = kHmacAlgs;
    key.secret = std::move(secret);
    add(std::move(key));
    return true;
}

bool KeySet::addPem(std::string_view pem, std::string& error) {
    if (pem.size() > static_cast<size_t>(INT32_MAX)) {
        error = "PEM input too large";
        return false;
    }
    std::unique_ptr<BIO, BioCloser> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
    if (!bio) {
        error = "out of memory";
        return false;
    }
    const size_t before = keys_.size();
    size_t added = 0, block_number = 0;
    std::string skipped;
    for (;;) {
        char* name = nullptr;
        char* header = nullptr;
        unsigned char* data = nullptr;
        long len = 0;
        ERR_clear_error();
        if (PEM_read_bio(bio.get(), &name, &header, &data, &len) != 1) {
            const unsigned long err = ERR_peek_last_error();
            ERR_clear_error();
            // PEM_R_NO_START_LINE: no further block, the normal end.
            if (ERR_GET_LIB(err) == ERR_LIB_PEM && ERR_GET_REASON(err) == PEM_R_NO_START_LINE)
                break;
            error = "unreadable PEM block";
            keys_.resize(before);
            return false;
        }
        ++block_number;
        const std::string block = name;
        const unsigned char* p = data;
        EVP_PKEY* pkey = nullptr;
        if (block == "PUBLIC KEY") {
            pkey = d2i_PUBKEY(nullptr, &p, len);
        } else if (block == "RSA PUBLIC KEY") {
            pkey = d2i_PublicKey(EVP_PKEY_RSA, nullptr, &p, len);
        } else if (block == "CERTIFICATE") {
            if (X509* cert = d2i_X509(nullptr, &p, len)) {
                pkey = X509_get_pubkey(cert);
                X509_free(cert);
            }
        }
        OPENSSL_free(name);
        OPENSSL_free(header);
        OPENSSL_free(data);
        ERR_clear_error();
        std::string why;
        if (block != "PUBLIC KEY" && block != "RSA PUBLIC KEY" && block != "CERTIFICATE") {
            why = "a " + block + " block is not a public key";
        } else if (pkey == nullptr) {
            why = "a " + block + " block does not parse";
        } else if (std::string weak = weakRsa(pkey); !weak.empty()) {
            EVP_PKEY_free(pkey);
            error = "PEM block " + std::to_string(block_number) + " (" + block + "): " + weak;
            keys_.resize(before);
            return false;
        } else if (const AlgSet algs = algsForKey(pkey, why); algs != 0) {
            Key key;
            key.algs = algs;
            key.pkey = ownKey(pkey);
            add(std::move(key));
            ++added;
            continue;
        }
        EVP_PKEY_free(pkey);
        if (skipped.empty()) skipped = why;
    }
    if (added == 0) {
        error = skipped.empty() ? "no PEM block found" : "no usable public key (" + skipped + ")";
        return false;
    }
    return true;
}

bool KeySet::addJwks(std::string_view json, std::string& error, std::vector<std::string>* skipped) {
    if (skipped != nullptr) skipped->clear();
    simdjson::dom::parser parser;
    simdjson::dom::element root;
    const simdjson::padded_string padded(json);
    if (parser.parse(padded).get(root) != simdjson::SUCCESS) {
        error = "the JWK Set is not valid JSON";
        return false;
    }
    simdjson::dom::array list;
    if (root["keys"].get_array().get(list) != simdjson::SUCCESS) {
        error = "the JWK Set has no \"keys\" array";
        return false;
    }
    size_t added = 0, position = 0;
    std::string first_why;
    for (simdjson::dom::element item : list) {
        ++position;
        simdjson::dom::object jwk;
        Key key;
        std::string why;
        if (item.get_object().get(jwk) != simdjson::SUCCESS) {
            why = "key " + std::to_string(position) + ": not an object";
        } else if (keyFromJwk(jwk, key, why)) {
            add(std::move(key));
            ++added;
            continue;
        } else if (!key.kid.empty()) {
            why = "kid \"" + printable(key.kid, 64) + "\": " + why;
        } else {
            why = "key " + std::to_string(position) + ": " + why;
        }
        why = printable(why, 256);
        if (first_why.empty()) first_why = why;
        if (skipped != nullptr) skipped->push_back(std::move(why));
    }
    if (added == 0) {
        error = "no usable key in the JWK Set";
        if (!first_why.empty()) error += " (" + first_why + ")";
        return false;
    }
    return true;
}

}  // namespace wsrelay::jwt
