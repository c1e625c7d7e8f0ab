#include "relay/edge/http_api_body.h"

#include <array>
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

namespace {

constexpr std::array<std::string_view, 5> kMethodNames = {"disconnect", "subscribe", "unsubscribe",
                                                          "channels", "channel"};

// The fields of a fleet command's body.
enum FleetField : unsigned {
    kFUser,
    kFConnection,
    kFChannel,
    kFChannels,
    kFCode,
    kFReason,
    kFPattern,
    kFLimit,
    kFCount
};

std::optional<FleetField> fleetField(std::string_view key, FleetMethod method) {
    switch (method) {
        case FleetMethod::Disconnect:
            if (key == "code") return kFCode;
            if (key == "reason") return kFReason;
            break;
        case FleetMethod::Subscribe:
        case FleetMethod::Unsubscribe:
            if (key == "channel") return kFChannel;
            if (key == "channels") return kFChannels;
            break;
        case FleetMethod::Channels:
            if (key == "pattern") return kFPattern;
            if (key == "limit") return kFLimit;
            return std::nullopt;
        case FleetMethod::Channel:
            if (key == "channel") return kFChannel;
            return std::nullopt;
    }
    if (key == "user") return kFUser;
    if (key == "connection") return kFConnection;
    return std::nullopt;
}

bool validConnectionId(std::string_view id) {
    if (id.empty() || id.size() > kMaxConnectionIdBytes) return false;
    for (char c : id) {
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.')) return false;
    }
    return true;
}

bool validPattern(std::string_view pattern, size_t max_channel_bytes) {
    if (pattern.size() > max_channel_bytes) return false;
    for (char c : pattern) {
        if (c != '*' && !protocol::validChannel(std::string_view(&c, 1), 1)) return false;
    }
    return true;
}

}  // namespace

std::optional<FleetMethod> fleetMethod(std::string_view name) {
    for (size_t i = 0; i < kMethodNames.size(); ++i) {
        if (kMethodNames[i] == name) return static_cast<FleetMethod>(i);
    }
    return std::nullopt;
}

std::string_view methodName(FleetMethod method) {
    return kMethodNames[static_cast<size_t>(method)];
}

bool channelMatches(std::string_view pattern, std::string_view channel) {
    // Greedy with one backtrack point (the last `*`): linear in practice, O(n*m) at worst for
    // names of at most limits.max_channel_bytes.
    size_t p = 0;
    size_t c = 0;
    size_t star = std::string_view::npos;
    size_t resume = 0;
    while (c < channel.size()) {
        if (p < pattern.size() && pattern[p] == '*') {
            star = p++;
            resume = c;
        } else if (p < pattern.size() && pattern[p] == channel[c]) {
            ++p;
            ++c;
        } else if (star != std::string_view::npos) {
            p = star + 1;
            c = ++resume;
        } else {
            return false;
        }
    }
    while (p < pattern.size() && pattern[p] == '*') ++p;
    return p == pattern.size();
}

FleetCommandBody parseFleetCommandBody(simdjson::dom::parser& parser, const std::string& body,
                                       FleetMethod method, size_t max_channel_bytes) {
    FleetCommandBody out;
    out.method = method;
    auto refuse = [&out](std::string why) {
        FleetCommandBody refused;
        refused.method = out.method;
        refused.error = std::move(why);
        return refused;
    };
    simdjson::dom::object root;
    if (parser.parse(body).get(root) != simdjson::SUCCESS) {
        return refuse("body must be a JSON object");
    }
    std::array<std::optional<simdjson::dom::element>, kFCount> values;
    protocol::FieldsSeen seen;
    for (const simdjson::dom::key_value_pair field : root) {
        const std::optional<FleetField> read = fleetField(field.key, method);
        if (!read) continue;  // other fields are ignored
        if (!seen.first(*read)) {
            return refuse(std::string(protocol::kDuplicateField) + ": " + std::string(field.key));
        }
        values[*read] = field.value;
    }
    const bool targeted = method == FleetMethod::Disconnect || method == FleetMethod::Subscribe ||
                          method == FleetMethod::Unsubscribe;
    if (targeted) {
        if (values[kFUser] && values[kFConnection]) {
            return refuse("give user or connection, not both");
        }
        if (values[kFUser]) {
            if (values[kFUser]->get(out.user) != simdjson::SUCCESS || out.user.empty() ||
                out.user.size() > kMaxApiUserBytes) {
                return refuse("user must be a string of 1.." + std::to_string(kMaxApiUserBytes) +
                              " bytes");
            }
        } else if (values[kFConnection]) {
            if (values[kFConnection]->get(out.connection) != simdjson::SUCCESS ||
                !validConnectionId(out.connection)) {
                return refuse("connection must be a connection id: 1..64 of [a-z0-9.]");
            }
        } else {
            return refuse("missing user or connection");
        }
    }
    switch (method) {
        case FleetMethod::Disconnect:
            if (values[kFCode]) {
                int64_t code = 0;
                const auto type = values[kFCode]->type();
                if ((type != simdjson::dom::element_type::INT64 &&
                     type != simdjson::dom::element_type::UINT64) ||
                    values[kFCode]->get(code) != simdjson::SUCCESS || code < 4000 || code > 4999) {
                    return refuse("code must be an integer 4000..4999");
                }
                out.code = static_cast<int>(code);
            }
            if (values[kFReason] && (values[kFReason]->get(out.reason) != simdjson::SUCCESS ||
                                     out.reason.size() > kMaxCloseReasonBytes)) {
                return refuse("reason must be a string of at most 123 bytes");
            }
            break;
        case FleetMethod::Subscribe:
        case FleetMethod::Unsubscribe: {
            if (values[kFChannel] && values[kFChannels]) {
                return refuse("give channel or channels, not both");
            }
            if (values[kFChannel]) {
                std::string_view name;
                if (values[kFChannel]->get(name) != simdjson::SUCCESS ||
                    !protocol::validChannel(name, max_channel_bytes)) {
                    return refuse("invalid channel name");
                }
                out.channels.push_back(name);
                break;
            }
            simdjson::dom::array list;
            if (!values[kFChannels] || values[kFChannels]->get(list) != simdjson::SUCCESS ||
                list.size() == 0 || list.size() > kMaxApiCommandChannels) {
                return refuse("channel, or channels: an array of 1.." +
                              std::to_string(kMaxApiCommandChannels) + " channel names");
            }
            for (simdjson::dom::element e : list) {
                std::string_view name;
                if (e.get(name) != simdjson::SUCCESS ||
                    !protocol::validChannel(name, max_channel_bytes)) {
                    return refuse("invalid channel name");
                }
                out.channels.push_back(name);
            }
            break;
        }
        case FleetMethod::Channels:
            if (values[kFPattern] && (values[kFPattern]->get(out.pattern) != simdjson::SUCCESS ||
                                      !validPattern(out.pattern, max_channel_bytes))) {
                return refuse("pattern must be channel-name characters and *");
            }
            if (values[kFLimit]) {
                if (!safeInteger(*values[kFLimit], out.limit) || out.limit == 0 ||
                    out.limit > kMaxChannelsLimit) {
                    return refuse("limit must be an integer 1.." +
                                  std::to_string(kMaxChannelsLimit));
                }
            }
            break;
        case FleetMethod::Channel:
            if (!values[kFChannel] || values[kFChannel]->get(out.channel) != simdjson::SUCCESS ||
                !protocol::validChannel(out.channel, max_channel_bytes)) {
                return refuse("missing or invalid channel");
            }
            break;
    }
    return out;
}

bool readBatchCommand(simdjson::dom::element entry, BatchBody::Command& out, std::string& error) {
    simdjson::dom::object object;
    if (entry.get(object) != simdjson::SUCCESS) {
        error = "not an object";
        return false;
    }
    std::optional<simdjson::dom::element> method_value;
    std::optional<simdjson::dom::element> params_value;
    protocol::FieldsSeen seen;
    for (const simdjson::dom::key_value_pair field : object) {
        unsigned read = 0;
        if (field.key == "method") {
            method_value = field.value;
        } else if (field.key == "params") {
            read = 1;
            params_value = field.value;
        } else {
            continue;
        }
        if (!seen.first(read)) {
            error = std::string(protocol::kDuplicateField) + ": " + std::string(field.key);
            return false;
        }
    }
    std::string_view name;
    std::optional<FleetMethod> method;
    if (method_value && method_value->get(name) == simdjson::SUCCESS) method = fleetMethod(name);
    if (!method) {
        error = "method must be one of disconnect, subscribe, unsubscribe, channels, channel";
        return false;
    }
    out.method = *method;
    if (!params_value) {
        out.params = "{}";
        return true;
    }
    if (!params_value->is_object()) {
        error = "params must be an object";
        return false;
    }
    out.params = simdjson::minify(*params_value);
    return true;
}

BatchBody parseBatchBody(simdjson::dom::parser& parser, const std::string& body,
                         size_t max_commands) {
    BatchBody out;
    simdjson::dom::object root;
    if (parser.parse(body).get(root) != simdjson::SUCCESS) {
        out.error = "body must be a JSON object";
        return out;
    }
    std::optional<simdjson::dom::element> commands;
    for (const simdjson::dom::key_value_pair field : root) {
        if (field.key != "commands") continue;
        if (commands) {
            out.error = std::string(protocol::kDuplicateField) + ": commands";
            return out;
        }
        commands = field.value;
    }
    simdjson::dom::array list;
    if (!commands || commands->get(list) != simdjson::SUCCESS || list.size() == 0 ||
        list.size() > max_commands) {
        out.error = "commands must be an array of 1.." + std::to_string(max_commands) + " commands";
        return out;
    }
    size_t index = 0;
    for (simdjson::dom::element entry : list) {
        BatchBody::Command command;
        std::string why;
        if (!readBatchCommand(entry, command, why)) {
            BatchBody refused;
            refused.error = "commands[" + std::to_string(index) + "]: " + why;
            return refused;
        }
        out.commands.push_back(std::move(command));
        ++index;
    }
    return out;
}

}  // namespace wsrelay
