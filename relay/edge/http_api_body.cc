#include "relay/edge/http_api_body.h"

#include <optional>

namespace wsrelay {
namespace {

// The fields of a body, each read once (protocol::FieldsSeen).
enum Field : unsigned { kData, kChannel };

ApiBody refused(std::string why) {
    ApiBody out;
    out.error = std::move(why);
    return out;
}

// The fields of a history body, and of its "since".
enum HistoryField : unsigned { kHistoryChannel, kHistoryLimit, kHistorySince };
enum SinceField : unsigned { kSinceOffset, kSinceEpoch };

// A JSON integer 0..kMaxSafeInteger. The DOM does not keep a number's text, so "-0" reads as 0
// here (a client command refuses it); every other spelling the command refuses (-1, 1.0, 1e3,
// "1") is refused here too.
bool safeInteger(simdjson::dom::element value, uint64_t& out) {
    const auto type = value.type();
    if (type != simdjson::dom::element_type::INT64 && type != simdjson::dom::element_type::UINT64) {
        return false;
    }
    return value.get_uint64().get(out) == simdjson::SUCCESS && out <= protocol::kMaxSafeInteger;
}

// "since": exactly an offset and an epoch, each once; empty when it is one.
std::string readSince(simdjson::dom::element value, protocol::Position& out) {
    simdjson::dom::object object;
    if (value.get(object) != simdjson::SUCCESS) return std::string(protocol::kInvalidSince);
    protocol::FieldsSeen seen;
    bool has_offset = false;
    bool has_epoch = false;
    for (const simdjson::dom::key_value_pair field : object) {
        SinceField read;
        if (field.key == "offset") {
            read = kSinceOffset;
        } else if (field.key == "epoch") {
            read = kSinceEpoch;
        } else {
            return std::string(protocol::kInvalidSince);
        }
        if (!seen.first(read)) {
            return std::string(protocol::kDuplicateField) + ": since." + std::string(field.key);
        }
        if (read == kSinceOffset) {
            if (!safeInteger(field.value, out.offset)) {
                return std::string(protocol::kInvalidSinceOffset);
            }
            has_offset = true;
        } else {
            if (field.value.get(out.epoch) != simdjson::SUCCESS ||
                !protocol::validEpoch(out.epoch)) {
                return std::string(protocol::kInvalidSinceEpoch);
            }
            has_epoch = true;
        }
    }
    if (!has_offset || !has_epoch) return std::string(protocol::kInvalidSince);
    return {};
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

ApiHistoryBody parseHistoryBody(simdjson::dom::parser& parser, const std::string& body,
                                size_t max_channel_bytes) {
    auto refuse = [](std::string why) {
        ApiHistoryBody out;
        out.error = std::move(why);
        return out;
    };
    simdjson::dom::object root;
    if (parser.parse(body).get(root) != simdjson::SUCCESS) {
        return refuse("body must be a JSON object");
    }
    std::optional<simdjson::dom::element> channel_value;
    std::optional<simdjson::dom::element> limit_value;
    std::optional<simdjson::dom::element> since_value;
    protocol::FieldsSeen seen;
    for (const simdjson::dom::key_value_pair field : root) {
        HistoryField read;
        if (field.key == "channel") {
            read = kHistoryChannel;
            channel_value = field.value;
        } else if (field.key == "limit") {
            read = kHistoryLimit;
            limit_value = field.value;
        } else if (field.key == "since") {
            read = kHistorySince;
            since_value = field.value;
        } else {
            continue;  // other fields are ignored
        }
        if (!seen.first(read)) {
            return refuse(std::string(protocol::kDuplicateField) + ": " + std::string(field.key));
        }
    }
    ApiHistoryBody out;
    if (!channel_value || channel_value->get(out.channel) != simdjson::SUCCESS ||
        !protocol::validChannel(out.channel, max_channel_bytes)) {
        return refuse("missing or invalid channel");
    }
    if (since_value) {
        protocol::Position since;
        std::string why = readSince(*since_value, since);
        if (!why.empty()) return refuse(std::move(why));
        out.since = since;
    }
    if (limit_value) {
        uint64_t limit = 0;
        if (!safeInteger(*limit_value, limit) || limit == 0) {
            return refuse(std::string(protocol::kInvalidLimit));
        }
        out.limit = limit;
    }
    return out;
}

}  // namespace wsrelay
