#pragma once

#include <simdjson.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace wsrelay {

// The payload contract for messages that come from Redis (docs/scaling.md): what a backend
// published becomes the message's `data`, byte for byte when it is valid JSON, otherwise as a
// JSON string. One per broker, on its worker's thread.
class RedisPayload {
public:
    // The JSON text to deliver for `payload`; a wrapped payload lives in this object until the
    // next call.
    std::string_view toJson(std::string_view payload);

private:
    bool isJson(std::string_view payload);

    simdjson::dom::parser parser_;
    std::unique_ptr<char[]> padded_;
    size_t padded_capacity_ = 0;
    std::string wrapped_;
};

// The entry stamp a relay puts in front of what it publishes to Redis (docs/scaling.md): an RS
// byte (0x1E), the wall-clock µs since the epoch in decimal, another RS. No JSON text and no
// sensible text payload starts with RS, so a payload without one is taken as it is.
inline constexpr char kStampMark = '\x1e';
void appendStamp(int64_t entered_us, std::string& out);
// Removes a well-formed stamp from the front of `payload` and returns its time; 0 (and `payload`
// untouched) when there is none.
int64_t takeStamp(std::string_view& payload);

// The position envelope the `wsrelay_publish` Redis Function (adapters/redis_functions.lua) puts
// in front of what it publishes: a US byte (0x1F), the offset in decimal, US, the epoch, US; then
// the data as the publisher passed it (which may start with an entry stamp). A message without
// one (a plain PUBLISH) carries no position.
inline constexpr char kPositionMark = '\x1f';
void appendPosition(uint64_t offset, std::string_view epoch, std::string& out);
// Removes a well-formed envelope from the front of `payload`: returns its offset (1..2^53-1) and
// sets `epoch` to a view of it; 0 (`payload` and `epoch` untouched) when there is none.
uint64_t takePosition(std::string_view& payload, std::string_view& epoch);
// An epoch's shape: 1..32 of [A-Za-z0-9].
bool isEpoch(std::string_view epoch);

// `payload` as a JSON string literal: ", \ and control characters escaped (\uXXXX for the
// latter), valid UTF-8 kept, each byte of an invalid UTF-8 sequence replaced by U+FFFD.
void appendJsonString(std::string_view payload, std::string& out);

}  // namespace wsrelay
