#include "adapters/jwt_verifier.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <simdjson.h>

#include <array>
#include <charconv>
#include <cmath>
#include <limits>
#include <optional>

#include "adapters/base64url.h"

namespace wsrelay::jwt {
namespace {

// Far above any real token (a few hundred bytes); checked before any decoding so that an
// oversized header costs nothing.
constexpr size_t kMaxTokenBytes = 8192;

constexpr int64_t kMaxMs = std::numeric_limits<int64_t>::max();
constexpr int64_t kMinMs = std::numeric_limits<int64_t>::min();

int64_t saturatingAdd(int64_t a, int64_t b) {
    int64_t sum = 0;
    if (!__builtin_add_overflow(a, b, &sum)) return sum;
    return b > 0 ? kMaxMs : kMinMs;
}

// NumericDate (RFC 7519 §2) in milliseconds, rounded up so that a fractional exp is never
// treated as earlier than it is. nullopt when the claim is not a number.
std::optional<int64_t> numericDateMs(simdjson::dom::element e) {
    int64_t i = 0;
    if (e.get_int64().get(i) == simdjson::SUCCESS) {
        if (i > kMaxMs / 1000) return kMaxMs;
        if (i < kMinMs / 1000) return kMinMs;
        return i * 1000;
    }
    if (e.is_uint64()) return kMaxMs;  // only reached above INT64_MAX
    double d = 0;
    if (e.get_double().get(d) != simdjson::SUCCESS) return std::nullopt;
    const double ms = std::ceil(d * 1000.0);
    if (!(ms < 9.2e18)) return kMaxMs;
    if (!(ms > -9.2e18)) return kMinMs;
    return static_cast<int64_t>(ms);
}

// Appends the claim's patterns: a string is one pattern, an array must hold strings only.
bool patterns(simdjson::dom::object payload, std::string_view claim,
              std::vector<std::string>& out) {
    simdjson::dom::element e;
    if (payload.at_key(claim).get(e) != simdjson::SUCCESS) return true;
    std::string_view one;
    if (e.get_string().get(one) == simdjson::SUCCESS) {
        out.emplace_back(one);
        return true;
    }
    simdjson::dom::array list;
    if (e.get_array().get(list) != simdjson::SUCCESS) return false;
    for (simdjson::dom::element item : list) {
        if (item.get_string().get(one) != simdjson::SUCCESS) return false;
        out.emplace_back(one);
    }
    return true;
}

bool audienceMatches(simdjson::dom::element aud, const std::vector<std::string>& wanted) {
    auto isWanted = [&](std::string_view v) {
        for (const std::string& w : wanted) {
            if (w == v) return true;
        }
        return false;
    };
    std::string_view one;
    if (aud.get_string().get(one) == simdjson::SUCCESS) return isWanted(one);
    simdjson::dom::array list;
    if (aud.get_array().get(list) != simdjson::SUCCESS) return false;
    for (simdjson::dom::element item : list) {
        if (item.get_string().get(one) == simdjson::SUCCESS && isWanted(one)) return true;
    }
    return false;
}

size_t hashIndex(Alg alg) {
    switch (alg) {
        case Alg::HS256:
        case Alg::RS256:
        case Alg::ES256: return 0;
        case Alg::HS384:
        case Alg::RS384:
        case Alg::ES384: return 1;
        case Alg::HS512:
        case Alg::RS512: return 2;
        default: return 3;  // EdDSA hashes internally
    }
}

}  // namespace

std::string_view failureText(Failure failure) {
    switch (failure) {
        case Failure::None: return "ok";
        case Failure::Missing: return "missing token";
        case Failure::Malformed: return "malformed token";
        case Failure::Algorithm: return "algorithm not allowed";
        case Failure::UnknownKey: return "unknown key";
        case Failure::BadSignature: return "bad signature";
        case Failure::Expired: return "token expired";
        case Failure::MissingExp: return "missing exp claim";
        case Failure::NotYetValid: return "token not yet valid";
        case Failure::Issuer: return "wrong issuer";
        case Failure::Audience: return "wrong audience";
        case Failure::Claims: return "missing user claim";
        case Failure::KeysUnavailable: return "signing keys not loaded";
        case Failure::kCount: break;
    }
    return "unauthorized";
}

void KeySource::publish(std::shared_ptr<const KeySet> keys) {
    current_.store(std::move(keys));
    generation_.fetch_add(1, std::memory_order_acq_rel);
}

void KeySource::requestRefresh() const {
    if (refresh_hook_) refresh_hook_();
}

struct Verifier::Impl {
    VerifyOptions options;
    const KeySource& source;
    uint64_t generation = std::numeric_limits<uint64_t>::max();
    std::shared_ptr<const KeySet> keys;

    simdjson::dom::parser parser;
    std::string header_json, payload_json, signature, der;
    std::string alg_name, kid;
    std::vector<const Key*> candidates;

    // Fetched once: EVP_sha256() and friends would be looked up in the provider on every call.
    std::array<EVP_MD*, 3> digests{};
    EVP_MAC* hmac = nullptr;
    std::array<EVP_MAC_CTX*, 3> mac_ctx{};
    EVP_MD_CTX* md_ctx = nullptr;
    bool ready = false;

    Impl(VerifyOptions o, const KeySource& s) : options(std::move(o)), source(s) {
        static constexpr const char* kDigestNames[] = {"SHA256", "SHA384", "SHA512"};
        hmac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
        md_ctx = EVP_MD_CTX_new();
        bool ok = hmac != nullptr && md_ctx != nullptr;
        for (size_t i = 0; ok && i < digests.size(); ++i) {
            digests[i] = EVP_MD_fetch(nullptr, kDigestNames[i], nullptr);
            mac_ctx[i] = EVP_MAC_CTX_new(hmac);
            const OSSL_PARAM params[] = {
                OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
                                                 const_cast<char*>(kDigestNames[i]), 0),
                OSSL_PARAM_construct_end()};
            ok = digests[i] != nullptr && mac_ctx[i] != nullptr &&
                 EVP_MAC_CTX_set_params(mac_ctx[i], params) == 1;
        }
        ready = ok && parser.allocate(kMaxTokenBytes) == simdjson::SUCCESS;
        ERR_clear_error();
    }

    ~Impl() {
        for (EVP_MAC_CTX* ctx : mac_ctx) EVP_MAC_CTX_free(ctx);
        for (EVP_MD* md : digests) EVP_MD_free(md);
        EVP_MAC_free(hmac);
        EVP_MD_CTX_free(md_ctx);
    }

    Failure verify(std::string_view token, int64_t now_ms, Claims& out);
    Failure parseHeader();
    Failure checkClaims(int64_t now_ms, Claims& out);
    bool checkSignature(const Key& key, Alg alg, std::string_view signed_part);
    bool hmacMatches(const Key& key, size_t digest, std::string_view signed_part);
    bool digestVerify(const Key& key, EVP_MD* md, std::string_view sig,
                      std::string_view signed_part);
};

Failure Verifier::Impl::parseHeader() {
    const size_t n = header_json.size();
    header_json.append(simdjson::SIMDJSON_PADDING, '\0');
    simdjson::dom::object header;
    if (parser.parse(header_json.data(), n, false).get_object().get(header) != simdjson::SUCCESS) {
        return Failure::Malformed;
    }
    // RFC 7515 §4.1.11: we understand no extension, so a token that requires one is refused.
    simdjson::dom::element e;
    if (header.at_key("crit").get(e) == simdjson::SUCCESS) return Failure::Malformed;
    std::string_view text;
    if (header.at_key("alg").get_string().get(text) != simdjson::SUCCESS) {
        return Failure::Malformed;
    }
    alg_name.assign(text);
    kid.clear();
    if (header.at_key("kid").get(e) == simdjson::SUCCESS) {
        if (e.get_string().get(text) != simdjson::SUCCESS) return Failure::Malformed;
        kid.assign(text);
    }
    return Failure::None;
}

bool Verifier::Impl::hmacMatches(const Key& key, size_t digest, std::string_view signed_part) {
    unsigned char mac[EVP_MAX_MD_SIZE];
    size_t len = 0;
    EVP_MAC_CTX* ctx = mac_ctx[digest];
    const bool ok = EVP_MAC_init(ctx, reinterpret_cast<const unsigned char*>(key.secret.data()),
                                 key.secret.size(), nullptr) == 1 &&
                    EVP_MAC_update(ctx, reinterpret_cast<const unsigned char*>(signed_part.data()),
                                   signed_part.size()) == 1 &&
                    EVP_MAC_final(ctx, mac, &len, sizeof(mac)) == 1;
    return ok && len == signature.size() && CRYPTO_memcmp(mac, signature.data(), len) == 0;
}

bool Verifier::Impl::digestVerify(const Key& key, EVP_MD* md, std::string_view sig,
                                  std::string_view signed_part) {
    EVP_MD_CTX_reset(md_ctx);
    const bool ok =
        EVP_DigestVerifyInit(md_ctx, nullptr, md, nullptr, key.pkey.get()) == 1 &&
        EVP_DigestVerify(md_ctx, reinterpret_cast<const unsigned char*>(sig.data()), sig.size(),
                         reinterpret_cast<const unsigned char*>(signed_part.data()),
                         signed_part.size()) == 1;
    ERR_clear_error();
    return ok;
}

bool Verifier::Impl::checkSignature(const Key& key, Alg alg, std::string_view signed_part) {
    const size_t digest = hashIndex(alg);
    if (alg == Alg::HS256 || alg == Alg::HS384 || alg == Alg::HS512) {
        return !key.secret.empty() && hmacMatches(key, digest, signed_part);
    }
    if (!key.pkey) return false;
    if (alg == Alg::EdDSA) {
        return signature.size() == 64 && digestVerify(key, nullptr, signature, signed_part);
    }
    if (alg == Alg::ES256 || alg == Alg::ES384) {
        // JWS carries r||s, each the full field size (RFC 7518 §3.4); OpenSSL wants DER.
        const size_t half = alg == Alg::ES256 ? 32 : 48;
        if (signature.size() != 2 * half) return false;
        const auto* raw = reinterpret_cast<const unsigned char*>(signature.data());
        BIGNUM* r = BN_bin2bn(raw, static_cast<int>(half), nullptr);
        BIGNUM* s = BN_bin2bn(raw + half, static_cast<int>(half), nullptr);
        ECDSA_SIG* sig = ECDSA_SIG_new();
        if (r == nullptr || s == nullptr || sig == nullptr || ECDSA_SIG_set0(sig, r, s) != 1) {
            BN_free(r);
            BN_free(s);
            ECDSA_SIG_free(sig);
            return false;
        }
        der.resize(2 * half + 16);
        auto* p = reinterpret_cast<unsigned char*>(der.data());
        const int len = i2d_ECDSA_SIG(sig, &p);
        ECDSA_SIG_free(sig);
        if (len <= 0) return false;
        return digestVerify(key, digests[digest],
                            std::string_view(der.data(), static_cast<size_t>(len)), signed_part);
    }
    return digestVerify(key, digests[digest], signature, signed_part);
}

Failure Verifier::Impl::checkClaims(int64_t now_ms, Claims& out) {
    const size_t n = payload_json.size();
    payload_json.append(simdjson::SIMDJSON_PADDING, '\0');
    simdjson::dom::object payload;
    if (parser.parse(payload_json.data(), n, false).get_object().get(payload) !=
        simdjson::SUCCESS) {
        return Failure::Malformed;
    }
    simdjson::dom::element e;
    std::optional<int64_t> exp_ms, nbf_ms;
    if (payload.at_key("exp").get(e) == simdjson::SUCCESS) {
        exp_ms = numericDateMs(e);
        if (!exp_ms) return Failure::Malformed;
    }
    if (payload.at_key("nbf").get(e) == simdjson::SUCCESS) {
        nbf_ms = numericDateMs(e);
        if (!nbf_ms) return Failure::Malformed;
    }
    if (!exp_ms && options.require_exp) return Failure::MissingExp;
    if (exp_ms && now_ms >= saturatingAdd(*exp_ms, options.leeway_ms)) return Failure::Expired;
    if (nbf_ms && saturatingAdd(now_ms, options.leeway_ms) < *nbf_ms) return Failure::NotYetValid;

    std::string_view text;
    if (!options.issuer.empty() &&
        (payload.at_key("iss").get_string().get(text) != simdjson::SUCCESS ||
         text != options.issuer)) {
        return Failure::Issuer;
    }
    if (!options.audiences.empty() && (payload.at_key("aud").get(e) != simdjson::SUCCESS ||
                                       !audienceMatches(e, options.audiences))) {
        return Failure::Audience;
    }

    out = Claims{};
    if (payload.at_key(options.user_claim).get(e) != simdjson::SUCCESS) return Failure::Claims;
    int64_t id = 0;
    uint64_t uid = 0;
    char digits[24];
    if (e.get_string().get(text) == simdjson::SUCCESS) {
        if (text.empty()) return Failure::Claims;
        out.subject.assign(text);
    } else if (e.get_int64().get(id) == simdjson::SUCCESS) {
        out.subject.assign(digits, std::to_chars(digits, digits + sizeof(digits), id).ptr);
    } else if (e.get_uint64().get(uid) == simdjson::SUCCESS) {
        out.subject.assign(digits, std::to_chars(digits, digits + sizeof(digits), uid).ptr);
    } else {
        return Failure::Claims;
    }
    if (!patterns(payload, options.subscribe_claim, out.subscribe) ||
        !patterns(payload, options.publish_claim, out.publish)) {
        return Failure::Malformed;
    }
    if (!options.info_claim.empty() &&
        payload.at_key(options.info_claim).get(e) == simdjson::SUCCESS) {
        out.info = simdjson::minify(e);
        // Shown to every member of the presence channels the user joins: bounded.
        if (out.info.size() > kMaxInfoBytes) return Failure::Claims;
    }
    out.expires_at_ms = exp_ms.value_or(0);
    return Failure::None;
}

Failure Verifier::Impl::verify(std::string_view token, int64_t now_ms, Claims& out) {
    if (token.empty()) return Failure::Missing;
    if (token.size() > kMaxTokenBytes || !ready) return Failure::Malformed;
    const uint64_t current = source.generation();
    if (current != generation) {
        keys = source.current();
        generation = current;
    }
    if (!keys) return Failure::KeysUnavailable;

    const size_t dot1 = token.find('.');
    const size_t dot2 = dot1 == std::string_view::npos ? dot1 : token.find('.', dot1 + 1);
    if (dot2 == std::string_view::npos || token.find('.', dot2 + 1) != std::string_view::npos ||
        dot1 == 0 || dot2 == dot1 + 1) {
        return Failure::Malformed;
    }
    if (!base64UrlDecode(token.substr(0, dot1), header_json) ||
        !base64UrlDecode(token.substr(dot1 + 1, dot2 - dot1 - 1), payload_json) ||
        !base64UrlDecode(token.substr(dot2 + 1), signature)) {
        return Failure::Malformed;
    }
    if (const Failure f = parseHeader(); f != Failure::None) return f;

    const std::optional<Alg> alg = algFromName(alg_name);
    if (!alg || (options.allowed & algBit(*alg)) == 0) return Failure::Algorithm;
    const AlgSet bit = algBit(*alg);
    bool any_of_type = false, kid_known = false;
    for (const Key& key : keys->keys()) {
        any_of_type = any_of_type || (key.algs & bit) != 0;
        kid_known = kid_known || (!kid.empty() && key.kid == kid);
    }
    if (!any_of_type) return Failure::Algorithm;

    candidates.clear();
    for (const Key& key : keys->keys()) {
        if ((key.algs & bit) == 0) continue;
        if (kid.empty() || (kid_known ? key.kid == kid : key.kid.empty())) {
            candidates.push_back(&key);
        }
    }
    if (candidates.empty()) {
        if (kid_known) return Failure::Algorithm;
        // A kid we have never seen may be a key rotated in since the last refresh.
        source.requestRefresh();
        return Failure::UnknownKey;
    }

    const std::string_view signed_part = token.substr(0, dot2);
    bool verified = false;
    for (const Key* key : candidates) {
        if (checkSignature(*key, *alg, signed_part)) {
            verified = true;
            break;
        }
    }
    if (!verified) {
        // Keys without a kid were tried for a kid no key has: that kid may still be a rotation.
        if (!kid.empty() && !kid_known) source.requestRefresh();
        return Failure::BadSignature;
    }
    return checkClaims(now_ms, out);
}

Verifier::Verifier(VerifyOptions options, const KeySource& keys)
    : impl_(std::make_unique<Impl>(std::move(options), keys)) {}

Verifier::~Verifier() = default;

Failure Verifier::verify(std::string_view token, int64_t now_ms, Claims& out) {
    return impl_->verify(token, now_ms, out);
}

}  // namespace wsrelay::jwt
