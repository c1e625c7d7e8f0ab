#pragma once

#include <cstddef>
#include <string>

namespace wsrelay {

// Browsers cannot set headers on a WebSocket, so they offer the token as a subprotocol next to
// the real one: Sec-WebSocket-Protocol: wsrelay.v1, wsrelay.bearer.<jwt> (docs/auth.md).
inline constexpr std::string_view kSubprotocol = "wsrelay.v1";
inline constexpr std::string_view kBearerSubprotocolPrefix = "wsrelay.bearer.";

struct SubprotocolLift {
    enum class Result {
        Incomplete,  // no blank line yet: read more
        Ready,       // `head` may have been rewritten; `token` is empty when none was offered
        TooLarge,    // no end of head within max_head_bytes
        BadRequest,  // a bearer entry offered without wsrelay.v1 to answer with
    };
    Result result = Result::Incomplete;
    std::string token;
};

// Looks at the request head at the start of `bytes` (an HTTP/1.1 request, possibly followed by a
// body) and removes every wsrelay.bearer.* entry from its Sec-WebSocket-Protocol header(s),
// keeping the first one's token; a header left empty is dropped. Whatever follows the head is
// kept as is.
SubprotocolLift liftSubprotocolToken(std::string& bytes, size_t max_head_bytes);

}  // namespace wsrelay
