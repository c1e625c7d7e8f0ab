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

}  // namespace wsrelay
