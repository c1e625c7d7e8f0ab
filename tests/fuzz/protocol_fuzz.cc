// libFuzzer target for the client protocol parser and the frame encoders.
// The property: nothing a client sends makes the relay emit a frame that is not valid JSON, and
// nothing the parser accepts is anything but valid JSON with a valid channel. A "since" is only
// accepted on a subscribe or a history, with an offset 0..2^53-1 and an epoch of validEpoch's
// shape, and a "limit" only on a history, 1..2^53-1; written back as a command, both read the
// same; the frames that carry them (ack, subscribed, resubscribed, message, history) are JSON
// holding them, sized as messageFrameSize and kMaxPositionBytes say.

#include <simdjson.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
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

// The command `cmd` stands for, as far as history goes, written back.
std::string historyCommandOf(const Command& cmd) {
    std::string out = cmd.op == Op::History ? R"({"op":"history","channel":")"
                                            : R"({"op":"subscribe","channel":")";
    out.append(cmd.channel);
    out += '"';
    if (cmd.since) {
        out += R"(,"since":{"offset":)" + std::to_string(cmd.since->offset) + R"(,"epoch":")";
        out.append(cmd.since->epoch);
        out += "\"}";
    }
    if (cmd.limit) out += R"(,"limit":)" + std::to_string(*cmd.limit);
    return out + "}";
}

// The history fields of a command: where they may appear, their bounds, and that the command
// written back reads the same.
void checkHistoryFields(const Command& cmd, std::string_view message) {
    if (cmd.since) {
        check(cmd.op == Op::Subscribe || cmd.op == Op::History, "since on another op", message);
        check(cmd.since->offset <= kMaxId, "since offset out of range", message);
        check(validEpoch(cmd.since->epoch), "since epoch of the wrong shape", message);
    }
    if (cmd.limit) {
        check(cmd.op == Op::History, "limit on another op", message);
        check(*cmd.limit >= 1 && *cmd.limit <= kMaxId, "limit out of range", message);
    }
    if (cmd.op != Op::Subscribe && cmd.op != Op::History) return;
    static Parser again(kMaxMessage, kMaxChannel);
    const std::string written = historyCommandOf(cmd);
    const ParseResult r = again.parse(written);
    check(r.ok && r.command.op == cmd.op && r.command.channel == cmd.channel,
          "written back, the command reads differently", written);
    check(r.command.since.has_value() == cmd.since.has_value() &&
              (!cmd.since || (r.command.since->offset == cmd.since->offset &&
                              r.command.since->epoch == cmd.since->epoch)),
          "written back, since reads differently", written);
    check(r.command.limit == cmd.limit, "written back, limit reads differently", written);
}

// The frames of a channel with history, at `position`: JSON, holding it.
void checkPositionFrames(const Command& cmd, Position position) {
    const uint64_t id = cmd.id.value_or(0);
    for (const FramePtr& frame :
         {encodeAck(id, position, Recovered::NotAsked), encodeAck(id, position, Recovered::Yes),
          encodeAck(id, position, Recovered::No), encodeSubscribed(cmd.channel, position),
          encodeResubscribed(cmd.channel, position)}) {
        const std::string_view payload = textPayload(frame);
        simdjson::padded_string padded(payload);
        simdjson::dom::element root;
        check(domParser().parse(padded).get(root) == simdjson::SUCCESS, "frame is not JSON",
              payload);
        uint64_t offset = 0;
        std::string_view epoch;
        check(root["offset"].get(offset) == simdjson::SUCCESS && offset == position.offset &&
                  root["epoch"].get(epoch) == simdjson::SUCCESS && epoch == position.epoch,
              "frame does not hold the position", payload);
    }
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
    checkHistoryFields(cmd, message);
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
    // A position as the relay would hand it out: the client's, or one made of the id (up to the
    // widest: a 20-digit offset and a kMaxEpochBytes epoch).
    static constexpr std::string_view kEpochs = "abcdefghijklmnopqrstuvwxyz012345";
    static_assert(kEpochs.size() == kMaxEpochBytes);
    const uint64_t id = cmd.id.value_or(0);
    const Position position =
        cmd.since.value_or(Position{UINT64_MAX - id, kEpochs.substr(0, 1 + id % kMaxEpochBytes)});
    checkPositionFrames(cmd, position);
    if (cmd.op == Op::History) {
        const HistoryItem items[] = {{position.offset, "{}"}, {kMaxId, "[1]"}};
        const FramePtr frame = encodeHistory(cmd.id, cmd.channel, items, position);
        check(validJson(textPayload(frame)), "history frame is not JSON", textPayload(frame));
        return 0;
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

    // With a position: JSON, sized exactly as messageFrameSize says, within kMaxPositionBytes of
    // the plain frame; in a history answer (frame and HTTP body) too.
    const FramePtr positioned = encodeMessage(cmd.channel, cmd.data, position);
    const std::string_view positioned_payload = textPayload(positioned);
    check(validJson(positioned_payload), "positioned message frame is not JSON",
          positioned_payload);
    check(positioned->size() == messageFrameSize(cmd.channel, cmd.data, position),
          "messageFrameSize with a position is not the frame's size", positioned_payload);
    check(positioned->size() <= frame->size() + kMaxPositionBytes,
          "a position added more than kMaxPositionBytes", positioned_payload);
    const HistoryItem item{position.offset, cmd.data};
    const FramePtr history = encodeHistory(cmd.id, cmd.channel, {&item, 1}, position);
    check(validJson(textPayload(history)), "history frame is not JSON", textPayload(history));
    std::string body;
    appendHistoryBody({&item, 1}, position, body);
    check(validJson(body), "history body is not JSON", body);
    return 0;
}
