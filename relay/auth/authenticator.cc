#include "relay/auth/authenticator.h"

#include <strings.h>

#include <chrono>

#include "metrics/relay_metrics.h"
#include "relay/http/request_head.h"

namespace wsrelay {
namespace {

constexpr size_t kMaxTokenBytes = 8192;

// metrics::AuthFailure is jwt::Failure without its leading None: same names, same order, which
// is what lets authFailureLabel() convert by subtracting one.
constexpr bool sameFailureNames() {
    if (metrics::kAuthFailureNames.size() + 1 != jwt::kFailureNames.size()) return false;
    size_t i = 1;
    for (const char* name : metrics::kAuthFailureNames) {
        if (std::string_view(name) != jwt::kFailureNames[i++]) return false;
    }
    return true;
}
static_assert(sameFailureNames());

jwt::VerifyOptions verifyOptions(const Config& config) {
    const auto& j = config.auth.jwt;
    jwt::VerifyOptions o;
    if (!j.algorithms.empty()) {
        o.allowed = 0;
        for (const std::string& name : j.algorithms) {
            if (auto alg = jwt::algFromName(name)) o.allowed |= jwt::algBit(*alg);
        }
    }
    o.issuer = j.issuer;
    o.audiences = j.audience;
    o.leeway_ms = j.leeway_ms;
    o.require_exp = j.require_exp;
    o.user_claim = j.user_claim;
    o.subscribe_claim = j.subscribe_claim;
    o.publish_claim = j.publish_claim;
    o.info_claim = j.info_claim;
    return o;
}

}  // namespace

metrics::AuthFailure authFailureLabel(jwt::Failure failure) {
    return static_cast<metrics::AuthFailure>(static_cast<uint8_t>(failure) - 1);
}

int64_t wallClockMs() {
    using namespace std::chrono;
    return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

Authenticator::Authenticator(const Config& config, const jwt::KeySource& keys)
    : config_(config), verifier_(verifyOptions(config), keys) {}

std::string Authenticator::findToken(const RequestHead& request,
                                     std::string_view subprotocol_token) const {
    constexpr std::string_view kBearer = "bearer ";
    const std::string_view authorization = request.header("authorization");
    if (authorization.size() > kBearer.size() &&
        strncasecmp(authorization.data(), kBearer.data(), kBearer.size()) == 0) {
        return std::string(trimSpaces(authorization.substr(kBearer.size())));
    }
    if (!subprotocol_token.empty()) return std::string(subprotocol_token);
    if (config_.auth.jwt.allow_query_token) {
        const std::string_view raw = request.query("token");
        std::string token;
        if (raw.size() <= kMaxTokenBytes * 3 && urlDecode(raw, token)) return token;
    }
    return {};
}

jwt::Failure Authenticator::verify(std::string_view token, Identity& out) {
    if (token.empty()) return jwt::Failure::Missing;
    jwt::Claims claims;
    const jwt::Failure failure = verifier_.verify(token, wallClockMs(), claims);
    if (failure != jwt::Failure::None) return failure;
    out.permissions = grantPermissions(config_.auth, claims,
                                       static_cast<size_t>(config_.limits.max_channel_bytes));
    out.user = std::move(claims.subject);
    out.expires_at_ms = claims.expires_at_ms;
    out.info = std::move(claims.info);
    return jwt::Failure::None;
}

}  // namespace wsrelay
