#pragma once

#include <string_view>

namespace wsrelay {

// Every close code the relay sends, in one place (docs/protocol.md has the same table).
// 4000-4499: the client may reconnect (with backoff); 4500-4999: it should not without a change.
enum class CloseCode : int {
    Normal = 1000,
    GoingAway = 1001,        // drain/shutdown: reconnect (to another instance) after the jitter
    ProtocolError = 1002,    // RFC 6455 violation
    UnsupportedData = 1003,  // binary frame on a text protocol
    InvalidPayload = 1007,   // invalid UTF-8 in a text frame
    PolicyViolation = 1008,  // Origin not allowed
    MessageTooBig = 1009,    // message over websocket.max_message_bytes
    InternalError = 1011,
    TryAgainLater = 1013,       // instance at limits.max_connections
    SlowConsumer = 4001,        // send queue overflowed (limits.slow_consumer: close)
    PingTimeout = 4002,         // no pong within websocket.pong_timeout_ms
    TokenExpired = 4003,        // the JWT expired and no refresh came: reconnect with a new token
    RateLimited = 4429,         // limits.rate.max_refusals commands refused with 429 in a row
    TooManyBadCommands = 4500,  // limits.max_bad_commands malformed/unknown commands
    ConnectionReplaced = 4501,  // limits.per_user_policy evict_oldest: the user opened another
};

struct CloseInfo {
    CloseCode code;
    std::string_view reason;  // < 123 bytes, the RFC 6455 limit for a close reason
    bool reconnect;
};

constexpr CloseInfo closeInfo(CloseCode code) {
    switch (code) {
        case CloseCode::Normal: return {code, "bye", true};
        case CloseCode::GoingAway: return {code, "server shutting down", true};
        case CloseCode::ProtocolError: return {code, "protocol error", true};
        case CloseCode::UnsupportedData: return {code, "binary frames are not supported", false};
        case CloseCode::InvalidPayload: return {code, "invalid UTF-8", false};
        case CloseCode::PolicyViolation: return {code, "origin not allowed", false};
        case CloseCode::MessageTooBig: return {code, "message too big", false};
        case CloseCode::InternalError: return {code, "internal error", true};
        case CloseCode::TryAgainLater: return {code, "connection limit reached", true};
        case CloseCode::SlowConsumer: return {code, "slow consumer", true};
        case CloseCode::PingTimeout: return {code, "ping timeout", true};
        case CloseCode::TokenExpired: return {code, "token expired", true};
        case CloseCode::RateLimited: return {code, "rate limited", true};
        case CloseCode::TooManyBadCommands: return {code, "too many bad commands", false};
        case CloseCode::ConnectionReplaced: return {code, "replaced by a newer connection", false};
    }
    return {code, "", true};
}

}  // namespace wsrelay
