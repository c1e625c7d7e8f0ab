#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "adapters/jwt_key_set.h"

// Verifies a client JWT with OpenSSL EVP, the algorithm pinned by the key's type (libjwt 1.10
// accepts algorithm confusion and skips exp: ../shared/research/toolchain.md §6).
namespace wsrelay::jwt {

// Why a token was refused. The names are the `reason` label of wsrelay_auth_failures_total.
enum class Failure : uint8_t {
    None,
    Missing,
    Malformed,   // not three base64url parts, bad JSON, wrong claim types, "crit" present
    Algorithm,   // none, unknown, not allowed, or no key of that type
    UnknownKey,  // a kid no key has
    BadSignature,
    Expired,
    MissingExp,  // no exp claim while VerifyOptions::require_exp
    NotYetValid,
    Issuer,
    Audience,
    Claims,           // the user claim is missing or not a string/integer
    KeysUnavailable,  // no key set loaded yet (JWKS not fetched)
    kCount
};
inline constexpr std::array<const char*, static_cast<size_t>(Failure::kCount)> kFailureNames = {
    "none",          "missing", "malformed",       "algorithm",     "unknown_key",
    "bad_signature", "expired", "missing_exp",     "not_yet_valid", "issuer",
    "audience",      "claims",  "keys_unavailable"};
// Short, fixed, safe to send to the client: "token expired", "unknown key", ...
std::string_view failureText(Failure failure);

struct Claims {
    std::string subject;                 // the user claim; an integer is kept as its digits
    int64_t expires_at_ms = 0;           // exp * 1000; 0 = no exp (only when not required)
    std::vector<std::string> subscribe;  // patterns from the subscribe claim (absent = none)
    std::vector<std::string> publish;    // patterns from the publish claim
    // The info claim's JSON, minified (presence's client-visible info); empty = absent.
    std::string info;
};
// The most bytes a presence member's info may hold (the info claim, the connect answer's "info").
inline constexpr size_t kMaxInfoBytes = 1024;

struct VerifyOptions {
    AlgSet allowed = kAllAlgs;           // auth.jwt.algorithms (empty config = all)
    std::string issuer;                  // empty = not checked
    std::vector<std::string> audiences;  // empty = not checked; else aud must contain one
    int64_t leeway_ms = 0;
    bool require_exp = true;  // false: a token without exp never expires
    std::string user_claim = "sub";
    std::string subscribe_claim = "channels";
    std::string publish_claim = "publish";
    std::string info_claim = "info";  // empty = none
};

// The current key set, shared by every worker and replaced whole by the JWKS refresher.
class KeySource {
public:
    // Any thread. Null until the first set is published.
    std::shared_ptr<const KeySet> current() const { return current_.load(); }
    uint64_t generation() const { return generation_.load(std::memory_order_acquire); }
    void publish(std::shared_ptr<const KeySet> keys);
    // Any thread: a token named a kid no key has. Whoever refreshes installs the hook (it must be
    // cheap and non-blocking: it only wakes the refresher, which rate-limits).
    void requestRefresh() const;
    void setRefreshHook(std::function<void()> hook) { refresh_hook_ = std::move(hook); }

private:
    std::atomic<std::shared_ptr<const KeySet>> current_;
    std::atomic<uint64_t> generation_{0};
    std::function<void()> refresh_hook_;
};

// One per worker: reuses its parse buffers, so not thread-safe. verify() is the whole cost of a
// handshake's authentication; it never blocks (no I/O, no lock but the key-set pointer load).
class Verifier {
public:
    Verifier(VerifyOptions options, const KeySource& keys);
    ~Verifier();
    Verifier(const Verifier&) = delete;
    Verifier& operator=(const Verifier&) = delete;

    // `now_ms`: Unix time in milliseconds. On Failure::None `out` holds the claims.
    Failure verify(std::string_view token, int64_t now_ms, Claims& out);

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace wsrelay::jwt
