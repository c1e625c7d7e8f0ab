// libFuzzer target for the bodies of the server API's fleet commands (parseFleetCommandBody) and
// of POST /api/batch (parseBatchBody), relay/edge/http_api_body.h: the backend's bytes, behind a
// key but still bytes from the network. The first byte picks the reader: its value mod 6 is a
// FleetMethod, or 5 for a batch; bit 7 picks the channel bound (8 bytes, else 255). The rest is the
// body. The properties: nothing crashes; a body not holding a JSON object is refused as such; a
// refusal carries no result; an accepted body names exactly one of user and connection for the
// targeted methods, within their bounds, a code 4000..4999, a reason of at most 123 bytes, 1..100
// valid channels that are the body's, a limit 1..1000 and a pattern of channel characters and
// `*`; a batch accepted holds 1..100 commands whose params are JSON objects.

#include <simdjson.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "relay/edge/http_api_body.h"
#include "relay/protocol/protocol.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using wsrelay::fuzz::check;
using namespace wsrelay;

simdjson::dom::parser& referenceParser() {
    static simdjson::dom::parser parser;
    return parser;
}

int checkBatch(const std::string& body) {
    static simdjson::dom::parser parser;
    const BatchBody result = parseBatchBody(parser, body, kMaxBatchCommands);
    simdjson::dom::object root;
    const bool is_object = referenceParser().parse(body).get(root) == simdjson::SUCCESS;
    if (!result.ok()) {
        check(result.commands.empty(), "a refused batch with commands", body);
        check(is_object || result.error == "body must be a JSON object",
              "a body that is not a JSON object refused for another reason", body);
        return 0;
    }
    check(is_object, "a body that is not a JSON object accepted", body);
    check(!result.commands.empty() && result.commands.size() <= kMaxBatchCommands,
          "command count out of range", body);
    for (const BatchBody::Command& command : result.commands) {
        simdjson::dom::object params;
        check(referenceParser().parse(command.params).get(params) == simdjson::SUCCESS,
              "params not an object", command.params);
    }
    return 0;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static simdjson::dom::parser parser;
    if (size == 0) return 0;
    const unsigned pick = (data[0] & 0x7f) % 6;
    const size_t max_channel = (data[0] & 0x80) != 0 ? 8 : 255;
    const std::string body(reinterpret_cast<const char*>(data) + 1, size - 1);
    if (pick == 5) return checkBatch(body);
    const auto method = static_cast<FleetMethod>(pick);
    const FleetCommandBody result = parseFleetCommandBody(parser, body, method, max_channel);
    simdjson::dom::object root;
    const bool is_object = referenceParser().parse(body).get(root) == simdjson::SUCCESS;
    if (!result.ok()) {
        check(is_object || result.error == "body must be a JSON object",
              "a body that is not a JSON object refused for another reason", body);
        check(result.user.empty() && result.connection.empty() && result.channels.empty() &&
                  result.channel.empty() && result.pattern.empty(),
              "refusal with a result", body);
        return 0;
    }
    check(is_object, "a body that is not a JSON object accepted", body);
    const bool targeted = method == FleetMethod::Disconnect || method == FleetMethod::Subscribe ||
                          method == FleetMethod::Unsubscribe;
    if (targeted) {
        check(result.user.empty() != result.connection.empty(), "not exactly one target", body);
        check(result.user.size() <= kMaxApiUserBytes, "user too long", body);
        check(result.connection.size() <= kMaxConnectionIdBytes, "connection too long", body);
        for (char c : result.connection) {
            check((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.',
                  "connection outside [a-z0-9.]", body);
        }
        std::string_view user;
        if (!result.user.empty()) {
            check(root["user"].get(user) == simdjson::SUCCESS && user == result.user,
                  "user differs from the body's", body);
        }
    }
    check(result.code >= 4000 && result.code <= 4999, "code out of range", body);
    check(result.reason.size() <= kMaxCloseReasonBytes, "reason too long", body);
    if (method == FleetMethod::Subscribe || method == FleetMethod::Unsubscribe) {
        check(!result.channels.empty() && result.channels.size() <= kMaxApiCommandChannels,
              "channel count out of range", body);
    }
    for (std::string_view name : result.channels) {
        check(protocol::validChannel(name, max_channel), "invalid channel accepted", name);
    }
    if (method == FleetMethod::Channel) {
        check(protocol::validChannel(result.channel, max_channel), "invalid channel accepted",
              body);
    }
    check(result.limit >= 1 && result.limit <= kMaxChannelsLimit, "limit out of range", body);
    for (char c : result.pattern) {
        check(c == '*' || protocol::validChannel(std::string_view(&c, 1), 1),
              "pattern character outside the charset", body);
    }
    // Matching never misbehaves on what the pattern accepts (the listing runs it on every name).
    if (!result.pattern.empty()) (void)channelMatches(result.pattern, body);
    return 0;
}
