// libFuzzer target for the client protocol parser and the frame encoders.
// The property: nothing a client sends makes the relay emit a frame that is not valid JSON, and
// nothing the parser accepts is anything but valid JSON with a valid channel.

#include <simdjson.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "relay/protocol/protocol.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using wsrelay::fuzz::check;

using namespace wsrelay;
using namespace wsrelay::protocol;

constexpr size_t kMaxMessage = 2048;  // below libFuzzer's -max_len, so "too big" is reached too
constexpr size_t kMaxChannel = 16;
constexpr uint64_t kMaxId = (uint64_t{1} << 53) - 1;

bool isJsonSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

simdjson::dom::parser& domParser() {
    static simdjson::dom::parser parser;
    return parser;
}

bool validJson(std::string_view text) {
    simdjson::padded_string padded(text);
    return domParser().parse(padded).error() == simdjson::SUCCESS;
}

// Returns the payload of a complete, unmasked FIN text frame (a view into `frame`); aborts on
// anything else.
std::string_view textPayload(const FramePtr& frame) {
    check(static_cast<bool>(frame), "null frame");
    const std::string_view bytes = frame->bytes();
    check(bytes.size() >= 2, "short frame");
    check(static_cast<uint8_t>(bytes[0]) == 0x81, "not a FIN text frame", bytes);
    const auto len7 = static_cast<uint8_t>(bytes[1]);
    check((len7 & 0x80) == 0, "server frame is masked", bytes);
    size_t header = 2;
    uint64_t len = len7;
    if (len7 == 126) {
        header = 4;
        len = (uint64_t{static_cast<uint8_t>(bytes[2])} << 8) | static_cast<uint8_t>(bytes[3]);
        check(len > 125, "non-minimal 16-bit length");
    } else if (len7 == 127) {
        header = 10;
        len = 0;
        for (int i = 0; i < 8; ++i) len = (len << 8) | static_cast<uint8_t>(bytes[2 + i]);
        check(len > 0xffff, "non-minimal 64-bit length");
    }
    check(bytes.size() == header + len, "frame length mismatch", bytes);
    return bytes.substr(header);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static Parser parser(kMaxMessage, kMaxChannel);
    const std::string_view message(reinterpret_cast<const char*>(data), size);
    const ParseResult r = parser.parse(message);

    if (r.id) check(*r.id <= kMaxId, "id out of range", message);

    if (!r.ok) {
        const int code = static_cast<int>(r.error);
        check(code == 400 || code == 404 || code == 422, "unexpected error code", message);
        check(!r.reason.empty(), "empty reason", message);
        const FramePtr frame = encodeError(r.id, r.error, r.reason);
        const std::string_view payload = textPayload(frame);
        check(validJson(payload), "error frame is not JSON", payload);
        return 0;
    }

    // Whatever was accepted is JSON as a whole (unknown fields included).
    check(validJson(message), "accepted a message that is not JSON", message);
    const Command& cmd = r.command;
    check(cmd.id == r.id, "command id differs from result id", message);
    if (cmd.op == Op::Ping) {
        const FramePtr frame = encodePong(cmd.id);
        const std::string_view payload = textPayload(frame);
        check(validJson(payload), "pong frame is not JSON", payload);
        return 0;
    }
    if (cmd.op == Op::Refresh) {
        // The token is only handed to the verifier, never echoed: any string will do.
        check(cmd.channel.empty() && cmd.data.empty(), "refresh with a channel or data", message);
        return 0;
    }
    if (cmd.op == Op::Send) {
        check(!cmd.data.empty() && validJson(cmd.data), "send data is not JSON", message);
        // The app's answer is echoed in the same shape (encodeReply).
        const FramePtr reply = encodeReply(cmd.id, cmd.data);
        const std::string_view payload = textPayload(reply);
        check(validJson(payload), "reply frame is not JSON", payload);
        return 0;
    }
    check(validChannel(cmd.channel, kMaxChannel), "accepted an invalid channel", message);
    const FramePtr subscribed = encodeSubscribed(cmd.channel);
    check(validJson(textPayload(subscribed)), "subscribed frame is not JSON");
    const FramePtr unsubscribed = encodeUnsubscribed(cmd.channel, "forbidden");
    check(validJson(textPayload(unsubscribed)), "unsubscribed frame is not JSON");
    if (cmd.id) {
        const FramePtr ack = encodeAck(*cmd.id);
        check(validJson(textPayload(ack)), "ack frame is not JSON");
    }
    if (cmd.op != Op::Publish) return 0;

    check(!cmd.data.empty(), "empty data", message);
    check(!isJsonSpace(cmd.data.front()) && !isJsonSpace(cmd.data.back()), "data not trimmed",
          cmd.data);
    check(validJson(cmd.data), "data is not JSON", cmd.data);
    const FramePtr frame = encodeMessage(cmd.channel, cmd.data);
    const std::string_view payload = textPayload(frame);
    check(validJson(payload), "message frame is not JSON", payload);

    // The encoded frame carries the channel and the data unchanged.
    simdjson::padded_string padded(payload);
    simdjson::dom::element root;
    check(domParser().parse(padded).get(root) == simdjson::SUCCESS, "reparse failed", payload);
    std::string_view channel;
    check(root["channel"].get(channel) == simdjson::SUCCESS && channel == cmd.channel,
          "channel changed", payload);
    check(root["data"].error() == simdjson::SUCCESS, "data missing", payload);
    return 0;
}
