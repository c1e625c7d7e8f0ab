// The history part of the client protocol: "since" and "limit" in commands, the history op, and
// the frames that carry a channel's position.

#include <gtest/gtest.h>
#include <simdjson.h>

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "relay/protocol/protocol.h"
#include "tests/unit/decoded_frame.h"

namespace wsrelay::protocol {
namespace {

constexpr uint64_t kMaxSafe = 9007199254740991;  // 2^53 - 1
constexpr uint64_t kMaxOffset = std::numeric_limits<uint64_t>::max();
const std::string kLongestEpoch(kMaxEpochBytes, 'Z');

class ProtocolHistoryTest : public ::testing::Test {
protected:
    ParseResult parse(std::string_view message) { return parser_.parse(message); }

    void expectError(std::string_view message, ErrorCode code, std::string_view reason,
                     std::optional<uint64_t> id = std::nullopt) {
        SCOPED_TRACE(std::string(message));
        const ParseResult r = parse(message);
        EXPECT_FALSE(r.ok);
        EXPECT_EQ(static_cast<int>(r.error), static_cast<int>(code));
        EXPECT_EQ(r.reason, reason);
        EXPECT_EQ(r.id, id);
    }

    // A subscribe whose "since" is `since_text`.
    ParseResult subscribeSince(std::string_view since_text) {
        return parse(R"({"op":"subscribe","channel":"c","since":)" + std::string(since_text) +
                     R"(,"id":9})");
    }

    // Parses `payload` as JSON in a test-owned parser; fails the test when it is not.
    simdjson::dom::element json(std::string_view payload) {
        doc_ = simdjson::padded_string(payload);
        simdjson::dom::element root;
        EXPECT_EQ(dom_.parse(doc_).get(root), simdjson::SUCCESS) << payload;
        return root;
    }

    Parser parser_{65536, 255};
    simdjson::dom::parser dom_;
    simdjson::padded_string doc_;
};

// ---- validEpoch ----

TEST_F(ProtocolHistoryTest, EpochIsOneToThirtyTwoLettersOrDigits) {
    EXPECT_TRUE(validEpoch("a"));
    EXPECT_TRUE(validEpoch("0"));
    EXPECT_TRUE(validEpoch("azAZ09"));
    EXPECT_TRUE(validEpoch(kLongestEpoch));
    EXPECT_FALSE(validEpoch(""));
    EXPECT_FALSE(validEpoch(kLongestEpoch + "Z"));
    for (int c = 0; c < 256; ++c) {
        const char ch = static_cast<char>(c);
        const bool alnum =
            (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        EXPECT_EQ(validEpoch(std::string_view(&ch, 1)), alnum) << c;
        EXPECT_EQ(validEpoch("ab" + std::string(1, ch) + "cd"), alnum) << c;
    }
}

// ---- since and limit in commands ----

TEST_F(ProtocolHistoryTest, SubscribeWithSince) {
    ParseResult r = parse(
        R"({"op":"subscribe","channel":"room:1","since":{"offset":12,"epoch":"ab12CD"},"id":1})");
    ASSERT_TRUE(r.ok) << r.reason;
    EXPECT_EQ(r.command.op, Op::Subscribe);
    EXPECT_EQ(r.command.channel, "room:1");
    ASSERT_TRUE(r.command.since.has_value());
    EXPECT_EQ(r.command.since->offset, 12u);
    EXPECT_EQ(r.command.since->epoch, "ab12CD");
    EXPECT_FALSE(r.command.limit.has_value());
    EXPECT_EQ(r.command.id, 1u);

    // Any order, any whitespace, escaped keys matched by value.
    r = parse(" { \"since\" : { \"epoch\" : \"e\" ,\n \"offset\" : 0 } , \"channel\":\"c\",\"op\":"
              "\"subscribe\" } ");
    ASSERT_TRUE(r.ok) << r.reason;
    ASSERT_TRUE(r.command.since.has_value());
    EXPECT_EQ(r.command.since->offset, 0u);
    EXPECT_EQ(r.command.since->epoch, "e");
    r = subscribeSince(R"({"\u006fffset":3,"ep\u006fch":"x"})");
    ASSERT_TRUE(r.ok) << r.reason;
    EXPECT_EQ(r.command.since->offset, 3u);
}

TEST_F(ProtocolHistoryTest, SubscribeWithoutSinceHasNone) {
    const ParseResult r = parse(R"({"op":"subscribe","channel":"c"})");
    ASSERT_TRUE(r.ok) << r.reason;
    EXPECT_FALSE(r.command.since.has_value());
    EXPECT_FALSE(r.command.limit.has_value());
}

TEST_F(ProtocolHistoryTest, OffsetBounds) {
    ParseResult r = subscribeSince(R"({"offset":9007199254740991,"epoch":"e"})");
    ASSERT_TRUE(r.ok) << r.reason;
    EXPECT_EQ(r.command.since->offset, kMaxSafe);
    r = subscribeSince(R"({"offset":0,"epoch":"e"})");
    ASSERT_TRUE(r.ok) << r.reason;
    EXPECT_EQ(r.command.since->offset, 0u);

    for (const char* offset :
         {"-1", "-0", "1.0", "1.5", "1e3", "1E3", "0e0", "9007199254740992", "10000000000000000",
          "18446744073709551615", "-9223372036854775808", R"("5")", "null", "true", "[1]", "{}"}) {
        expectError(R"({"op":"subscribe","channel":"c","since":{"offset":)" + std::string(offset) +
                        R"(,"epoch":"e"},"id":4})",
                    ErrorCode::BadRequest, kInvalidSinceOffset, 4);
    }
    // A number simdjson cannot hold, or not JSON at all, is malformed like anywhere else.
    for (const char* offset : {"18446744073709551616", "01", "1.", "-"}) {
        expectError(R"({"op":"subscribe","channel":"c","since":{"offset":)" + std::string(offset) +
                        R"(,"epoch":"e"},"id":4})",
                    ErrorCode::BadRequest, "malformed JSON", 4);
    }
}

TEST_F(ProtocolHistoryTest, EpochShape) {
    ParseResult r = subscribeSince(R"({"offset":1,"epoch":")" + kLongestEpoch + "\"}");
    ASSERT_TRUE(r.ok) << r.reason;
    EXPECT_EQ(r.command.since->epoch, kLongestEpoch);

    const std::vector<std::string> bad = {
        R"("")",       "\"" + kLongestEpoch + "Z\"",
        R"("a-b")",    R"("a b")",
        R"("a_b")",    "\"caf\xc3\xa9\"",
        R"("\u0041")", R"("a\"b")",
        R"("a\\b")",   "5",
        "null",        "true",
        R"(["a"])",    R"({"e":"a"})",
    };
    for (const std::string& epoch : bad) {
        expectError(R"({"op":"subscribe","channel":"c","since":{"offset":1,"epoch":)" + epoch +
                        R"(},"id":5})",
                    ErrorCode::BadRequest, kInvalidSinceEpoch, 5);
    }
    expectError(R"({"op":"subscribe","channel":"c","since":{"offset":1,"epoch":"a\x"},"id":5})",
                ErrorCode::BadRequest, "malformed JSON", 5);
}

TEST_F(ProtocolHistoryTest, SinceMustBeExactlyOffsetAndEpoch) {
    for (const char* since :
         {"5", R"("1:e")", "null", "true", "[]", "[1,\"e\"]", "{}", R"({"offset":1})",
          R"({"epoch":"e"})", R"({"offset":1,"epoch":"e","x":1})",
          R"({"x":null,"offset":1,"epoch":"e"})", R"({"Offset":1,"epoch":"e"})"}) {
        expectError(R"({"op":"subscribe","channel":"c","id":6,"since":)" + std::string(since) + "}",
                    ErrorCode::BadRequest, kInvalidSince, 6);
    }
}

TEST_F(ProtocolHistoryTest, SinceHoldingInvalidJsonIsMalformed) {
    for (const char* since : {
             R"({"offset":1,"epoch":"e","x":[1,}})",
             R"({"offset":1 "epoch":"e"})",
             R"({"offset":1,"epoch":"e",})",
             R"({"offset":1,"epoch":"e")",
             R"({"epoch":"e":"f","offset":1})",
             R"({"offset":1,"epoch":"e"}})",
             R"({"offset":1,"epoch":"e"]})",
             R"({offset:1,"epoch":"e"})",
             R"(x)",
         }) {
        SCOPED_TRACE(since);
        const ParseResult r = subscribeSince(since);
        EXPECT_FALSE(r.ok);
        EXPECT_EQ(r.error, ErrorCode::BadRequest);
        EXPECT_EQ(r.reason, "malformed JSON");
    }
}

TEST_F(ProtocolHistoryTest, DuplicateFields) {
    // At the top level, whatever the op: "since" and "limit" are fields the reader uses.
    expectError(
        R"({"op":"subscribe","channel":"c","since":{"offset":1,"epoch":"e"},"since":{"offset":2,"epoch":"e"},"id":1})",
        ErrorCode::BadRequest, kDuplicateField, 1);
    expectError(R"({"op":"history","channel":"c","limit":1,"limit":2,"id":1})",
                ErrorCode::BadRequest, kDuplicateField, 1);
    expectError(R"({"op":"publish","channel":"c","data":1,"since":5,"since":6})",
                ErrorCode::BadRequest, kDuplicateField);
    expectError(R"({"op":"ping","limit":1,"\u006cimit":1})", ErrorCode::BadRequest,
                kDuplicateField);
    // Inside since, for the ops that read it.
    expectError(
        R"({"op":"subscribe","channel":"c","since":{"offset":1,"offset":2,"epoch":"e"},"id":2})",
        ErrorCode::BadRequest, kDuplicateField, 2);
    expectError(
        R"({"op":"history","channel":"c","since":{"epoch":"e","offset":1,"epoch":"f"},"id":2})",
        ErrorCode::BadRequest, kDuplicateField, 2);
    expectError(R"({"op":"history","channel":"c","since":{"epoch":"e","offset":1,"epoch":"e"}})",
                ErrorCode::BadRequest, kDuplicateField);
}

TEST_F(ProtocolHistoryTest, History) {
    ParseResult r = parse(
        R"({"op":"history","channel":"news","limit":50,"since":{"offset":7,"epoch":"E1"},"id":3})");
    ASSERT_TRUE(r.ok) << r.reason;
    EXPECT_EQ(r.command.op, Op::History);
    EXPECT_EQ(r.command.channel, "news");
    EXPECT_EQ(r.command.limit, 50u);
    ASSERT_TRUE(r.command.since.has_value());
    EXPECT_EQ(r.command.since->offset, 7u);
    EXPECT_EQ(r.command.since->epoch, "E1");
    EXPECT_EQ(r.command.id, 3u);
    EXPECT_TRUE(r.command.data.empty());

    r = parse(R"({"op":"history","channel":"news"})");
    ASSERT_TRUE(r.ok) << r.reason;
    EXPECT_EQ(r.command.op, Op::History);
    EXPECT_FALSE(r.command.limit.has_value());
    EXPECT_FALSE(r.command.since.has_value());
    EXPECT_FALSE(r.command.id.has_value());
}

TEST_F(ProtocolHistoryTest, HistoryNeedsAChannel) {
    expectError(R"({"op":"history","limit":1,"id":1})", ErrorCode::BadRequest, "missing channel",
                1);
    expectError(R"({"op":"history","channel":7})", ErrorCode::BadRequest,
                "channel must be a string");
    expectError(R"({"op":"history","channel":"a b","id":2})", ErrorCode::InvalidChannel,
                "invalid channel name", 2);
    expectError(R"({"op":"History","channel":"c"})", ErrorCode::UnknownOp, "unknown op");
}

TEST_F(ProtocolHistoryTest, LimitBounds) {
    ParseResult r = parse(R"({"op":"history","channel":"c","limit":1})");
    ASSERT_TRUE(r.ok) << r.reason;
    EXPECT_EQ(r.command.limit, 1u);
    r = parse(R"({"op":"history","channel":"c","limit":9007199254740991})");
    ASSERT_TRUE(r.ok) << r.reason;
    EXPECT_EQ(r.command.limit, kMaxSafe);

    for (const char* limit : {"0", "-0", "-1", "1.0", "2.5", "1e2", "9007199254740992",
                              "18446744073709551615", R"("10")", "null", "false", "[10]", "{}"}) {
        expectError(R"({"op":"history","channel":"c","id":8,"limit":)" + std::string(limit) + "}",
                    ErrorCode::BadRequest, kInvalidLimit, 8);
    }
    expectError(R"({"op":"history","channel":"c","id":8,"limit":18446744073709551616})",
                ErrorCode::BadRequest, "malformed JSON", 8);
    expectError(R"({"op":"history","channel":"c","id":8,"limit":010})", ErrorCode::BadRequest,
                "malformed JSON", 8);
}

TEST_F(ProtocolHistoryTest, OpsThatDoNotReadSinceOrLimitIgnoreThem) {
    // Ignored like "token" on a subscribe: invalid contents do not matter, but they must be JSON.
    ParseResult r = parse(R"({"op":"publish","channel":"c","data":1,"since":5,"limit":0})");
    ASSERT_TRUE(r.ok) << r.reason;
    EXPECT_FALSE(r.command.since.has_value());
    EXPECT_FALSE(r.command.limit.has_value());
    r = parse(R"({"op":"unsubscribe","channel":"c","since":{"offset":1,"epoch":"e"}})");
    ASSERT_TRUE(r.ok) << r.reason;
    EXPECT_FALSE(r.command.since.has_value());
    r = parse(R"({"op":"ping","since":{"offset":1,"offset":-1},"limit":"x"})");
    ASSERT_TRUE(r.ok) << r.reason;
    r = parse(R"({"op":"send","data":{},"since":null})");
    ASSERT_TRUE(r.ok) << r.reason;
    r = parse(R"({"op":"refresh","token":"t","since":[],"limit":-1})");
    ASSERT_TRUE(r.ok) << r.reason;
    // A subscribe reads since but not limit.
    r = parse(R"({"op":"subscribe","channel":"c","limit":0})");
    ASSERT_TRUE(r.ok) << r.reason;
    EXPECT_FALSE(r.command.limit.has_value());

    expectError(R"({"op":"ping","since":{"offset":[1,}},"id":3})", ErrorCode::BadRequest,
                "malformed JSON", 3);
    expectError(R"({"op":"publish","channel":"c","data":1,"limit":01})", ErrorCode::BadRequest,
                "malformed JSON");
}

TEST_F(ProtocolHistoryTest, ErrorsComeInTheDocumentedOrder) {
    // The channel before since, since before limit.
    expectError(R"({"op":"history","channel":"a b","since":5,"limit":0,"id":1})",
                ErrorCode::InvalidChannel, "invalid channel name", 1);
    expectError(R"({"op":"history","since":5,"limit":0,"id":1})", ErrorCode::BadRequest,
                "missing channel", 1);
    expectError(R"({"op":"history","channel":"c","limit":0,"since":5,"id":1})",
                ErrorCode::BadRequest, kInvalidSince, 1);
    // The first problem inside since.
    expectError(R"({"op":"history","channel":"c","since":{"offset":-1,"epoch":""}})",
                ErrorCode::BadRequest, kInvalidSinceOffset);
    expectError(R"({"op":"history","channel":"c","since":{"epoch":"","offset":-1}})",
                ErrorCode::BadRequest, kInvalidSinceEpoch);
    // A duplicate at the top level before any of them.
    expectError(R"({"op":"history","channel":"a b","channel":"c","since":5})",
                ErrorCode::BadRequest, kDuplicateField);
    // A bad id is reported as soon as it is read.
    expectError(R"({"op":"history","channel":"c","since":5,"id":-1})", ErrorCode::BadRequest,
                "id must be a non-negative integer");
}

TEST_F(ProtocolHistoryTest, TheEpochViewPointsIntoTheParser) {
    std::string message = R"({"op":"subscribe","channel":"c","since":{"offset":1,"epoch":"abc"}})";
    const ParseResult r = parse(message);
    ASSERT_TRUE(r.ok) << r.reason;
    message.assign(message.size(), '#');
    EXPECT_EQ(r.command.since->epoch, "abc");
}

// ---- frames with a position ----

TEST_F(ProtocolHistoryTest, EncodeMessageWithPosition) {
    const DecodedFrame f = decodeText(encodeMessage("room", R"({"a":1})", {42, "ep0ch"}));
    EXPECT_EQ(f.payload,
              R"({"op":"message","channel":"room","offset":42,"epoch":"ep0ch","data":{"a":1}})");
    simdjson::dom::element root = json(f.payload);
    EXPECT_EQ(std::string_view(root["op"]), "message");
    EXPECT_EQ(std::string_view(root["channel"]), "room");
    EXPECT_EQ(uint64_t(root["offset"]), 42u);
    EXPECT_EQ(std::string_view(root["epoch"]), "ep0ch");
    EXPECT_EQ(int64_t(root["data"]["a"]), 1);

    const DecodedFrame widest = decodeText(encodeMessage("c", "null", {kMaxOffset, kLongestEpoch}));
    root = json(widest.payload);
    EXPECT_EQ(uint64_t(root["offset"]), kMaxOffset);
    EXPECT_EQ(std::string_view(root["epoch"]), kLongestEpoch);
}

TEST_F(ProtocolHistoryTest, MessageFrameSizeWithPositionIsExact) {
    for (const Position position :
         {Position{0, "e"}, Position{1234567, "abcdef12"}, Position{kMaxOffset, kLongestEpoch}}) {
        for (size_t data_len : {size_t{1}, size_t{40}, size_t{60}, size_t{100}, size_t{65400},
                                size_t{65460}, size_t{65500}, size_t{70000}}) {
            const std::string data(data_len, '7');
            const FramePtr frame = encodeMessage("room:42", data, position);
            EXPECT_EQ(messageFrameSize("room:42", data, position), frame->size()) << data_len;
            EXPECT_EQ(frame->size(), frame->capacity());  // sized exactly, allocated once
        }
    }
}

TEST_F(ProtocolHistoryTest, MaxPositionBytesBoundsWhatAPositionAdds) {
    // Every payload length across the 125 and 65535 header bounds, with the widest position: the
    // bound holds, and is reached (it is not larger than it needs to be).
    const Position widest{kMaxOffset, kLongestEpoch};
    const size_t overhead = std::string_view(R"({"op":"message","channel":"c","data":})").size();
    size_t most = 0;
    for (const auto& [from, to] :
         {std::pair<size_t, size_t>{1, 260}, std::pair<size_t, size_t>{65300, 65600}}) {
        for (size_t payload = std::max(from, overhead + 1); payload < to; ++payload) {
            const std::string data(payload - overhead, '1');
            const size_t plain = messageFrameSize("c", data);
            const size_t with = encodeMessage("c", data, widest)->size();
            ASSERT_LE(with, plain + kMaxPositionBytes) << payload;
            most = std::max(most, with - plain);
        }
    }
    EXPECT_EQ(most, kMaxPositionBytes);
}

TEST_F(ProtocolHistoryTest, EncodeAckWithPosition) {
    EXPECT_EQ(decodeText(encodeAck(7, {100, "E"}, Recovered::NotAsked)).payload,
              R"({"op":"ack","id":7,"offset":100,"epoch":"E"})");
    EXPECT_EQ(decodeText(encodeAck(7, {100, "E"}, Recovered::Yes)).payload,
              R"({"op":"ack","id":7,"offset":100,"epoch":"E","recovered":true})");
    const DecodedFrame f = decodeText(encodeAck(kMaxSafe, {0, "abc"}, Recovered::No));
    EXPECT_EQ(f.payload,
              R"({"op":"ack","id":9007199254740991,"offset":0,"epoch":"abc","recovered":false})");
    simdjson::dom::element root = json(f.payload);
    EXPECT_EQ(uint64_t(root["id"]), kMaxSafe);
    EXPECT_EQ(uint64_t(root["offset"]), 0u);
    EXPECT_EQ(std::string_view(root["epoch"]), "abc");
    EXPECT_FALSE(bool(root["recovered"]));
    EXPECT_TRUE(
        bool(json(decodeText(encodeAck(1, {2, "e"}, Recovered::Yes)).payload)["recovered"]));
    // Without a position, the ack is as before.
    EXPECT_EQ(decodeText(encodeAck(7)).payload, R"({"op":"ack","id":7})");
}

TEST_F(ProtocolHistoryTest, EncodeResubscribedWithPosition) {
    const DecodedFrame f = decodeText(encodeResubscribed("room:1", {9, "n3w"}));
    EXPECT_EQ(f.payload,
              R"({"op":"resubscribed","channel":"room:1","gap":true,"offset":9,"epoch":"n3w"})");
    simdjson::dom::element root = json(f.payload);
    EXPECT_EQ(std::string_view(root["channel"]), "room:1");
    EXPECT_TRUE(bool(root["gap"]));
    EXPECT_EQ(uint64_t(root["offset"]), 9u);
    EXPECT_EQ(decodeText(encodeResubscribed("room:1")).payload,
              R"({"op":"resubscribed","channel":"room:1","gap":true})");
}

TEST_F(ProtocolHistoryTest, EncodeSubscribedWithPosition) {
    const DecodedFrame f = decodeText(encodeSubscribed("room:1", {kMaxOffset, "e"}));
    EXPECT_EQ(
        f.payload,
        R"({"op":"subscribed","channel":"room:1","offset":18446744073709551615,"epoch":"e"})");
    simdjson::dom::element root = json(f.payload);
    EXPECT_EQ(uint64_t(root["offset"]), kMaxOffset);
    EXPECT_EQ(decodeText(encodeSubscribed("room:1")).payload,
              R"({"op":"subscribed","channel":"room:1"})");
}

TEST_F(ProtocolHistoryTest, EncodeHistory) {
    const std::vector<HistoryItem> items = {{5, R"({"t":"a"})"}, {6, "[1, 2]"}, {8, R"("s")"}};
    DecodedFrame f = decodeText(encodeHistory(3, "news", items, {8, "Ep"}));
    EXPECT_EQ(
        f.payload,
        R"({"op":"history","id":3,"channel":"news","messages":[{"offset":5,"data":{"t":"a"}},)"
        R"({"offset":6,"data":[1, 2]},{"offset":8,"data":"s"}],"offset":8,"epoch":"Ep"})");
    simdjson::dom::element root = json(f.payload);
    EXPECT_EQ(std::string_view(root["op"]), "history");
    EXPECT_EQ(uint64_t(root["id"]), 3u);
    EXPECT_EQ(std::string_view(root["channel"]), "news");
    simdjson::dom::array messages = root["messages"];
    ASSERT_EQ(messages.size(), 3u);
    EXPECT_EQ(uint64_t(messages.at(1)["offset"]), 6u);
    EXPECT_EQ(int64_t(messages.at(1)["data"].at(1)), 2);
    EXPECT_EQ(std::string_view(messages.at(2)["data"]), "s");
    EXPECT_EQ(uint64_t(root["offset"]), 8u);
    EXPECT_EQ(std::string_view(root["epoch"]), "Ep");

    // No id, no messages.
    f = decodeText(encodeHistory(std::nullopt, "c", {}, {0, "e"}));
    EXPECT_EQ(f.payload, R"({"op":"history","channel":"c","messages":[],"offset":0,"epoch":"e"})");
    json(f.payload);
    f = decodeText(encodeHistory(0, "c", std::span<const HistoryItem>(items).first(1), {5, "e"}));
    EXPECT_EQ(f.payload,
              R"({"op":"history","id":0,"channel":"c","messages":[{"offset":5,"data":{"t":"a"}}],)"
              R"("offset":5,"epoch":"e"})");
}

TEST_F(ProtocolHistoryTest, AppendHistoryBody) {
    const std::vector<HistoryItem> items = {{1, "true"}, {kMaxOffset, R"({"x":[]})"}};
    std::string out = "HTTP body: ";
    appendHistoryBody(items, {kMaxOffset, "z9"}, out);
    EXPECT_EQ(out, R"(HTTP body: {"messages":[{"offset":1,"data":true},)"
                   R"({"offset":18446744073709551615,"data":{"x":[]}}],)"
                   R"("offset":18446744073709551615,"epoch":"z9"})");
    simdjson::dom::element root = json(std::string_view(out).substr(11));
    simdjson::dom::array messages = root["messages"];
    ASSERT_EQ(messages.size(), 2u);
    EXPECT_TRUE(bool(messages.at(0)["data"]));
    EXPECT_EQ(std::string_view(root["epoch"]), "z9");

    out.clear();
    appendHistoryBody({}, {3, "e"}, out);
    EXPECT_EQ(out, R"({"messages":[],"offset":3,"epoch":"e"})");
}

TEST_F(ProtocolHistoryTest, NewFramesAreSizedExactly) {
    const std::vector<HistoryItem> items = {{1, "1"}, {22, R"("two")"}};
    for (const FramePtr& frame :
         {encodeMessage("x", "[1]", {1, "e"}), encodeAck(1, {2, "e"}, Recovered::NotAsked),
          encodeAck(12, {345, "ee"}, Recovered::Yes), encodeAck(1, {0, "e"}, Recovered::No),
          encodeResubscribed("c", {1, "e"}), encodeSubscribed("c", {1, "e"}),
          encodeHistory(1, "c", items, {22, "e"}),
          encodeHistory(std::nullopt, "c", {}, {0, "e"})}) {
        EXPECT_EQ(frame->size(), frame->capacity()) << frame->bytes();
    }
}

// Each new encoder around the 125/126 and 65535/65536 payload lengths, where the frame header
// grows from 2 to 4 to 10 bytes.
TEST_F(ProtocolHistoryTest, NewFramesHeaderBoundaries) {
    auto headerFor = [](size_t payload) -> size_t {
        return payload <= 125 ? 2 : payload <= 65535 ? 4 : 10;
    };
    auto check = [&](const FramePtr& frame, size_t payload) {
        const DecodedFrame f = decodeText(frame);
        EXPECT_EQ(f.payload_len, payload);
        EXPECT_EQ(f.header_len, headerFor(payload));
        EXPECT_EQ(frame->size(), frame->capacity());
        json(f.payload);
    };
    const Position position{77, "ep"};
    for (size_t payload : {size_t{125}, size_t{126}, size_t{65535}, size_t{65536}}) {
        SCOPED_TRACE(payload);
        // message: the data fills the rest.
        const size_t message_overhead =
            std::string_view(R"({"op":"message","channel":"c","offset":77,"epoch":"ep","data":""})")
                .size();
        check(encodeMessage("c", "\"" + std::string(payload - message_overhead, 'd') + "\"",
                            position),
              payload);
        // subscribed and resubscribed: the channel name fills it.
        const size_t subscribed_overhead =
            std::string_view(R"({"op":"subscribed","channel":"","offset":77,"epoch":"ep"})").size();
        check(encodeSubscribed(std::string(payload - subscribed_overhead, 's'), position), payload);
        const size_t resubscribed_overhead =
            std::string_view(
                R"({"op":"resubscribed","channel":"","gap":true,"offset":77,"epoch":"ep"})")
                .size();
        check(encodeResubscribed(std::string(payload - resubscribed_overhead, 'r'), position),
              payload);
        // history: one message's data fills it.
        const size_t history_overhead =
            std::string_view(R"({"op":"history","id":1,"channel":"c","messages":)"
                             R"([{"offset":5,"data":""}],"offset":77,"epoch":"ep"})")
                .size();
        const std::string data = "\"" + std::string(payload - history_overhead, 'h') + "\"";
        const HistoryItem item{5, data};
        check(encodeHistory(1, "c", std::span<const HistoryItem>(&item, 1), position), payload);
    }
    // The ack stays short: the largest id, offset and epoch, with "recovered":false, make 125.
    const DecodedFrame ack =
        decodeText(encodeAck(kMaxSafe, {kMaxOffset, kLongestEpoch}, Recovered::No));
    EXPECT_EQ(ack.payload_len, 125u);
    EXPECT_EQ(ack.header_len, 2u);
    json(ack.payload);
}

}  // namespace
}  // namespace wsrelay::protocol
