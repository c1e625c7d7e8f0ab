#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "relay/protocol/frame.h"

// Client protocol v1 (docs/protocol.md): parsing client commands and encoding server frames.
// Pure: no I/O, no globals; the fuzz target drives Parser directly.
namespace wsrelay::protocol {

enum class Op { Subscribe, Unsubscribe, Publish, Ping, Refresh, Send, History, Presence };

// Protocol error codes carried in {"op":"error"} frames.
enum class ErrorCode : int {
    BadRequest = 400,    // not JSON, not an object, missing or mistyped field
    Unauthorized = 401,  // refresh: the new token was refused
    Forbidden = 403,     // outside the channels the token (or auth.permissions) grants
    UnknownOp = 404,
    Conflict = 409,        // already subscribed / not subscribed
    NoHistory = 405,       // history (or a subscribe with since) on a channel that keeps none
    NoPresence = 405,      // presence on a channel that keeps none (the same code)
    LimitExceeded = 413,   // limits.max_subscriptions reached, a message too large to deliver,
                           // or a history limit over history.max_limit
    InvalidChannel = 422,  // channel name outside the charset or too long
    RateLimited = 429,     // a command over limits.rate (with retry_after_ms), or a second history
                           // read while one is under way
    Internal = 500,
    HookFailed = 502,         // the app's hook failed, timed out or answered with an error
    BrokerUnavailable = 503,  // the broker could not take the publish; also hook busy and
                              // memory budget full
};

// The largest integer a JavaScript client holds exactly (Number.MAX_SAFE_INTEGER): the bound of
// ids, offsets and limits.
inline constexpr uint64_t kMaxSafeInteger = (uint64_t{1} << 53) - 1;

// A place in a channel's history (docs/protocol.md "History and recovery").
struct Position {
    uint64_t offset = 0;
    std::string_view epoch;  // 1..kMaxEpochBytes of [A-Za-z0-9]
};
inline constexpr size_t kMaxEpochBytes = 32;
// True when `epoch` has the shape above.
bool validEpoch(std::string_view epoch);
// Why a "since" or a "limit" is refused (400), in commands and HTTP API bodies alike: "since" is
// not {"offset":N,"epoch":"E"} (not an object, a field missing, another field in it), its offset
// is not an integer 0..kMaxSafeInteger, its epoch not of validEpoch's shape; "limit" is not an
// integer 1..kMaxSafeInteger.
inline constexpr std::string_view kInvalidSince = "invalid since";
inline constexpr std::string_view kInvalidSinceOffset = "invalid since offset";
inline constexpr std::string_view kInvalidSinceEpoch = "invalid since epoch";
inline constexpr std::string_view kInvalidLimit = "invalid limit";
// The reasons of the errors a history read or a subscribe with "since" may get after parsing
// (docs/protocol.md "History and recovery"): 405, 413, 503 and 429.
inline constexpr std::string_view kNoHistory = "no history on this channel";
inline constexpr std::string_view kLimitOverMax = "limit over history.max_limit";
inline constexpr std::string_view kHistoryUnavailable = "history unavailable";
inline constexpr std::string_view kHistoryReadInFlight = "a history read is in flight";
// The reasons of the errors a presence command may get after parsing (docs/protocol.md
// "Presence"): 405 and 503.
inline constexpr std::string_view kNoPresence = "no presence on this channel";
inline constexpr std::string_view kPresenceUnavailable = "presence unavailable";
// Why a command over its kind's limits.rate is refused (429, with retry_after_ms).
inline constexpr std::string_view kRateLimited = "rate limit exceeded";

struct Command {
    Op op = Op::Ping;
    std::string_view channel;  // Subscribe/Unsubscribe/Publish/History/Presence
    // Subscribe, History: "since":{"offset":N,"epoch":"E"} (offset 0..2^53-1, an epoch of the
    // shape validEpoch() checks): where the client's copy of the channel ends.
    std::optional<Position> since;
    // History: "limit":L, 1..2^53-1 (the session refuses more than history.max_limit).
    std::optional<uint64_t> limit;
    std::string_view data;  // Publish, Send: the JSON text of "data", exactly as the client sent it
    std::string_view token;  // Refresh: the new JWT
    std::optional<uint64_t> id;
};

struct ParseResult {
    bool ok = false;
    Command command;                          // valid when ok
    ErrorCode error = ErrorCode::BadRequest;  // when !ok
    std::string_view reason;                  // when !ok: short, static, safe to echo
    std::optional<uint64_t> id;               // echoed in the error frame when it could be read
};

// True when `name` is 1..max_bytes bytes of [A-Za-z0-9] and _ - : . / @ = + , # ! ~ $
bool validChannel(std::string_view name, size_t max_bytes);

// The one rule for repeated keys in a JSON object the relay reads from outside (client commands,
// HTTP API bodies; docs/protocol.md): a field the reader uses may appear once, and a second
// occurrence refuses the whole object with kDuplicateField instead of picking one (parsers differ
// on first or last wins, so a proxy or the app could read another value than the relay). Fields
// the reader ignores are not checked. Each reader numbers its fields from 0 to 31.
class FieldsSeen {
public:
    // False when `field` was seen before in this object.
    bool first(unsigned field) {
        const uint32_t bit = uint32_t{1} << field;
        const bool fresh = (seen_ & bit) == 0;
        seen_ |= bit;
        return fresh;
    }

private:
    uint32_t seen_ = 0;
};
inline constexpr std::string_view kDuplicateField = "duplicate field";

// Parses one client text message. Reuses its buffers; the views in a result stay valid until the
// next parse() on the same Parser. One Parser per worker.
class Parser {
public:
    Parser(size_t max_message_bytes, size_t max_channel_bytes);
    ~Parser();
    Parser(const Parser&) = delete;
    Parser& operator=(const Parser&) = delete;

    ParseResult parse(std::string_view message);

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

// Server frames. Each returns a complete unmasked WebSocket text frame (RFC 6455 header + JSON).
// `channel` must already be valid (validChannel) and `data` valid JSON: neither is escaped again.
FramePtr encodeMessage(std::string_view channel, std::string_view data);
// A message of a channel with history, with its place in it:
// {"op":"message","channel":C,"offset":N,"epoch":"E","data":D}.
FramePtr encodeMessage(std::string_view channel, std::string_view data, Position position);
// The most a position adds to a message frame: a 20-digit offset, a kMaxEpochBytes epoch, and 6
// bytes for the longer WebSocket header the longer payload may need (it crosses at most one of the
// 125 and 65535 bounds: 2 -> 4 or 4 -> 10 bytes). The entry checks of a channel with history add
// it to messageFrameSize().
inline constexpr size_t kMaxPositionBytes =
    sizeof(R"(,"offset":,"epoch":"")") - 1 + 20 + kMaxEpochBytes + (10 - 4);
// The size of the frame encodeMessage(channel, data) builds, without building it: the one
// computation behind every "too large to deliver" check, so entry points and delivery agree.
size_t messageFrameSize(std::string_view channel, std::string_view data);
// The same for encodeMessage(channel, data, position): at most messageFrameSize(channel, data) +
// kMaxPositionBytes.
size_t messageFrameSize(std::string_view channel, std::string_view data, Position position);
// Why a publish whose message frame would exceed limits.send_queue_bytes is refused (413).
inline constexpr std::string_view kTooLargeToDeliver = "message too large to deliver";
// 503 to a publish (client, /api/publish) while the process's memory budget is full.
inline constexpr std::string_view kMemoryBudgetFull = "memory budget full";
FramePtr encodeAck(uint64_t id);
// Whether a subscribe that asked to recover (gave "since") did: every message after its offset
// follows, in order, or the client must reload (docs/protocol.md).
enum class Recovered : uint8_t { NotAsked, Yes, No };
// The ack of a subscribe to a channel with history: {"op":"ack","id":N,"offset":T,"epoch":"E"}
// plus "recovered":true|false when the subscribe gave "since". `top` is the channel's position
// when the subscription went live: recovering from it later misses nothing.
FramePtr encodeAck(uint64_t id, Position top, Recovered recovered);
FramePtr encodePong(std::optional<uint64_t> id);
// {"op":"error","id":N,"code":C,"reason":R}, "id" only when the command had one, and
// "retry_after_ms":M when given (a command over limits.rate: when it would be admitted).
FramePtr encodeError(std::optional<uint64_t> id, ErrorCode code, std::string_view reason,
                     std::optional<uint64_t> retry_after_ms = std::nullopt);
FramePtr encodeReconnect();  // drain advice: {"op":"reconnect"}
// After a broker outage: {"op":"resubscribed","channel":C,"gap":true}: the subscription is live
// again and messages published meanwhile may have been missed.
FramePtr encodeResubscribed(std::string_view channel);
// The same for a channel with history whose missed messages could not be recovered (its history
// was lost or held fewer than were missed), with the position the client can recover from now:
// {"op":"resubscribed","channel":C,"gap":true,"offset":T,"epoch":"E"}.
FramePtr encodeResubscribed(std::string_view channel, Position top);
// Auth: the connection's token expires soon: {"op":"token_expiring","exp":S,"in_ms":N}.
FramePtr encodeTokenExpiring(int64_t exp_seconds, int64_t in_ms);
// The server ended a subscription: {"op":"unsubscribed","channel":C,"reason":R}. `reason` is a
// fixed word (no escaping).
FramePtr encodeUnsubscribed(std::string_view channel, std::string_view reason);
// The app's answer to a send (or a routed publish): {"op":"reply","id":N,"data":D}; `data` is
// valid JSON.
FramePtr encodeReply(std::optional<uint64_t> id, std::string_view data);
// The app subscribed this connection to `channel` (hook answer): {"op":"subscribed","channel":C}.
FramePtr encodeSubscribed(std::string_view channel);
// The same for a channel with history: {"op":"subscribed","channel":C,"offset":T,"epoch":"E"}.
FramePtr encodeSubscribed(std::string_view channel, Position top);
// One stored message of a history answer.
struct HistoryItem {
    uint64_t offset = 0;
    std::string_view data;  // JSON text
};
// The answer to {"op":"history"}: {"op":"history","id":N,"channel":C,"messages":[{"offset":O,
// "data":D},...],"offset":T,"epoch":"E"} ("id" only when the command had one).
FramePtr encodeHistory(std::optional<uint64_t> id, std::string_view channel,
                       std::span<const HistoryItem> items, Position top);
// The body of POST /api/history's answer: {"messages":[{"offset":O,"data":D},...],"offset":T,
// "epoch":"E"}, appended to `out`.
void appendHistoryBody(std::span<const HistoryItem> items, Position top, std::string& out);
// The answer to {"op":"presence"}: {"op":"presence","id":N,"channel":C,"members":[M,...]} plus
// "truncated":true when presence.max_members cut the list ("id" only when the command had one).
// Each member is JSON text the relay wrote ({"user":U|null,"connection":C,"info":I|null}).
FramePtr encodePresence(std::optional<uint64_t> id, std::string_view channel,
                        std::span<const std::string> members, bool truncated);
// The body of POST /api/presence's answer: {"channel":C,"members":[M,...]} plus
// "truncated":true, appended to `out`.
void appendPresenceBody(std::string_view channel, std::span<const std::string> members,
                        bool truncated, std::string& out);
// A WebSocket frame with an arbitrary opcode (0x9 ping, 0x8 close) around `payload`.
FramePtr encodeControl(uint8_t opcode, std::string_view payload);

// Writes the RFC 6455 server header for a FIN text frame of `payload_len` bytes into `out`
// (at least 10 bytes); returns the header length.
size_t writeTextHeader(char* out, uint64_t payload_len);
// The length of the RFC 6455 server header for a payload of `payload_len` bytes: 2, 4 or 10.
size_t frameHeaderSize(uint64_t payload_len);
// Writes that header, its first byte `first_byte` (FIN, RSV bits, opcode), into `out` (at least 10
// bytes); returns its length.
size_t writeFrameHeader(char* out, uint8_t first_byte, uint64_t payload_len);

}  // namespace wsrelay::protocol
