// libFuzzer target for the bodies of POST /api/publish, /api/broadcast (parseApiBody) and
// /api/history (parseHistoryBody, relay/edge/http_api_body.h): the backend's bytes, behind a key
// but still bytes from the network. The first byte picks the path (bit 2: history, else bit 0:
// broadcast) and the channel bound (bit 1: 8 bytes, else 255); the rest is the body.
// The properties: nothing crashes; a body not holding a JSON object is refused as such; a body
// accepted names 1 channel (publish) or 1..1000 (broadcast), each valid and the very string of
// the body's channel field, and its payload is the body's "data" minified: JSON, minified
// already; a history body accepted names a valid channel, the body's, and its limit and since are
// the body's, within their bounds (limit 1..2^53-1, offset 0..2^53-1, epoch of validEpoch's
// shape); writing the result back as a body and reading it again gives the same result; a
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

bool knownHistoryRefusal(std::string_view error) {
    for (std::string_view known :
         {"body must be a JSON object", "duplicate field: channel", "duplicate field: limit",
          "duplicate field: since", "duplicate field: since.offset", "duplicate field: since.epoch",
          "missing or invalid channel", "invalid since", "invalid since offset",
          "invalid since epoch", "invalid limit"}) {
        if (error == known) return true;
    }
    return false;
}

// The history body `result` stands for, written back.
std::string historyBodyOf(const ApiHistoryBody& result) {
    std::string out = R"({"channel":)";
    appendJsonString(result.channel, out);
    if (result.limit) out += R"(,"limit":)" + std::to_string(*result.limit);
    if (result.since) {
        out += R"(,"since":{"offset":)" + std::to_string(result.since->offset) + R"(,"epoch":)";
        appendJsonString(result.since->epoch, out);
        out += "}";
    }
    return out + "}";
}

int checkHistory(const std::string& body, size_t max_channel) {
    static simdjson::dom::parser parser;
    const ApiHistoryBody result = parseHistoryBody(parser, body, max_channel);
    simdjson::dom::object root;
    const bool is_object = referenceParser().parse(body).get(root) == simdjson::SUCCESS;
    if (!result.ok()) {
        check(knownHistoryRefusal(result.error), "unknown refusal", result.error);
        check(is_object || result.error == "body must be a JSON object",
              "a body that is not a JSON object refused for another reason", body);
        check(result.channel.empty() && !result.limit && !result.since, "refusal with a result",
              body);
        return 0;
    }
    check(is_object, "a body that is not a JSON object accepted", body);

    std::string_view channel;
    check(root["channel"].get(channel) == simdjson::SUCCESS && channel == result.channel,
          "channel differs from the body's", body);
    check(protocol::validChannel(result.channel, max_channel), "invalid channel accepted", body);

    uint64_t limit = 0;
    const bool has_limit = root["limit"].get(limit) == simdjson::SUCCESS;
    check(has_limit == result.limit.has_value() && (!has_limit || limit == *result.limit),
          "limit differs from the body's", body);
    check(!result.limit || (*result.limit >= 1 && *result.limit <= protocol::kMaxSafeInteger),
          "limit out of range", body);

    simdjson::dom::object since;
    const bool has_since = root["since"].get(since) == simdjson::SUCCESS;
    check(has_since == result.since.has_value(), "since present in one and not the other", body);
    if (result.since) {
        uint64_t offset = 0;
        std::string_view epoch;
        check(since["offset"].get(offset) == simdjson::SUCCESS && offset == result.since->offset &&
                  since["epoch"].get(epoch) == simdjson::SUCCESS && epoch == result.since->epoch,
              "since differs from the body's", body);
        check(since.size() == 2, "since with other fields accepted", body);
        check(offset <= protocol::kMaxSafeInteger, "since offset out of range", body);
        check(protocol::validEpoch(epoch), "since epoch of the wrong shape", body);
    }

    // Written back and read again: the same channel, limit and since.
    static simdjson::dom::parser again_parser;
    const std::string written = historyBodyOf(result);
    const ApiHistoryBody again = parseHistoryBody(again_parser, written, max_channel);
    check(again.ok() && again.channel == result.channel && again.limit == result.limit &&
              again.since.has_value() == result.since.has_value() &&
              (!result.since || (again.since->offset == result.since->offset &&
                                 again.since->epoch == result.since->epoch)),
          "written back, the body reads differently", written);
    return 0;
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
    if ((data[0] & 4) != 0) return checkHistory(body, max_channel);
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
