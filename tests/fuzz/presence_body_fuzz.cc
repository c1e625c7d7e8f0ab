// libFuzzer target for the body of POST /api/presence and /api/presence_stats
// (parsePresenceBody, relay/edge/http_api_presence.h): a backend's bytes, behind a key but still
// bytes from the network. The first byte picks the channel bound (bit 0: 8 bytes, else 255); the
// rest is the body. The properties: nothing crashes; a body accepted names a valid channel, the
// very string of the body's "channel" field; writing it back as {"channel":C} reads the same; a
// refusal says why in one of the documented messages.

#include <simdjson.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "relay/edge/http_api_presence.h"
#include "relay/protocol/protocol.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using wsrelay::fuzz::check;
using namespace wsrelay;

bool knownRefusal(std::string_view error) {
    return error == "body must be a JSON object" || error == "duplicate field: channel" ||
           error == "missing or invalid channel";
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size == 0) return 0;
    const size_t max_channel = (data[0] & 1) != 0 ? 8 : 255;
    const std::string body(reinterpret_cast<const char*>(data) + 1, size - 1);
    static simdjson::dom::parser parser;
    static simdjson::dom::parser again;
    const ApiPresenceBody result = parsePresenceBody(parser, body, max_channel);
    if (!result.ok()) {
        check(knownRefusal(result.error), "undocumented refusal", result.error);
        check(result.channel.empty(), "a refusal names a channel", body);
        return 0;
    }
    check(protocol::validChannel(result.channel, max_channel), "accepted an invalid channel", body);
    // The field's value, read by a second parser, is the channel accepted.
    simdjson::dom::element root;
    std::string_view channel;
    check(again.parse(body).get(root) == simdjson::SUCCESS &&
              root["channel"].get(channel) == simdjson::SUCCESS && channel == result.channel,
          "the channel is not the body's", body);
    const std::string written = R"({"channel":")" + std::string(result.channel) + "\"}";
    const ApiPresenceBody reread = parsePresenceBody(again, written, max_channel);
    check(reread.ok() && reread.channel == result.channel, "written back, reads differently",
          written);
    return 0;
}
