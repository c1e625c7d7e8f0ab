#pragma once

#include <simdjson.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "relay/protocol/protocol.h"

namespace wsrelay {

inline constexpr size_t kMaxApiBroadcastChannels = 1000;

// A body of the HTTP API (docs/protocol.md), read: the channels to publish to and the payload.
struct ApiBody {
    std::vector<std::string_view> channels;  // valid names, one or more (views into the parser)
    std::string payload;                     // "data", minified: the bytes every channel gets
    std::string error;                       // why it is refused (a 400); empty when it is not

    bool ok() const { return error.empty(); }
};

// Reads the body of POST /api/publish {"channel":C,"data":D} (broadcast false) or of POST
// /api/broadcast {"channels":[C,...],"data":D} (true, 1..kMaxApiBroadcastChannels names). Other
// fields are ignored; a field it reads appearing twice refuses the body (protocol::FieldsSeen).
// Pure: the views in the result stay valid until `parser` parses again.
ApiBody parseApiBody(simdjson::dom::parser& parser, const std::string& body, bool broadcast,
                     size_t max_channel_bytes);

// A body of POST /api/history, read: which channel, how many messages, from where.
struct ApiHistoryBody {
    std::string_view channel;                 // a valid name (a view into the parser)
    std::optional<uint64_t> limit;            // 1..kMaxSafeInteger when given
    std::optional<protocol::Position> since;  // when given: its epoch is a view into the parser
    std::string error;                        // why it is refused (a 400); empty when it is not

    bool ok() const { return error.empty(); }
};

// Reads the body of POST /api/history {"channel":C,"limit":L,"since":{"offset":N,"epoch":"E"}}
// (limit and since optional) by the rules of the client's history command (docs/protocol.md):
// limit an integer 1..2^53-1, since exactly an offset 0..2^53-1 and an epoch of validEpoch's
// shape. Other top-level fields are ignored; a field it reads appearing twice, at the top level or
// in since, refuses the body (protocol::FieldsSeen). Whether the channel keeps history and the
// limit is within history.max_limit is for the caller to check. Pure: the views in the result stay
// valid until `parser` parses again.
ApiHistoryBody parseHistoryBody(simdjson::dom::parser& parser, const std::string& body,
                                size_t max_channel_bytes);

// The commands of the server API that act on the fleet (docs/api.md), by their method name in a
// batch or a hook answer: POST /api/<name>.
enum class FleetMethod : uint8_t { Disconnect, Subscribe, Unsubscribe, Channels, Channel };
std::optional<FleetMethod> fleetMethod(std::string_view name);
std::string_view methodName(FleetMethod method);

inline constexpr size_t kMaxApiCommandChannels = 100;  // channels of one subscribe / unsubscribe
inline constexpr size_t kMaxApiUserBytes = 256;
inline constexpr size_t kMaxConnectionIdBytes = 64;  // a connection id: 1..64 of [a-z0-9.]
inline constexpr int kDefaultApiCloseCode = 4000;
inline constexpr size_t kMaxCloseReasonBytes = 123;  // RFC 6455: what fits in a close frame
inline constexpr uint64_t kDefaultChannelsLimit = 100;
inline constexpr uint64_t kMaxChannelsLimit = 1000;
inline constexpr size_t kMaxBatchCommands = 100;

// A body of a fleet command, read (views into the parser).
struct FleetCommandBody {
    FleetMethod method = FleetMethod::Disconnect;
    // disconnect, subscribe, unsubscribe: exactly one of them is set.
    std::string_view user;
    std::string_view connection;
    std::vector<std::string_view> channels;  // subscribe, unsubscribe: 1..kMaxApiCommandChannels
    int code = kDefaultApiCloseCode;         // disconnect: 4000..4999
    std::string_view reason;                 // disconnect: 0..123 bytes; empty: none given
    std::string_view pattern;                // channels: a glob of `*`; empty: every channel
    uint64_t limit = kDefaultChannelsLimit;  // channels: 1..kMaxChannelsLimit
    std::string_view channel;                // channel
    std::string error;                       // why it is refused (a 400); empty when it is not

    bool ok() const { return error.empty(); }
};

// Reads the body of POST /api/<method> (docs/api.md):
//   disconnect   {"user":U | "connection":C, "code":4000..4999, "reason":R}
//   subscribe,
//   unsubscribe  {"user":U | "connection":C, "channel":N | "channels":[N,...]}
//   channels     {"pattern":P, "limit":L}   (both optional)
//   channel      {"channel":N}
// A user is a non-empty string of at most kMaxApiUserBytes bytes; a connection 1..64 bytes of
// [a-z0-9.] (its form is not checked further: an id no connection has affects none). Other fields
// are ignored; a field it reads appearing twice refuses the body (protocol::FieldsSeen).
FleetCommandBody parseFleetCommandBody(simdjson::dom::parser& parser, const std::string& body,
                                       FleetMethod method, size_t max_channel_bytes);

// Whether `channel` matches `pattern`, a glob where `*` stands for any run of bytes (none too).
bool channelMatches(std::string_view pattern, std::string_view channel);

// A body of POST /api/batch, read: each command's method and its params (minified JSON text).
struct BatchBody {
    struct Command {
        FleetMethod method;
        std::string params;
    };
    std::vector<Command> commands;
    std::string error;  // why the whole batch is refused (a 400); empty when it is not

    bool ok() const { return error.empty(); }
};

// Reads {"commands":[{"method":M,"params":{...}},...]}: 1..max_commands commands, each an object
// with a known method and params an object (absent: {}). What the params say is checked command by
// command when each runs; anything else refuses the whole batch, naming the command's index.
BatchBody parseBatchBody(simdjson::dom::parser& parser, const std::string& body,
                         size_t max_commands);
// One command of a batch or of a hook answer's "commands", read from its element.
bool readBatchCommand(simdjson::dom::element entry, BatchBody::Command& out, std::string& error);

}  // namespace wsrelay
