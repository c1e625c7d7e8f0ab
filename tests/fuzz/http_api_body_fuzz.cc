// libFuzzer target for the bodies of POST /api/publish and /api/broadcast (parseApiBody,
// relay/edge/http_api_body.h): the backend's bytes, behind a key but still bytes from the network.
// The first byte picks the path (bit 0: broadcast) and the channel bound (bit 1: 8 bytes, else
// 255); the rest is the body.
// The properties: nothing crashes; a body not holding a JSON object is refused as such; a body
// accepted names 1 channel (publish) or 1..1000 (broadcast), each valid and the very string of
// the body's channel field, and its payload is the body's "data" minified: JSON, minified
// already; writing the result back as a body and reading it again gives the same result; a
// refusal says why in one of the documented messages.

#include <simdjson.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "adapters/redis_payload.h"
#include "relay/edge/http_api_body.h"
#include "relay/protocol/protocol.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using wsrelay::fuzz::check;
using wsrelay::fuzz::failure;

using namespace wsrelay;

// A second parser for the reference reads, so the views of the result stay valid.
simdjson::dom::parser& referenceParser() {
    static simdjson::dom::parser parser;
    return parser;
}

bool knownRefusal(std::string_view error) {
    for (std::string_view known :
         {"body must be a JSON object", "duplicate field: data", "duplicate field: channel",
          "duplicate field: channels", "missing data", "missing or invalid channel",
          "channels must be an array of 1..1000 channel names", "invalid channel name"}) {
        if (error == known) return true;
    }
    return false;
}

// The body `result` stands for, written back.
std::string bodyOf(const ApiBody& result, bool broadcast) {
    std::string out = broadcast ? R"({"channels":[)" : R"({"channel":)";
    for (size_t i = 0; i < result.channels.size(); ++i) {
        if (i > 0) out += ',';
        appendJsonString(result.channels[i], out);
    }
    out += broadcast ? R"(],"data":)" : R"(,"data":)";
    return out + result.payload + "}";
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static simdjson::dom::parser parser;
    if (size == 0) return 0;
    const bool broadcast = (data[0] & 1) != 0;
    const size_t max_channel = (data[0] & 2) != 0 ? 8 : 255;
    const std::string body(reinterpret_cast<const char*>(data) + 1, size - 1);
    const ApiBody result = parseApiBody(parser, body, broadcast, max_channel);

    simdjson::dom::object root;
    const bool is_object = referenceParser().parse(body).get(root) == simdjson::SUCCESS;
    if (!result.ok()) {
        check(knownRefusal(result.error), "unknown refusal", result.error);
        check(is_object || result.error == "body must be a JSON object",
              "a body that is not a JSON object refused for another reason", body);
        check(result.channels.empty() && result.payload.empty(), "refusal with a result", body);
        return 0;
    }
    check(is_object, "a body that is not a JSON object accepted", body);

    // The channels: those of the body, each valid.
    std::vector<std::string_view> expected;
    if (broadcast) {
        simdjson::dom::array list;
        check(root["channels"].get(list) == simdjson::SUCCESS, "broadcast without channels", body);
        for (simdjson::dom::element e : list) {
            std::string_view name;
            check(e.get(name) == simdjson::SUCCESS, "non-string channel accepted", body);
            expected.push_back(name);
        }
        check(!expected.empty() && expected.size() <= kMaxApiBroadcastChannels,
              "channel count out of range", body);
    } else {
        std::string_view name;
        check(root["channel"].get(name) == simdjson::SUCCESS, "publish without a channel", body);
        expected.push_back(name);
    }
    check(result.channels == expected, "channels differ from the body's", body);
    for (std::string_view name : result.channels) {
        check(protocol::validChannel(name, max_channel), "invalid channel accepted", name);
    }

    // The payload: the body's data, minified.
    simdjson::dom::element value;
    check(root["data"].get(value) == simdjson::SUCCESS, "accepted without data", body);
    check(result.payload == simdjson::minify(value), "payload is not the data minified",
          result.payload);
    simdjson::dom::element reparsed;
    if (referenceParser().parse(result.payload).get(reparsed) != simdjson::SUCCESS) {
        failure("payload is not JSON", result.payload);
    }
    check(simdjson::minify(reparsed) == result.payload, "payload not minified", result.payload);

    // Written back and read again: the same channels and payload.
    static simdjson::dom::parser again_parser;
    const std::string written = bodyOf(result, broadcast);
    const ApiBody again = parseApiBody(again_parser, written, broadcast, max_channel);
    check(again.ok() && again.channels == result.channels && again.payload == result.payload,
          "written back, the body reads differently", written);
    return 0;
}
