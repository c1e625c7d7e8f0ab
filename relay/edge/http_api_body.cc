#include "relay/edge/http_api_body.h"

#include <optional>

#include "relay/protocol/protocol.h"

namespace wsrelay {
namespace {

// The fields of a body, each read once (protocol::FieldsSeen).
enum Field : unsigned { kData, kChannel };

ApiBody refused(std::string why) {
    ApiBody out;
    out.error = std::move(why);
    return out;
}

}  // namespace

ApiBody parseApiBody(simdjson::dom::parser& parser, const std::string& body, bool broadcast,
                     size_t max_channel_bytes) {
    simdjson::dom::object root;
    if (parser.parse(body).get(root) != simdjson::SUCCESS) {
        return refused("body must be a JSON object");
    }
    const std::string_view channel_key = broadcast ? "channels" : "channel";
    std::optional<simdjson::dom::element> data;
    std::optional<simdjson::dom::element> channel_value;
    protocol::FieldsSeen seen;
    for (const simdjson::dom::key_value_pair field : root) {
        Field read;
        if (field.key == "data") {
            read = kData;
            data = field.value;
        } else if (field.key == channel_key) {
            read = kChannel;
            channel_value = field.value;
        } else {
            continue;  // other fields are ignored
        }
        if (!seen.first(read)) {
            return refused(std::string(protocol::kDuplicateField) + ": " + std::string(field.key));
        }
    }
    if (!data) return refused("missing data");
    ApiBody out;
    if (broadcast) {
        simdjson::dom::array list;
        if (!channel_value || channel_value->get(list) != simdjson::SUCCESS || list.size() == 0 ||
            list.size() > kMaxApiBroadcastChannels) {
            return refused("channels must be an array of 1.." +
                           std::to_string(kMaxApiBroadcastChannels) + " channel names");
        }
        for (simdjson::dom::element e : list) {
            std::string_view name;
            if (e.get(name) != simdjson::SUCCESS ||
                !protocol::validChannel(name, max_channel_bytes)) {
                return refused("invalid channel name");
            }
            out.channels.push_back(name);
        }
    } else {
        std::string_view name;
        if (!channel_value || channel_value->get(name) != simdjson::SUCCESS ||
            !protocol::validChannel(name, max_channel_bytes)) {
            return refused("missing or invalid channel");
        }
        out.channels.push_back(name);
    }
    out.payload = simdjson::minify(*data);
    return out;
}

}  // namespace wsrelay
