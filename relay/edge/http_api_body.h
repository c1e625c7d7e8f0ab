#pragma once

#include <simdjson.h>

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

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

}  // namespace wsrelay
