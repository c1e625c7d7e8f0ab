#pragma once

#include <simdjson.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace wsrelay {

// POST /api/presence and POST /api/presence_stats (docs/api.md "Presence").
enum class PresencePath : uint8_t { None, Members, Stats };
PresencePath presencePath(std::string_view path);

// A body of either, read: {"channel":C}. Other fields are ignored; "channel" twice refuses it
// (protocol::FieldsSeen). Pure: `channel` views into the parser until it parses again.
struct ApiPresenceBody {
    std::string_view channel;  // a valid name
    std::string error;         // why it is refused (a 400); empty when it is not
    bool ok() const { return error.empty(); }
};
ApiPresenceBody parsePresenceBody(simdjson::dom::parser& parser, const std::string& body,
                                  size_t max_channel_bytes);

}  // namespace wsrelay
