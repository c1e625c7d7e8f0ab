#include "relay/protocol/protocol.h"

#include <gtest/gtest.h>
#include <simdjson.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "tests/unit/decoded_frame.h"

namespace wsrelay::protocol {
namespace {

constexpr size_t kMaxMessage = 65536;
constexpr size_t kMaxChannel = 255;
constexpr uint64_t kMaxId = 9007199254740991;  // 2^53 - 1

class ProtocolTest : public ::testing::Test {
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

    void expectMalformed(std::string_view message) {
        SCOPED_TRACE(std::string(message));
        const ParseResult r = parse(message);
        EXPECT_FALSE(r.ok);
        EXPECT_EQ(static_cast<int>(r.error), 400);
        EXPECT_TRUE(r.reason == "malformed JSON" || r.reason == "expected a JSON object")
            << r.reason;
    }

    std::string publishData(std::string_view data_text) {
        const ParseResult r =
            parse(R"({"op":"publish","channel":"c","data":)" + std::string(data_text) + "}");
        EXPECT_TRUE(r.ok) << data_text << ": " << r.reason;
        return std::string(r.command.data);
    }

    // Parses `payload` as JSON in a test-owned parser; fails the test when it is not.
    simdjson::dom::element json(std::string_view payload) {
        doc_ = simdjson::padded_string(payload);
        simdjson::dom::element root;
        auto err = dom_.parse(doc_).get(root);
        EXPECT_EQ(err, simdjson::SUCCESS) << payload;
        return root;
    }

    Parser parser_{kMaxMessage, kMaxChannel};
    simdjson::dom::parser dom_;
    simdjson::padded_string doc_;
};

// ---- commands ----

TEST_F(ProtocolTest, Subscribe) {
    const ParseResult r = parse(R"({"op":"subscribe","channel":"room:1","id":7})");
    ASSERT_TRUE(r.ok) << r.reason;
    EXPECT_EQ(r.command.op, Op::Subscribe);
    EXPECT_EQ(r.command.channel, "room:1");
    EXPECT_EQ(r.command.id, 7u);
    EXPECT_EQ(r.id, 7u);
    EXPECT_TRUE(r.command.data.empty());
}

TEST_F(ProtocolTest, UnsubscribeWithoutId) {
    const ParseResult r = parse(R"({"op":"unsubscribe","channel":"news"})");
    ASSERT_TRUE(r.ok) << r.reason;
    EXPECT_EQ(r.command.op, Op::Unsubscribe);
    EXPECT_EQ(r.command.channel, "news");
    EXPECT_FALSE(r.command.id.has_value());
    EXPECT_FALSE(r.id.has_value());
}

TEST_F(ProtocolTest, Publish) {
    const ParseResult r = parse(R"({"op":"publish","channel":"a/b","data":{"x":1},"id":3})");
    ASSERT_TRUE(r.ok) << r.reason;
    EXPECT_EQ(r.command.op, Op::Publish);
    EXPECT_EQ(r.command.channel, "a/b");
    EXPECT_EQ(r.command.data, R"({"x":1})");
    EXPECT_EQ(r.command.id, 3u);
}

TEST_F(ProtocolTest, Ping) {
    ParseResult r = parse(R"({"op":"ping","id":0})");
    ASSERT_TRUE(r.ok) << r.reason;
    EXPECT_EQ(r.command.op, Op::Ping);
    EXPECT_EQ(r.command.id, 0u);

    r = parse(R"({"op":"ping"})");
    ASSERT_TRUE(r.ok) << r.reason;
    EXPECT_EQ(r.command.op, Op::Ping);
    EXPECT_FALSE(r.command.id.has_value());
}

TEST_F(ProtocolTest, PingIgnoresChannel) {
    const ParseResult r = parse(R"({"op":"ping","channel":"not valid *"})");
    ASSERT_TRUE(r.ok) << r.reason;
    EXPECT_EQ(r.command.op, Op::Ping);
    // Ignored, but still JSON.
    expectError(R"({"op":"ping","channel":"\x","id":2})", ErrorCode::BadRequest, "malformed JSON",
                2);
}

TEST_F(ProtocolTest, FieldOrderAndWhitespaceDoNotMatter) {
    const ParseResult r = parse(" \n{ \"id\" : 9 ,\t\"data\" : [ 1 , 2 ] , \"channel\" : \"c\" , "
                                "\"op\" : \"publish\" }\r\n");
    ASSERT_TRUE(r.ok) << r.reason;
    EXPECT_EQ(r.command.op, Op::Publish);
    EXPECT_EQ(r.command.channel, "c");
    EXPECT_EQ(r.command.data, "[ 1 , 2 ]");
    EXPECT_EQ(r.command.id, 9u);
}

TEST_F(ProtocolTest, UnknownFieldsAreIgnored) {
    const ParseResult r = parse(
        R"({"op":"subscribe","v":2,"opts":{"a":[1,{"b":null}]},"channel":"c","x":"y","z":[]})");
    ASSERT_TRUE(r.ok) << r.reason;
    EXPECT_EQ(r.command.op, Op::Subscribe);
    EXPECT_EQ(r.command.channel, "c");
}

TEST_F(ProtocolTest, EscapedKeysAreMatchedByValue) {
    ParseResult r = parse(R"({"\u006fp":"ping","i\u0064":4})");
    ASSERT_TRUE(r.ok) << r.reason;
    EXPECT_EQ(r.command.op, Op::Ping);
    EXPECT_EQ(r.command.id, 4u);
    // So are escaped op values.
    r = parse(R"({"op":"p\u0069ng","id":5})");
    ASSERT_TRUE(r.ok) << r.reason;
    EXPECT_EQ(r.command.op, Op::Ping);
    expectError(R"({"op":"p\u0069ng\"","id":6})", ErrorCode::UnknownOp, "unknown op", 6);
    expectError(R"({"\u006fp":"ping","op":"ping"})", ErrorCode::BadRequest, "duplicate field");
    expectError(R"({"o\p":"ping"})", ErrorCode::BadRequest, "malformed JSON");
}

// ---- errors ----

TEST_F(ProtocolTest, MissingOp) {
    expectError(R"({"channel":"c","id":5})", ErrorCode::BadRequest, "missing op", 5);
    expectError(R"({})", ErrorCode::BadRequest, "missing op");
}

TEST_F(ProtocolTest, OpNotAString) {
    expectError(R"({"op":1,"id":5})", ErrorCode::BadRequest, "op must be a string", 5);
    expectError(R"({"op":null})", ErrorCode::BadRequest, "op must be a string");
    expectError(R"({"op":["ping"],"id":2})", ErrorCode::BadRequest, "op must be a string", 2);
    expectError(R"({"op":{"a":1}})", ErrorCode::BadRequest, "op must be a string");
}

TEST_F(ProtocolTest, UnknownOp) {
    expectError(R"({"op":"subscribe2","channel":"c","id":11})", ErrorCode::UnknownOp, "unknown op",
                11);
    expectError(R"({"op":"PING"})", ErrorCode::UnknownOp, "unknown op");
    expectError(R"({"op":""})", ErrorCode::UnknownOp, "unknown op");
    expectError(R"({"op":"message","id":1})", ErrorCode::UnknownOp, "unknown op", 1);
}

TEST_F(ProtocolTest, MissingOrMistypedChannel) {
    expectError(R"({"op":"subscribe","id":1})", ErrorCode::BadRequest, "missing channel", 1);
    expectError(R"({"op":"unsubscribe"})", ErrorCode::BadRequest, "missing channel");
    expectError(R"({"op":"publish","data":1,"id":2})", ErrorCode::BadRequest, "missing channel", 2);
    expectError(R"({"op":"subscribe","channel":5,"id":3})", ErrorCode::BadRequest,
                "channel must be a string", 3);
    expectError(R"({"op":"subscribe","channel":null})", ErrorCode::BadRequest,
                "channel must be a string");
    expectError(R"({"op":"subscribe","channel":["a"]})", ErrorCode::BadRequest,
                "channel must be a string");
}

TEST_F(ProtocolTest, InvalidChannelNames) {
    const char* bad[] = {
        R"("")",     R"("a b")",    R"("a*")",   R"("*")",         R"("a\"b")",
        R"("a\\b")", R"("\u0041")", R"("a\/b")", R"("caf\u00e9")", "\"caf\xc3\xa9\"",
        R"("a?b")",  R"("a%20")",   R"("a&b")",  R"("<a>")",       R"("a\tb")",
        R"("a'b")",  R"("a;b")",    R"("a|b")",  "\"(a)\"",        R"("[a]")",
    };
    for (const char* channel : bad) {
        expectError(R"({"op":"subscribe","id":8,"channel":)" + std::string(channel) + "}",
                    ErrorCode::InvalidChannel, "invalid channel name", 8);
    }
}

TEST_F(ProtocolTest, ChannelCharset) {
    const std::string all = "azAZ09_-:./@=+,#!~$";
    const ParseResult r = parse(R"({"op":"subscribe","channel":")" + all + "\"}");
    ASSERT_TRUE(r.ok) << r.reason;
    EXPECT_EQ(r.command.channel, all);

    EXPECT_TRUE(validChannel(all, 255));
    EXPECT_TRUE(validChannel("a", 1));
    EXPECT_FALSE(validChannel("ab", 1));
    EXPECT_FALSE(validChannel("", 255));
    for (int c = 0; c < 256; ++c) {
        const char ch = static_cast<char>(c);
        const bool expected = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                              (c >= '0' && c <= '9') ||
                              std::string_view("_-:./@=+,#!~$").find(ch) != std::string_view::npos;
        EXPECT_EQ(validChannel(std::string_view(&ch, 1), 255), expected) << c;
    }
}

TEST_F(ProtocolTest, ChannelLengthBoundary) {
    const std::string max(kMaxChannel, 'x');
    ParseResult r = parse(R"({"op":"subscribe","channel":")" + max + "\"}");
    ASSERT_TRUE(r.ok) << r.reason;
    EXPECT_EQ(r.command.channel, max);

    expectError(R"({"op":"subscribe","id":1,"channel":")" + max + "x\"}", ErrorCode::InvalidChannel,
                "invalid channel name", 1);

    Parser small(1024, 4);
    EXPECT_TRUE(small.parse(R"({"op":"publish","channel":"abcd","data":0})").ok);
    r = small.parse(R"({"op":"publish","channel":"abcde","data":0})");
    EXPECT_FALSE(r.ok);
    EXPECT_EQ(r.error, ErrorCode::InvalidChannel);
}

TEST_F(ProtocolTest, MalformedChannelStringIsBadRequest) {
    expectError(R"({"op":"subscribe","channel":"a\x","id":1})", ErrorCode::BadRequest,
                "malformed JSON", 1);
}

TEST_F(ProtocolTest, PublishWithoutData) {
    expectError(R"({"op":"publish","channel":"c","id":12})", ErrorCode::BadRequest, "missing data",
                12);
}

TEST_F(ProtocolTest, DuplicateFields) {
    expectError(R"({"op":"ping","op":"ping","id":1})", ErrorCode::BadRequest, "duplicate field", 1);
    expectError(R"({"op":"subscribe","channel":"a","channel":"b"})", ErrorCode::BadRequest,
                "duplicate field");
    expectError(R"({"op":"publish","channel":"a","data":1,"data":2,"id":4})", ErrorCode::BadRequest,
                "duplicate field", 4);
    // Which id would we echo? Neither.
    expectError(R"({"op":"ping","id":1,"id":2})", ErrorCode::BadRequest, "duplicate field");
    // Unknown fields may repeat.
    EXPECT_TRUE(parse(R"({"op":"ping","x":1,"x":2})").ok);
}

TEST_F(ProtocolTest, IdBoundaries) {
    ParseResult r = parse(R"({"op":"ping","id":9007199254740991})");
    ASSERT_TRUE(r.ok) << r.reason;
    EXPECT_EQ(r.command.id, kMaxId);

    const char* bad[] = {"9007199254740992",
                         "18446744073709551615",
                         "18446744073709551616",
                         "-1",
                         "-0",
                         "1.0",
                         "1.5",
                         "1e3",
                         "01",
                         "\"5\"",
                         "null",
                         "true",
                         "[1]",
                         "{}"};
    for (const char* id : bad) {
        expectError(R"({"op":"ping","id":)" + std::string(id) + "}", ErrorCode::BadRequest,
                    "id must be a non-negative integer");
    }
}

TEST_F(ProtocolTest, NotJson) {
    const char* bad[] = {
        "",
        "   ",
        "hello",
        "{",
        "}",
        R"({"op":"ping")",
        R"({"op":"ping",})",
        R"({"op" "ping"})",
        R"({"op":"ping"}})",
        R"({"op":"ping"}x)",
        R"({"op":"ping"} {})",
        R"({"op":"ping"}, 1)",
        R"({op:"ping"})",
        R"({'op':'ping'})",
        R"({"op":"ping","x":})",
        R"({"op":"ping","x":[1,}})",
        R"({"op":"ping","x":tru})",
        R"({"op":"ping","x":"\q"})",
        R"({"op":"ping","x":[1 2]})",
        "{\"op\":\"pi\nng\"}",
        "{\"op\":\"ping\",\"x\":\"\x01\"}",
        "{\"op\":\"ping\",\"x\":\"\xff\"}",
        R"({"op":"ping" "id":1})",
        R"({"op":"ping",,"id":1})",
        R"({,})",
        R"({"op":"ping","x":{"a":[}]})",
        R"({"op":"ping","x":{"a":1]})",
        R"({"op":"publish","channel":"a","data":1 2})",
        R"({"op":"publish","channel":"a","data":[1}})",
        R"({"op":"publish","channel":"a","data":{"a":1]})",
        R"({"op":"publish","channel":"a" "b","data":1})",
        R"({"op":"subscribe","channel":"a"x})",
        // A string followed by ':' must not be taken for a key (simdjson's skip would).
        R"({"op":"publish","channel":"a","data":"x":"y"}})",
        R"({"op":"publish","channel":"a","data":"x": "y" ]]]}}})",
        R"({"op":"subscribe","channel":"a":1})",
        R"({"op":"ping","x":"a":"b"})",
        R"({"op":"ping","x":"a":"b","y":[})",
        R"({"op":"ping":"x"})",
    };
    for (const char* m : bad) expectMalformed(m);
}

TEST_F(ProtocolTest, NotAnObject) {
    expectError("[1]", ErrorCode::BadRequest, "expected a JSON object");
    expectError(R"("ping")", ErrorCode::BadRequest, "expected a JSON object");
    expectError("42", ErrorCode::BadRequest, "expected a JSON object");
    expectError("null", ErrorCode::BadRequest, "expected a JSON object");
    expectError(R"([{"op":"ping"}])", ErrorCode::BadRequest, "expected a JSON object");
}

TEST_F(ProtocolTest, TrailingWhitespaceIsFine) {
    EXPECT_TRUE(parse("{\"op\":\"ping\"} \t\r\n ").ok);
}

TEST_F(ProtocolTest, MalformedValueStillEchoesId) {
    expectError(R"({"id":7,"op":"ping","x":[1,}]})", ErrorCode::BadRequest, "malformed JSON", 7);
    expectError(R"({"op":"publish","channel":"a","data":[1,},"id":8})", ErrorCode::BadRequest,
                "malformed JSON", 8);
}

TEST_F(ProtocolTest, MessageTooBig) {
    Parser small(32, 16);
    const ParseResult r = small.parse(R"({"op":"publish","channel":"c","data":"0123456789"})");
    EXPECT_FALSE(r.ok);
    EXPECT_EQ(r.error, ErrorCode::BadRequest);
    EXPECT_EQ(r.reason, "message too big");
    EXPECT_TRUE(small.parse(R"({"op":"ping","id":123456789012})").ok);  // exactly 32 bytes
}

// ---- data passthrough ----

TEST_F(ProtocolTest, DataPassthroughIsByteExact) {
    const char* values[] = {
        R"({"a":[1,2,{"b":"c"}],"d":null})",
        R"({ "spaced" :  [ 1 ,2 ] , "x" : { } })",
        R"([])",
        R"([1,"two",3.0,-4e-5,true,false,null,[],{}])",
        R"("hello")",
        R"("esc \" \\ \/ \b\f\n\r\t \u00e9 \ud83d\ude00")",
        "\"caf\xc3\xa9 \xf0\x9f\x98\x80\"",
        R"(0)",
        R"(-12.5e+3)",
        R"(18446744073709551615)",
        R"(-9223372036854775808)",
        R"(1.7976931348623157e308)",
        R"(123456789012345678901234567890.5)",
        R"(true)",
        R"(false)",
        R"(null)",
        R"({})",
    };
    for (const char* v : values) {
        EXPECT_EQ(publishData(v), v);
        // Also as the middle field, and with whitespace around it.
        const ParseResult r =
            parse(R"({"op":"publish","data": 	 )" + std::string(v) + " \n ,\"channel\":\"c\"}");
        ASSERT_TRUE(r.ok) << v << ": " << r.reason;
        EXPECT_EQ(r.command.data, v);
    }
}

TEST_F(ProtocolTest, DataWhitespaceIsTrimmed) {
    EXPECT_EQ(publishData("  [1, 2]\n\t "), "[1, 2]");
    EXPECT_EQ(publishData(" 5 "), "5");
    EXPECT_EQ(publishData("\r\n\"s\"\r\n"), "\"s\"");
    EXPECT_EQ(publishData(" null"), "null");
}

TEST_F(ProtocolTest, InvalidDataIsRejected) {
    const char* bad[] = {
        "[1,}",  "[1,]", "{\"a\"}", "{\"a\":}", "{\"a\":1,}", "[1 2]",
        "tru",   "nul",  "fals",    "01",       "1.",         "-",
        "+1",    ".5",   "1e",      "\"\\x\"",  "\"\\u12\"",  "[\"a]",
        "{1:2}", "[1]]", "NaN",     "Infinity", "undefined",  "'s'",
    };
    for (const char* d : bad) {
        SCOPED_TRACE(d);
        const ParseResult r =
            parse(R"({"op":"publish","channel":"a","id":3,"data":)" + std::string(d) + "}");
        EXPECT_FALSE(r.ok);
        EXPECT_EQ(r.error, ErrorCode::BadRequest);
    }
    expectError(R"({"op":"publish","channel":"a","data":[1,}, "id":6})", ErrorCode::BadRequest,
                "malformed JSON", 6);
    expectError(R"({"op":"publish","channel":"a","data":tru})", ErrorCode::BadRequest,
                "malformed JSON");
}

// simdjson's limit, documented in docs/protocol.md: integers must fit in 64 bits (signed or
// unsigned) and other numbers in a finite double.
TEST_F(ProtocolTest, NumbersOutsideSimdjsonRangeAreRejected) {
    for (const char* d : {"18446744073709551616", "-9223372036854775809", "1e309", "[1e400]"}) {
        expectError(R"({"op":"publish","channel":"a","data":)" + std::string(d) + "}",
                    ErrorCode::BadRequest, "malformed JSON");
    }
}

TEST_F(ProtocolTest, DataDepthLimit) {
    auto nested = [](int depth) { return std::string(depth, '[') + "1" + std::string(depth, ']'); };
    EXPECT_EQ(publishData(nested(64)), nested(64));
    expectError(R"({"op":"publish","channel":"a","id":2,"data":)" + nested(65) + "}",
                ErrorCode::BadRequest, "data too deeply nested", 2);
    std::string objects;
    for (int i = 0; i < 65; ++i) objects += "{\"k\":";
    objects += "0" + std::string(65, '}');
    expectError(R"({"op":"publish","channel":"a","data":)" + objects + "}", ErrorCode::BadRequest,
                "data too deeply nested");
}

TEST_F(ProtocolTest, ViewsPointIntoParserAndBufferIsReused) {
    std::string big =
        R"({"op":"publish","channel":"big","data":")" + std::string(5000, 'z') + "\"}";
    ParseResult r = parse(big);
    ASSERT_TRUE(r.ok);
    EXPECT_EQ(r.command.data.size(), 5002u);
    big.assign(big.size(), '#');  // the views must not depend on the caller's buffer
    EXPECT_EQ(r.command.data[1], 'z');

    // Stale bytes of the longer message must not complete a truncated one.
    EXPECT_TRUE(parse(R"({"op":"ping","id":12345678})").ok);
    EXPECT_FALSE(parse(R"({"op":"ping","id":1)").ok);
    r = parse(R"({"op":"ping","id":1})");
    ASSERT_TRUE(r.ok);
    EXPECT_EQ(r.command.id, 1u);
}

TEST_F(ProtocolTest, ParsedPublishReencodesToValidJson) {
    const ParseResult r = parse(
        R"({"op":"publish","channel":"chat:1","data":{"text":"hi \"there\"","n":[1,2.5]},"id":1})");
    ASSERT_TRUE(r.ok) << r.reason;
    const FramePtr frame = encodeMessage(r.command.channel, r.command.data);
    const DecodedFrame f = decodeText(frame);
    simdjson::dom::element root = json(f.payload);
    EXPECT_EQ(std::string_view(root["op"]), "message");
    EXPECT_EQ(std::string_view(root["channel"]), "chat:1");
    EXPECT_EQ(std::string_view(root["data"]["text"]), "hi \"there\"");
    EXPECT_EQ(double(root["data"]["n"].at(1)), 2.5);
}

// ---- encoders ----

TEST_F(ProtocolTest, EncodeMessage) {
    const FramePtr frame = encodeMessage("room", R"({"a":1})");
    const DecodedFrame f = decodeText(frame);
    EXPECT_EQ(f.payload, R"({"op":"message","channel":"room","data":{"a":1}})");
    json(f.payload);
}

TEST_F(ProtocolTest, EncodeAck) {
    DecodedFrame f = decodeText(encodeAck(42));
    EXPECT_EQ(f.payload, R"({"op":"ack","id":42})");
    f = decodeText(encodeAck(kMaxId));
    EXPECT_EQ(f.payload, R"({"op":"ack","id":9007199254740991})");
    EXPECT_EQ(uint64_t(json(f.payload)["id"]), kMaxId);
    f = decodeText(encodeAck(0));
    EXPECT_EQ(f.payload, R"({"op":"ack","id":0})");
}

TEST_F(ProtocolTest, EncodePong) {
    EXPECT_EQ(decodeText(encodePong(std::nullopt)).payload, R"({"op":"pong"})");
    const DecodedFrame f = decodeText(encodePong(17));
    EXPECT_EQ(f.payload, R"({"op":"pong","id":17})");
    json(f.payload);
}

TEST_F(ProtocolTest, EncodeError) {
    DecodedFrame f = decodeText(encodeError(5, ErrorCode::UnknownOp, "unknown op"));
    EXPECT_EQ(f.payload, R"({"op":"error","id":5,"code":404,"reason":"unknown op"})");
    json(f.payload);
    f = decodeText(encodeError(std::nullopt, ErrorCode::BadRequest, "malformed JSON"));
    EXPECT_EQ(f.payload, R"({"op":"error","code":400,"reason":"malformed JSON"})");
    json(f.payload);
    f = decodeText(encodeError(0, ErrorCode::LimitExceeded, ""));
    EXPECT_EQ(f.payload, R"({"op":"error","id":0,"code":413,"reason":""})");
}

TEST_F(ProtocolTest, EncodeErrorWithRetryAfter) {
    DecodedFrame f = decodeText(encodeError(7, ErrorCode::RateLimited, "rate limit exceeded", 250));
    EXPECT_EQ(f.payload, R"({"op":"error","id":7,"code":429,"reason":"rate limit exceeded",)"
                         R"("retry_after_ms":250})");
    EXPECT_EQ(uint64_t(json(f.payload)["retry_after_ms"]), 250u);
    f = decodeText(encodeError(std::nullopt, ErrorCode::RateLimited, "r\"", 1));
    EXPECT_EQ(f.payload, R"({"op":"error","code":429,"reason":"r\"","retry_after_ms":1})");
    json(f.payload);
}

TEST_F(ProtocolTest, EncodeErrorEscapesReason) {
    const std::string reason = std::string("q\"b\\n\nr\rt\tb\bf\f") + '\x01' + '\x1f' + '\x7f' +
                               "caf\xc3\xa9" + "bad\xff" + "\xc3" + "end";
    const DecodedFrame f = decodeText(encodeError(1, ErrorCode::Internal, reason));
    EXPECT_EQ(f.payload,
              R"({"op":"error","id":1,"code":500,"reason":"q\"b\\n\nr\rt\tb\bf\f\u0001\u001f)"
              R"(\u007fcaf)"
              "\xc3\xa9"
              R"(bad\ufffd\ufffdend"})");
    simdjson::dom::element root = json(f.payload);
    EXPECT_EQ(std::string_view(root["reason"]), std::string("q\"b\\n\nr\rt\tb\bf\f\x01\x1f\x7f") +
                                                    "caf\xc3\xa9" + "bad\xef\xbf\xbd\xef\xbf\xbd" +
                                                    "end");
    EXPECT_EQ(int64_t(root["code"]), 500);
}

TEST_F(ProtocolTest, EncodeReconnect) {
    const DecodedFrame f = decodeText(encodeReconnect());
    EXPECT_EQ(f.payload, R"({"op":"reconnect"})");
}

TEST_F(ProtocolTest, EncodeControl) {
    FramePtr frame = encodeControl(0x9, "");
    EXPECT_EQ(frame->bytes(), std::string_view("\x89\x00", 2));

    frame = encodeControl(0x9, "abc");
    EXPECT_EQ(frame->bytes(), std::string_view("\x89\x03"
                                               "abc",
                                               5));

    // Close: 2-byte code then the reason.
    frame = encodeControl(0x8, std::string_view("\x0f\xa1"
                                                "bye",
                                                5));
    DecodedFrame f = decode(frame->bytes());
    f.frame = frame;
    EXPECT_TRUE(f.fin);
    EXPECT_FALSE(f.masked);
    EXPECT_EQ(f.opcode, 0x8);
    EXPECT_EQ(f.payload, std::string_view("\x0f\xa1"
                                          "bye",
                                          5));

    // Control frames never exceed 125 payload bytes (RFC 6455 5.5).
    const std::string long_payload(200, 'p');
    frame = encodeControl(0x9, long_payload);
    f = decode(frame->bytes());
    EXPECT_EQ(f.header_len, 2u);
    EXPECT_EQ(f.payload_len, 125u);
    EXPECT_EQ(frame->size(), 127u);

    // Data opcodes keep the whole payload.
    frame = encodeControl(0x2, long_payload);
    f = decode(frame->bytes());
    EXPECT_EQ(f.opcode, 0x2);
    EXPECT_EQ(f.header_len, 4u);
    EXPECT_EQ(f.payload, long_payload);
}

TEST_F(ProtocolTest, WriteTextHeaderBoundaries) {
    struct Case {
        uint64_t len;
        size_t header;
    };
    const Case cases[] = {{0, 2},
                          {1, 2},
                          {125, 2},
                          {126, 4},
                          {127, 4},
                          {65535, 4},
                          {65536, 10},
                          {1u << 20, 10},
                          {(uint64_t{1} << 32) + 1, 10},
                          {uint64_t{1} << 62, 10}};
    for (const Case& c : cases) {
        char out[16] = {};
        const size_t n = writeTextHeader(out, c.len);
        EXPECT_EQ(n, c.header) << c.len;
        const DecodedFrame f = decode(std::string_view(out, n));
        EXPECT_TRUE(f.fin);
        EXPECT_FALSE(f.masked);
        EXPECT_EQ(f.opcode, 0x1);
        EXPECT_EQ(f.header_len, c.header);
        EXPECT_EQ(f.payload_len, c.len);
    }
    char out[10];
    ASSERT_EQ(writeTextHeader(out, 126), 4u);
    EXPECT_EQ(std::string_view(out, 4), std::string_view("\x81\x7e\x00\x7e", 4));
    ASSERT_EQ(writeTextHeader(out, 65536), 10u);
    EXPECT_EQ(std::string_view(out, 10),
              std::string_view("\x81\x7f\x00\x00\x00\x00\x00\x01\x00\x00", 10));
}

TEST_F(ProtocolTest, EncodedMessageHeaderBoundaries) {
    // {"op":"message","channel":"c","data":"<filler>"}
    const size_t overhead = std::string_view(R"({"op":"message","channel":"c","data":""})").size();
    for (size_t payload : {size_t{125}, size_t{126}, size_t{65535}, size_t{65536}}) {
        const std::string data = "\"" + std::string(payload - overhead, 'd') + "\"";
        const FramePtr frame = encodeMessage("c", data);
        const DecodedFrame f = decodeText(frame);
        EXPECT_EQ(f.payload_len, payload);
        EXPECT_EQ(f.header_len, payload <= 125 ? 2u : payload <= 65535 ? 4u : 10u);
        EXPECT_EQ(frame->size(), frame->capacity());  // sized exactly, allocated once
        simdjson::dom::element root = json(f.payload);
        EXPECT_EQ(std::string_view(root["data"]).size(), payload - overhead);
    }
}

TEST_F(ProtocolTest, MessageFrameSizeIsWhatEncodeMessageBuilds) {
    // Around each header boundary, and with a channel name that is not one byte long.
    for (const std::string_view channel : {std::string_view("c"), std::string_view("room:42")}) {
        for (size_t data_len : {size_t{1}, size_t{60}, size_t{80}, size_t{90}, size_t{65460},
                                size_t{65490}, size_t{65500}, size_t{70000}}) {
            const std::string data(data_len, '7');
            EXPECT_EQ(messageFrameSize(channel, data), encodeMessage(channel, data)->size())
                << channel << " " << data_len;
        }
    }
}

TEST_F(ProtocolTest, APublishWithinTheMessageLimitFramesToAtMostTenBytesMore) {
    // The documented config rule (docs/config.md, "Rules across keys") rests on this: a publish
    // command is never shorter than the JSON of the message frame it becomes, so a delivery frame
    // is at most the command's size plus the largest frame header (10 bytes).
    for (size_t command_len : {size_t{100}, size_t{125}, size_t{70000}}) {
        const std::string head = R"({"op":"publish","channel":"room:42","data":")";
        const std::string command = head + std::string(command_len - head.size() - 2, 'x') + "\"}";
        ASSERT_EQ(command.size(), command_len);
        Parser parser(command_len, kMaxChannel);
        const ParseResult r = parser.parse(command);
        ASSERT_TRUE(r.ok) << r.reason;
        EXPECT_LE(messageFrameSize(r.command.channel, r.command.data), command_len + 10);
    }
    EXPECT_EQ(messageFrameSize("c", std::string(70000, '1')) -
                  std::string_view(R"({"op":"message","channel":"c","data":})").size() - 70000,
              10u);
}

TEST_F(ProtocolTest, FieldsSeenAllowsEachFieldOnce) {
    FieldsSeen seen;
    EXPECT_TRUE(seen.first(0));
    EXPECT_TRUE(seen.first(31));
    EXPECT_FALSE(seen.first(0));
    EXPECT_FALSE(seen.first(31));
    EXPECT_TRUE(seen.first(5));
}

TEST_F(ProtocolTest, FramesAreSizedExactly) {
    for (const FramePtr& frame :
         {encodeAck(123), encodePong(std::nullopt), encodePong(1), encodeReconnect(),
          encodeError(9, ErrorCode::Forbidden, "no \"way\""), encodeMessage("x", "[1]"),
          encodeControl(0x9, "hi")}) {
        EXPECT_EQ(frame->size(), frame->capacity());
    }
}

}  // namespace
}  // namespace wsrelay::protocol

namespace wsrelay::protocol {
namespace {

class RefreshProtocolTest : public ::testing::Test {
protected:
    Parser parser_{65536, 255};
};

TEST_F(RefreshProtocolTest, ParsesRefreshWithToken) {
    const ParseResult r = parser_.parse(R"({"op":"refresh","token":"aa.bb.cc","id":4})");
    ASSERT_TRUE(r.ok) << r.reason;
    EXPECT_EQ(r.command.op, Op::Refresh);
    EXPECT_EQ(r.command.token, "aa.bb.cc");
    EXPECT_EQ(r.command.id, 4u);
}

TEST_F(RefreshProtocolTest, RefreshNeedsAStringToken) {
    ParseResult r = parser_.parse(R"({"op":"refresh","id":1})");
    EXPECT_FALSE(r.ok);
    EXPECT_EQ(r.reason, "missing token");
    r = parser_.parse(R"({"op":"refresh","token":5})");
    EXPECT_FALSE(r.ok);
    EXPECT_EQ(r.reason, "token must be a string");
}

TEST_F(RefreshProtocolTest, TokenIsIgnoredByOtherOps) {
    const ParseResult r = parser_.parse(R"({"op":"subscribe","channel":"a","token":"x"})");
    ASSERT_TRUE(r.ok) << r.reason;
    EXPECT_EQ(r.command.op, Op::Subscribe);
}

TEST_F(RefreshProtocolTest, EncodesAuthFrames) {
    FramePtr f = encodeTokenExpiring(1700000000, 2500);
    std::string_view text(f->data() + 2, f->size() - 2);
    EXPECT_EQ(text, R"({"op":"token_expiring","exp":1700000000,"in_ms":2500})");
    f = encodeUnsubscribed("room:1", "forbidden");
    text = std::string_view(f->data() + 2, f->size() - 2);
    EXPECT_EQ(text, R"({"op":"unsubscribed","channel":"room:1","reason":"forbidden"})");
}

}  // namespace
}  // namespace wsrelay::protocol
