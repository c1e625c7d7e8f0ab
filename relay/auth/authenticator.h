#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "adapters/jwt_verifier.h"
#include "conf/config.h"
#include "metrics/relay_metrics.h"
#include "relay/auth/permissions.h"

namespace wsrelay {

struct RequestHead;

// A worker's side of auth.jwt: finds the token on an upgrade request, verifies it and turns its
// claims into an Identity. One per worker (the verifier reuses its parse buffers); a handshake
// costs one verify and never waits on anything.
class Authenticator {
public:
    Authenticator(const Config& config, const jwt::KeySource& keys);

    // The upgrade request's token, by the documented precedence (docs/auth.md): Authorization:
    // Bearer (trimmed), then the token lifted out of Sec-WebSocket-Protocol (`subprotocol_token`),
    // then ?token= (URL-decoded) when auth.jwt.allow_query_token is on. The one reading of a token
    // from a request: every upgrade is verified from the head the gate read.
    std::string findToken(const RequestHead& request, std::string_view subprotocol_token) const;

    // On Failure::None `out` is filled.
    jwt::Failure verify(std::string_view token, Identity& out);

private:
    const Config& config_;
    jwt::Verifier verifier_;
};

// The reason label of wsrelay_auth_failures_total for a refused token; `failure` is not None.
metrics::AuthFailure authFailureLabel(jwt::Failure failure);

// Unix time in milliseconds (the clock tokens are checked against).
int64_t wallClockMs();

}  // namespace wsrelay
