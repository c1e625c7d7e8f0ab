#include "relay/protocol/protocol.h"

#include <simdjson.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <new>
#include <string>
#include <utility>

namespace wsrelay::protocol {
namespace {

namespace od = simdjson::ondemand;

// Nesting cap for "data": at most this many arrays/objects inside one another ([[1]] is 2).
constexpr size_t kMaxDataDepth = 64;

constexpr std::string_view kMalformed = "malformed JSON";

constexpr std::array<bool, 256> makeChannelTable() {
    std::array<bool, 256> t{};
    for (int c = 'a'; c <= 'z'; ++c) t[c] = true;
    for (int c = 'A'; c <= 'Z'; ++c) t[c] = true;
    for (int c = '0'; c <= '9'; ++c) t[c] = true;
    for (unsigned char c : std::string_view("_-:./@=+,#!~$")) t[c] = true;
    return t;
}
constexpr std::array<bool, 256> kChannelChars = makeChannelTable();

bool isJsonSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

std::string_view trimJson(std::string_view s) {
    while (!s.empty() && isJsonSpace(s.front())) s.remove_prefix(1);
    while (!s.empty() && isJsonSpace(s.back())) s.remove_suffix(1);
    return s;
}

enum class Key { Op, Channel, Data, Id, Token, Since, Limit, Unknown };

Key classify(std::string_view key) {
    switch (key.size()) {
        case 2:
            if (key == "op") return Key::Op;
            if (key == "id") return Key::Id;
            break;
        case 4:
            if (key == "data") return Key::Data;
            break;
        case 5:
            if (key == "token") return Key::Token;
            if (key == "since") return Key::Since;
            if (key == "limit") return Key::Limit;
            break;
        case 7:
            if (key == "channel") return Key::Channel;
            break;
        default: break;
    }
    return Key::Unknown;
}

// Source text of any value, trimmed, and the value consumed. Arrays and objects are skipped (not
// validated) by simdjson here; callers validate the text separately.
//
// A string must be consumed explicitly rather than left for the object iterator to skip: simdjson's
// skip takes a string followed by ':' for a key and walks on, so `"data":"x":...` would hide
// anything after it from the envelope checks.
simdjson::error_code rawValue(od::value& value, od::json_type type, std::string_view& out) {
    std::string_view raw;
    simdjson::error_code err = simdjson::SUCCESS;
    if (type == od::json_type::string) {
        raw = value.raw_json_token();
        err = value.get_raw_json_string().error();
    } else if (type == od::json_type::array) {
        od::array array;
        err = value.get_array().get(array);
        if (!err) err = array.raw_json().get(raw);
    } else if (type == od::json_type::object) {
        od::object object;
        err = value.get_object().get(object);
        if (!err) err = object.raw_json().get(raw);
    } else {
        raw = value.raw_json_token();
    }
    out = trimJson(raw);
    return err;
}

// The key of `field`. Keys without escapes (all of them, in practice) are read in place; unescaping
// goes through a virtual call into simdjson and is kept for the rare escaped key.
simdjson::error_code rawKey(od::field& field, std::string_view& out) {
    // Stage 1 has checked that the string is closed and has no raw control characters, so the
    // scan stops at its closing quote at the latest.
    const char* p = field.key().raw();
    size_t n = 0;
    while (p[n] != '"') {
        if (p[n] == '\\') return field.unescaped_key().get(out);
        ++n;
    }
    out = std::string_view(p, n);
    return simdjson::SUCCESS;
}

// The content of a string value, consumed. Without escapes it is read in place, like keys.
simdjson::error_code stringValue(od::value& value, std::string_view& out) {
    const std::string_view token = trimJson(value.raw_json_token());
    if (token.size() >= 2 && token.back() == '"' && token.find('\\') == std::string_view::npos) {
        out = token.substr(1, token.size() - 2);
        return value.get_raw_json_string().error();
    }
    return value.get_string().get(out);
}

// A JSON integer token from 0 to kMaxSafeInteger, in the only spelling JSON allows for it: digits,
// no sign, no leading zero, no fraction or exponent (as simdjson's get_uint64 reads an id).
bool safeInteger(std::string_view token, uint64_t& out) {
    if (token.empty() || token.size() > 16 || (token[0] == '0' && token.size() > 1)) return false;
    uint64_t v = 0;
    for (char c : token) {
        if (c < '0' || c > '9') return false;
        v = v * 10 + static_cast<uint64_t>(c - '0');
    }
    if (v > kMaxSafeInteger) return false;
    out = v;
    return true;
}

void fail(ParseResult& r, ErrorCode code, std::string_view reason) {
    r.ok = false;
    r.error = code;
    r.reason = reason;
}

// ---- encoding ----

size_t headerSize(uint64_t payload_len) {
    if (payload_len <= 125) return 2;
    if (payload_len <= 0xffff) return 4;
    return 10;
}

size_t writeHeader(char* out, uint8_t first_byte, uint64_t payload_len) {
    out[0] = static_cast<char>(first_byte);
    if (payload_len <= 125) {
        out[1] = static_cast<char>(payload_len);
        return 2;
    }
    if (payload_len <= 0xffff) {
        out[1] = static_cast<char>(126);
        out[2] = static_cast<char>((payload_len >> 8) & 0xff);
        out[3] = static_cast<char>(payload_len & 0xff);
        return 4;
    }
    out[1] = static_cast<char>(127);
    for (int i = 0; i < 8; ++i) {
        out[2 + i] = static_cast<char>((payload_len >> (56 - 8 * i)) & 0xff);
    }
    return 10;
}

// Appends pieces into a frame whose exact size was computed up front.
class Writer {
public:
    explicit Writer(size_t payload_len)
        : frame_(Frame::allocate(headerSize(payload_len) + payload_len)) {
        pos_ = frame_->data() + writeTextHeader(frame_->data(), payload_len);
    }
    Writer& put(std::string_view s) {
        std::memcpy(pos_, s.data(), s.size());
        pos_ += s.size();
        return *this;
    }
    // A piece that writes itself: piece.write(out) returns the end of what it wrote.
    template <typename Piece>
    Writer& write(const Piece& piece) {
        pos_ = piece.write(pos_);
        return *this;
    }
    char* cursor() { return pos_; }
    void advance(size_t n) { pos_ += n; }
    FramePtr finish() {
        frame_->setSize(static_cast<size_t>(pos_ - frame_->data()));
        return FramePtr(frame_);
    }

private:
    Frame* frame_;
    char* pos_;
};

struct Decimal {
    explicit Decimal(uint64_t v) {
        auto res = std::to_chars(buf, buf + sizeof(buf), v);
        len = static_cast<size_t>(res.ptr - buf);
    }
    std::string_view view() const { return {buf, len}; }
    char buf[24];
    size_t len;
};

// Length of the valid UTF-8 sequence starting at s[i], or 0 when it is not valid
// (overlong forms, surrogates and code points above U+10FFFF are invalid).
size_t utf8SequenceLength(std::string_view s, size_t i) {
    const auto b0 = static_cast<unsigned char>(s[i]);
    auto cont = [&](size_t k) {
        return i + k < s.size() && (static_cast<unsigned char>(s[i + k]) & 0xc0) == 0x80;
    };
    if (b0 < 0x80) return 1;
    if (b0 >= 0xc2 && b0 <= 0xdf) return cont(1) ? 2 : 0;
    if (b0 >= 0xe0 && b0 <= 0xef) {
        if (!cont(1) || !cont(2)) return 0;
        const auto b1 = static_cast<unsigned char>(s[i + 1]);
        if (b0 == 0xe0 && b1 < 0xa0) return 0;   // overlong
        if (b0 == 0xed && b1 >= 0xa0) return 0;  // surrogate
        return 3;
    }
    if (b0 >= 0xf0 && b0 <= 0xf4) {
        if (!cont(1) || !cont(2) || !cont(3)) return 0;
        const auto b1 = static_cast<unsigned char>(s[i + 1]);
        if (b0 == 0xf0 && b1 < 0x90) return 0;   // overlong
        if (b0 == 0xf4 && b1 >= 0x90) return 0;  // above U+10FFFF
        return 4;
    }
    return 0;
}

constexpr std::string_view kReplacement = "\\ufffd";

// JSON string escaping for `s`; invalid UTF-8 becomes U+FFFD so the frame stays a valid text frame.
// With out == nullptr only measures.
size_t escapeJson(std::string_view s, char* out) {
    static constexpr char kHex[] = "0123456789abcdef";
    size_t n = 0;
    auto emit = [&](std::string_view piece) {
        if (out != nullptr) std::memcpy(out + n, piece.data(), piece.size());
        n += piece.size();
    };
    for (size_t i = 0; i < s.size();) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c >= 0x80) {
            const size_t len = utf8SequenceLength(s, i);
            if (len == 0) {
                emit(kReplacement);
                ++i;
            } else {
                emit(s.substr(i, len));
                i += len;
            }
            continue;
        }
        switch (c) {
            case '"': emit("\\\""); break;
            case '\\': emit("\\\\"); break;
            case '\n': emit("\\n"); break;
            case '\r': emit("\\r"); break;
            case '\t': emit("\\t"); break;
            case '\b': emit("\\b"); break;
            case '\f': emit("\\f"); break;
            default:
                if (c < 0x20 || c == 0x7f) {
                    const char esc[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xf]};
                    emit({esc, sizeof(esc)});
                } else {
                    emit({s.data() + i, 1});
                }
        }
        ++i;
    }
    return n;
}

}  // namespace

bool validEpoch(std::string_view epoch) {
    if (epoch.empty() || epoch.size() > kMaxEpochBytes) return false;
    for (char c : epoch) {
        const bool alnum =
            (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!alnum) return false;
    }
    return true;
}

bool validChannel(std::string_view name, size_t max_bytes) {
    if (name.empty() || name.size() > max_bytes) return false;
    for (char c : name) {
        if (!kChannelChars[static_cast<unsigned char>(c)]) return false;
    }
    return true;
}

struct Parser::Impl {
    Impl(size_t max_message, size_t max_channel)
        : max_message_bytes(max_message), max_channel_bytes(max_channel),
          capacity(std::max<size_t>(max_message, 1)),
          buffer(new char[capacity + simdjson::SIMDJSON_PADDING]), envelope(capacity) {
        // Allocate everything now so that parse() never allocates. The dom parser counts the
        // document root as a level of its own, hence the + 1.
        if (envelope.allocate(capacity) != simdjson::SUCCESS ||
            validator.allocate(capacity, kMaxDataDepth + 1) != simdjson::SUCCESS) {
            throw std::bad_alloc();
        }
    }

    // Full validation of a slice of `buffer`: what follows the slice inside the buffer is the
    // padding simdjson reads past the end.
    simdjson::error_code validate(std::string_view text) {
        return validator.parse(text.data(), text.size(), false).error();
    }

    // Consumes a value the command does not use, keeping the first JSON error in `value_error`:
    // an ignored value must still be JSON.
    simdjson::error_code ignore(od::value& value, od::json_type type,
                                std::string_view& value_error) {
        std::string_view text;
        if (auto err = rawValue(value, type, text)) return err;
        if (value_error.empty() && validate(text) != simdjson::SUCCESS) value_error = kMalformed;
        return simdjson::SUCCESS;
    }

    // What "since" held, or why it is refused: read whatever the op, refused only by the ops that
    // use it (like "token" and "channel").
    struct Since {
        Position position;
        std::string_view error;  // empty: a valid position
    };
    simdjson::error_code readSince(od::value& value, od::json_type type, Since& out,
                                   std::string_view& value_error);

    // Fills the caller's result in place: ParseResult is too big to copy on the hot path.
    void parse(std::string_view message, ParseResult& r);

    size_t max_message_bytes;
    size_t max_channel_bytes;
    size_t capacity;
    std::unique_ptr<char[]> buffer;
    od::parser envelope;
    simdjson::dom::parser validator;
};

// "since" is the relay's own object, so it is read strictly: exactly "offset" and "epoch", each
// once. The epoch is read in place, like a channel name: one needing escapes has the wrong shape.
simdjson::error_code Parser::Impl::readSince(od::value& value, od::json_type type, Since& out,
                                             std::string_view& value_error) {
    if (type != od::json_type::object) {
        out.error = kInvalidSince;
        return ignore(value, type, value_error);
    }
    od::object object;
    if (auto err = value.get_object().get(object)) return err;
    enum Field : unsigned { kOffset, kEpoch };
    FieldsSeen seen;
    bool has_offset = false;
    bool has_epoch = false;
    auto refuse = [&](std::string_view why) {
        if (out.error.empty()) out.error = why;
    };
    for (auto field_result : object) {
        od::field field;
        if (auto err = std::move(field_result).get(field)) return err;
        std::string_view key;
        if (auto err = rawKey(field, key)) return err;
        od::value& v = field.value();
        od::json_type t;
        if (auto err = v.type().get(t)) return err;
        if (key == "offset" || key == "epoch") {
            if (!seen.first(key == "offset" ? kOffset : kEpoch)) {
                refuse(kDuplicateField);
            } else if (key == "offset") {
                if (t == od::json_type::number &&
                    safeInteger(trimJson(v.raw_json_token()), out.position.offset)) {
                    has_offset = true;
                    continue;
                }
                refuse(kInvalidSinceOffset);
            } else if (t == od::json_type::string) {
                std::string_view token;
                if (auto err = rawValue(v, t, token)) return err;
                std::string_view epoch;
                if (token.size() >= 2 && token.back() == '"') {
                    epoch = token.substr(1, token.size() - 2);
                }
                if (validEpoch(epoch)) {
                    out.position.epoch = epoch;
                    has_epoch = true;
                    continue;
                }
                // Consumed already: checked here rather than by ignore().
                refuse(kInvalidSinceEpoch);
                if (value_error.empty() && validate(token) != simdjson::SUCCESS) {
                    value_error = kMalformed;
                }
                continue;
            } else {
                refuse(kInvalidSinceEpoch);
            }
        } else {
            refuse(kInvalidSince);
        }
        if (auto err = ignore(v, t, value_error)) return err;
    }
    if (!has_offset || !has_epoch) refuse(kInvalidSince);
    return simdjson::SUCCESS;
}

void Parser::Impl::parse(std::string_view message, ParseResult& r) {
    const size_t n = message.size();
    if (n > max_message_bytes) return fail(r, ErrorCode::BadRequest, "message too big");
    char* buf = buffer.get();
    if (n > 0) std::memcpy(buf, message.data(), n);
    // Stale bytes of an earlier, longer message must not be read as part of this one.
    std::memset(buf + n, 0, simdjson::SIMDJSON_PADDING);

    od::document doc;
    if (envelope.iterate(buf, n, n + simdjson::SIMDJSON_PADDING).get(doc)) {
        return fail(r, ErrorCode::BadRequest, kMalformed);
    }
    od::object object;
    if (auto err = doc.get_object().get(object)) {
        return fail(r, ErrorCode::BadRequest,
                    err == simdjson::INCORRECT_TYPE ? "expected a JSON object" : kMalformed);
    }

    enum class State { Missing, String, Other, Invalid };
    State op_state = State::Missing;
    State channel_state = State::Missing;  // String: a valid name; Invalid: a string, but not one
    std::string_view op;
    std::string_view token;
    State token_state = State::Missing;
    std::string_view channel;
    std::string_view data;
    bool has_data = false;
    bool duplicate = false;
    bool id_duplicate = false;
    std::string_view value_error;  // first malformed value; iteration goes on to find the id
    bool has_since = false;
    Since since;
    bool has_limit = false;
    uint64_t limit = 0;
    std::string_view limit_error;
    FieldsSeen seen;

    for (auto field_result : object) {
        od::field field;
        if (std::move(field_result).get(field)) return fail(r, ErrorCode::BadRequest, kMalformed);
        std::string_view key_text;
        if (rawKey(field, key_text)) return fail(r, ErrorCode::BadRequest, kMalformed);
        od::value& value = field.value();
        od::json_type type;
        if (value.type().get(type)) return fail(r, ErrorCode::BadRequest, kMalformed);

        Key key = classify(key_text);
        if (key != Key::Unknown && !seen.first(static_cast<unsigned>(key))) {
            duplicate = true;
            if (key == Key::Id) id_duplicate = true;
            key = Key::Unknown;  // keep the first occurrence; still validate this one
        }

        switch (key) {
            case Key::Op:
                if (type == od::json_type::string) {
                    if (stringValue(value, op)) {
                        return fail(r, ErrorCode::BadRequest, kMalformed);
                    }
                    op_state = State::String;
                    continue;
                }
                op_state = State::Other;
                break;  // validated below like an unknown field
            case Key::Channel:
                if (type == od::json_type::string) {
                    // The raw token, not the unescaped string: a name needing escapes is outside
                    // the charset by definition.
                    std::string_view token;
                    if (rawValue(value, type, token)) {
                        return fail(r, ErrorCode::BadRequest, kMalformed);
                    }
                    if (token.size() >= 2 && token.back() == '"') {
                        channel = token.substr(1, token.size() - 2);
                    }
                    if (validChannel(channel, max_channel_bytes)) {
                        channel_state = State::String;  // needs no further JSON validation
                    } else {
                        channel_state = State::Invalid;
                        if (value_error.empty() && validate(token) != simdjson::SUCCESS) {
                            value_error = kMalformed;
                        }
                    }
                    continue;
                }
                channel_state = State::Other;
                break;
            case Key::Data:
                if (rawValue(value, type, data)) return fail(r, ErrorCode::BadRequest, kMalformed);
                has_data = true;
                continue;
            case Key::Token:
                if (type == od::json_type::string) {
                    if (stringValue(value, token)) {
                        return fail(r, ErrorCode::BadRequest, kMalformed);
                    }
                    token_state = State::String;
                    continue;
                }
                token_state = State::Other;
                break;
            case Key::Since:
                has_since = true;
                if (readSince(value, type, since, value_error)) {
                    return fail(r, ErrorCode::BadRequest, kMalformed);
                }
                continue;
            case Key::Limit:
                has_limit = true;
                if (type == od::json_type::number &&
                    safeInteger(trimJson(value.raw_json_token()), limit) && limit > 0) {
                    continue;
                }
                limit_error = kInvalidLimit;
                break;
            case Key::Id: {
                uint64_t id = 0;
                if (type != od::json_type::number || value.get_uint64().get(id) ||
                    id > kMaxSafeInteger) {
                    return fail(r, ErrorCode::BadRequest, "id must be a non-negative integer");
                }
                r.id = id;
                continue;
            }
            case Key::Unknown: break;
        }
        // Ignored values are still checked: a frame is either JSON or it is refused.
        if (ignore(value, type, value_error)) return fail(r, ErrorCode::BadRequest, kMalformed);
    }

    if (id_duplicate) r.id.reset();
    // Anything after the closing brace, apart from whitespace, is garbage.
    const char* location = nullptr;
    if (doc.current_location().get(location) != simdjson::OUT_OF_BOUNDS) {
        return fail(r, ErrorCode::BadRequest, kMalformed);
    }
    if (!value_error.empty()) return fail(r, ErrorCode::BadRequest, value_error);
    if (has_data) {
        // Forwarded verbatim to other clients: it has to be complete, valid JSON.
        const auto err = validate(data);
        if (err == simdjson::DEPTH_ERROR) {
            return fail(r, ErrorCode::BadRequest, "data too deeply nested");
        }
        if (err) return fail(r, ErrorCode::BadRequest, kMalformed);
    }
    if (duplicate) return fail(r, ErrorCode::BadRequest, kDuplicateField);
    if (op_state == State::Missing) return fail(r, ErrorCode::BadRequest, "missing op");
    if (op_state != State::String) return fail(r, ErrorCode::BadRequest, "op must be a string");

    Command& cmd = r.command;
    if (op == "subscribe") {
        cmd.op = Op::Subscribe;
    } else if (op == "unsubscribe") {
        cmd.op = Op::Unsubscribe;
    } else if (op == "publish") {
        cmd.op = Op::Publish;
    } else if (op == "ping") {
        cmd.op = Op::Ping;
    } else if (op == "refresh") {
        cmd.op = Op::Refresh;
    } else if (op == "send") {
        cmd.op = Op::Send;
    } else if (op == "history") {
        cmd.op = Op::History;
    } else if (op == "presence") {
        cmd.op = Op::Presence;
    } else {
        return fail(r, ErrorCode::UnknownOp, "unknown op");
    }

    if (cmd.op == Op::Refresh) {
        if (token_state == State::Missing) return fail(r, ErrorCode::BadRequest, "missing token");
        if (token_state != State::String) {
            return fail(r, ErrorCode::BadRequest, "token must be a string");
        }
        cmd.token = token;
    } else if (cmd.op != Op::Ping && cmd.op != Op::Send) {
        if (channel_state == State::Missing) {
            return fail(r, ErrorCode::BadRequest, "missing channel");
        }
        if (channel_state == State::Other) {
            return fail(r, ErrorCode::BadRequest, "channel must be a string");
        }
        if (channel_state == State::Invalid) {
            return fail(r, ErrorCode::InvalidChannel, "invalid channel name");
        }
        cmd.channel = channel;
    }
    if (has_since && (cmd.op == Op::Subscribe || cmd.op == Op::History)) {
        if (!since.error.empty()) return fail(r, ErrorCode::BadRequest, since.error);
        cmd.since = since.position;
    }
    if (has_limit && cmd.op == Op::History) {
        if (!limit_error.empty()) return fail(r, ErrorCode::BadRequest, limit_error);
        cmd.limit = limit;
    }
    if (cmd.op == Op::Publish || cmd.op == Op::Send) {
        if (!has_data) return fail(r, ErrorCode::BadRequest, "missing data");
        cmd.data = data;
    }
    cmd.id = r.id;
    r.ok = true;
}

Parser::Parser(size_t max_message_bytes, size_t max_channel_bytes)
    : impl_(std::make_unique<Impl>(max_message_bytes, max_channel_bytes)) {}

Parser::~Parser() = default;

ParseResult Parser::parse(std::string_view message) {
    ParseResult r;
    impl_->parse(message, r);
    return r;
}

size_t writeTextHeader(char* out, uint64_t payload_len) {
    return writeHeader(out, 0x81, payload_len);
}

size_t frameHeaderSize(uint64_t payload_len) { return headerSize(payload_len); }

size_t writeFrameHeader(char* out, uint8_t first_byte, uint64_t payload_len) {
    return writeHeader(out, first_byte, payload_len);
}

namespace {
constexpr std::string_view kMessageHead = R"({"op":"message","channel":")";
constexpr std::string_view kMessageMid = R"(","data":)";
constexpr std::string_view kMessageTail = "}";

size_t messagePayloadSize(std::string_view channel, std::string_view data) {
    return kMessageHead.size() + channel.size() + kMessageMid.size() + data.size() +
           kMessageTail.size();
}

char* put(char* out, std::string_view s) {
    std::memcpy(out, s.data(), s.size());
    return out + s.size();
}

// A channel's position as fields of an object: ,"offset":N,"epoch":"E" (the epoch has
// validEpoch's shape, so it needs no escaping).
class PositionFields {
public:
    explicit PositionFields(Position position) : offset_(position.offset), epoch_(position.epoch) {}
    size_t size() const { return kOffset.size() + offset_.len + kEpoch.size() + epoch_.size() + 1; }
    char* write(char* out) const {
        out = put(out, kOffset);
        out = put(out, offset_.view());
        out = put(out, kEpoch);
        out = put(out, epoch_);
        *out = '"';
        return out + 1;
    }

private:
    static constexpr std::string_view kOffset = R"(,"offset":)";
    static constexpr std::string_view kEpoch = R"(,"epoch":")";
    Decimal offset_;
    std::string_view epoch_;
};

// {"op":"message","channel":C,"offset":N,"epoch":"E","data":D}
constexpr std::string_view kPositionedData = R"(,"data":)";

size_t messagePayloadSize(std::string_view channel, std::string_view data,
                          const PositionFields& position) {
    return kMessageHead.size() + channel.size() + 1 + position.size() + kPositionedData.size() +
           data.size() + kMessageTail.size();
}

// The messages of a history answer: [{"offset":O,"data":D},...].
class HistoryMessages {
public:
    explicit HistoryMessages(std::span<const HistoryItem> items) : items_(items) {}
    size_t size() const {
        size_t n = 2 + (items_.empty() ? 0 : items_.size() - 1);  // brackets, commas
        for (const HistoryItem& item : items_) {
            n += kHead.size() + Decimal(item.offset).len + kData.size() + item.data.size() + 1;
        }
        return n;
    }
    char* write(char* out) const {
        *out++ = '[';
        for (size_t i = 0; i < items_.size(); ++i) {
            if (i > 0) *out++ = ',';
            out = put(out, kHead);
            out = put(out, Decimal(items_[i].offset).view());
            out = put(out, kData);
            out = put(out, items_[i].data);
            *out++ = '}';
        }
        *out++ = ']';
        return out;
    }

private:
    static constexpr std::string_view kHead = R"({"offset":)";
    static constexpr std::string_view kData = R"(,"data":)";
    std::span<const HistoryItem> items_;
};
}  // namespace

FramePtr encodeMessage(std::string_view channel, std::string_view data) {
    return Writer(messagePayloadSize(channel, data))
        .put(kMessageHead)
        .put(channel)
        .put(kMessageMid)
        .put(data)
        .put(kMessageTail)
        .finish();
}

size_t messageFrameSize(std::string_view channel, std::string_view data) {
    const size_t payload = messagePayloadSize(channel, data);
    return headerSize(payload) + payload;
}

FramePtr encodeMessage(std::string_view channel, std::string_view data, Position position) {
    const PositionFields fields(position);
    return Writer(messagePayloadSize(channel, data, fields))
        .put(kMessageHead)
        .put(channel)
        .put("\"")
        .write(fields)
        .put(kPositionedData)
        .put(data)
        .put(kMessageTail)
        .finish();
}

size_t messageFrameSize(std::string_view channel, std::string_view data, Position position) {
    const size_t payload = messagePayloadSize(channel, data, PositionFields(position));
    return headerSize(payload) + payload;
}

FramePtr encodeAck(uint64_t id) {
    constexpr std::string_view kHead = R"({"op":"ack","id":)";
    const Decimal d(id);
    return Writer(kHead.size() + d.len + 1).put(kHead).put(d.view()).put("}").finish();
}

FramePtr encodeAck(uint64_t id, Position top, Recovered recovered) {
    constexpr std::string_view kHead = R"({"op":"ack","id":)";
    constexpr std::string_view kRecovered = R"(,"recovered":true})";
    constexpr std::string_view kNotRecovered = R"(,"recovered":false})";
    const Decimal d(id);
    const PositionFields fields(top);
    const std::string_view tail = recovered == Recovered::Yes  ? kRecovered
                                  : recovered == Recovered::No ? kNotRecovered
                                                               : "}";
    return Writer(kHead.size() + d.len + fields.size() + tail.size())
        .put(kHead)
        .put(d.view())
        .write(fields)
        .put(tail)
        .finish();
}

FramePtr encodePong(std::optional<uint64_t> id) {
    if (!id) {
        constexpr std::string_view kPong = R"({"op":"pong"})";
        return Writer(kPong.size()).put(kPong).finish();
    }
    constexpr std::string_view kHead = R"({"op":"pong","id":)";
    const Decimal d(*id);
    return Writer(kHead.size() + d.len + 1).put(kHead).put(d.view()).put("}").finish();
}

FramePtr encodeError(std::optional<uint64_t> id, ErrorCode code, std::string_view reason,
                     std::optional<uint64_t> retry_after_ms) {
    constexpr std::string_view kHead = R"({"op":"error",)";
    constexpr std::string_view kId = R"("id":)";
    constexpr std::string_view kCode = R"("code":)";
    constexpr std::string_view kReason = R"(,"reason":")";
    constexpr std::string_view kRetryAfter = R"(","retry_after_ms":)";
    const Decimal id_text(id.value_or(0));
    const Decimal code_text(static_cast<uint64_t>(static_cast<int>(code)));
    const Decimal retry_text(retry_after_ms.value_or(0));
    const size_t reason_len = escapeJson(reason, nullptr);
    size_t len = kHead.size() + kCode.size() + code_text.len + kReason.size() + reason_len + 2;
    if (id) len += kId.size() + id_text.len + 1;
    if (retry_after_ms) len += kRetryAfter.size() - 1 + retry_text.len;

    Writer w(len);
    w.put(kHead);
    if (id) w.put(kId).put(id_text.view()).put(",");
    w.put(kCode).put(code_text.view()).put(kReason);
    w.advance(escapeJson(reason, w.cursor()));
    if (retry_after_ms) return w.put(kRetryAfter).put(retry_text.view()).put("}").finish();
    return w.put("\"}").finish();
}

FramePtr encodeReconnect() {
    constexpr std::string_view kReconnect = R"({"op":"reconnect"})";
    return Writer(kReconnect.size()).put(kReconnect).finish();
}

FramePtr encodeResubscribed(std::string_view channel) {
    constexpr std::string_view kHead = R"({"op":"resubscribed","channel":")";
    constexpr std::string_view kTail = R"(","gap":true})";
    return Writer(kHead.size() + channel.size() + kTail.size())
        .put(kHead)
        .put(channel)
        .put(kTail)
        .finish();
}

FramePtr encodeResubscribed(std::string_view channel, Position top) {
    constexpr std::string_view kHead = R"({"op":"resubscribed","channel":")";
    constexpr std::string_view kGap = R"(","gap":true)";
    const PositionFields fields(top);
    return Writer(kHead.size() + channel.size() + kGap.size() + fields.size() + 1)
        .put(kHead)
        .put(channel)
        .put(kGap)
        .write(fields)
        .put("}")
        .finish();
}

FramePtr encodeTokenExpiring(int64_t exp_seconds, int64_t in_ms) {
    char text[96];
    const int n = std::snprintf(
        text, sizeof text, R"({"op":"token_expiring","exp":%lld,"in_ms":%lld})",
        static_cast<long long>(exp_seconds), static_cast<long long>(in_ms < 0 ? 0 : in_ms));
    const std::string_view body(text, static_cast<size_t>(n));
    return Writer(body.size()).put(body).finish();
}

FramePtr encodeUnsubscribed(std::string_view channel, std::string_view reason) {
    constexpr std::string_view kHead = R"({"op":"unsubscribed","channel":")";
    constexpr std::string_view kMiddle = R"(","reason":")";
    constexpr std::string_view kTail = R"("})";
    return Writer(kHead.size() + channel.size() + kMiddle.size() + reason.size() + kTail.size())
        .put(kHead)
        .put(channel)
        .put(kMiddle)
        .put(reason)
        .put(kTail)
        .finish();
}

FramePtr encodeReply(std::optional<uint64_t> id, std::string_view data) {
    std::string text = R"({"op":"reply")";
    if (id) text += R"(,"id":)" + std::to_string(*id);
    text += R"(,"data":)";
    text.append(data);
    text += '}';
    return Writer(text.size()).put(text).finish();
}

FramePtr encodeSubscribed(std::string_view channel) {
    constexpr std::string_view kHead = R"({"op":"subscribed","channel":")";
    constexpr std::string_view kTail = R"("})";
    return Writer(kHead.size() + channel.size() + kTail.size())
        .put(kHead)
        .put(channel)
        .put(kTail)
        .finish();
}

FramePtr encodeSubscribed(std::string_view channel, Position top) {
    constexpr std::string_view kHead = R"({"op":"subscribed","channel":")";
    const PositionFields fields(top);
    return Writer(kHead.size() + channel.size() + 1 + fields.size() + 1)
        .put(kHead)
        .put(channel)
        .put("\"")
        .write(fields)
        .put("}")
        .finish();
}

FramePtr encodeHistory(std::optional<uint64_t> id, std::string_view channel,
                       std::span<const HistoryItem> items, Position top) {
    constexpr std::string_view kHead = R"({"op":"history")";
    constexpr std::string_view kId = R"(,"id":)";
    constexpr std::string_view kChannel = R"(,"channel":")";
    constexpr std::string_view kMessages = R"(","messages":)";
    const Decimal id_text(id.value_or(0));
    const HistoryMessages messages(items);
    const PositionFields fields(top);
    size_t len = kHead.size() + kChannel.size() + channel.size() + kMessages.size() +
                 messages.size() + fields.size() + 1;
    if (id) len += kId.size() + id_text.len;

    Writer w(len);
    w.put(kHead);
    if (id) w.put(kId).put(id_text.view());
    return w.put(kChannel)
        .put(channel)
        .put(kMessages)
        .write(messages)
        .write(fields)
        .put("}")
        .finish();
}

void appendHistoryBody(std::span<const HistoryItem> items, Position top, std::string& out) {
    constexpr std::string_view kHead = R"({"messages":)";
    const HistoryMessages messages(items);
    const PositionFields fields(top);
    const size_t start = out.size();
    out.resize(start + kHead.size() + messages.size() + fields.size() + 1);
    char* end = fields.write(messages.write(put(out.data() + start, kHead)));
    *end = '}';
}

namespace {
// "members":[M,...] (members are JSON the relay wrote), then "truncated":true when cut.
std::string presenceMembers(std::span<const std::string> members, bool truncated) {
    size_t len = 14 + members.size() + (truncated ? 17 : 0);
    for (const std::string& m : members) len += m.size();
    std::string out;
    out.reserve(len);
    out += R"("members":[)";
    for (size_t i = 0; i < members.size(); ++i) {
        if (i > 0) out += ',';
        out += members[i];
    }
    out += ']';
    if (truncated) out += R"(,"truncated":true)";
    return out;
}
}  // namespace

FramePtr encodePresence(std::optional<uint64_t> id, std::string_view channel,
                        std::span<const std::string> members, bool truncated) {
    constexpr std::string_view kHead = R"({"op":"presence")";
    constexpr std::string_view kId = R"(,"id":)";
    constexpr std::string_view kChannel = R"(,"channel":")";
    const Decimal id_text(id.value_or(0));
    const std::string tail = presenceMembers(members, truncated);
    size_t len = kHead.size() + kChannel.size() + channel.size() + 2 + tail.size() + 1;
    if (id) len += kId.size() + id_text.len;
    Writer w(len);
    w.put(kHead);
    if (id) w.put(kId).put(id_text.view());
    return w.put(kChannel).put(channel).put("\",").put(tail).put("}").finish();
}

void appendPresenceBody(std::string_view channel, std::span<const std::string> members,
                        bool truncated, std::string& out) {
    out += R"({"channel":")";
    out += channel;
    out += "\",";
    out += presenceMembers(members, truncated);
    out += '}';
}

FramePtr encodeControl(uint8_t opcode, std::string_view payload) {
    // RFC 6455 5.5: control frames (opcode >= 0x8) carry at most 125 bytes.
    if ((opcode & 0x08) != 0 && payload.size() > 125) payload = payload.substr(0, 125);
    Frame* frame = Frame::allocate(headerSize(payload.size()) + payload.size());
    const size_t header =
        writeHeader(frame->data(), static_cast<uint8_t>(0x80 | (opcode & 0x0f)), payload.size());
    if (!payload.empty()) std::memcpy(frame->data() + header, payload.data(), payload.size());
    frame->setSize(header + payload.size());
    return FramePtr(frame);
}

}  // namespace wsrelay::protocol
