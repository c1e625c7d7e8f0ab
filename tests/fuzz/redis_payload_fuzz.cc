// libFuzzer target for the Redis payload contract and the entry stamp (adapters/redis_payload.h):
// what a backend publishes to Redis is untrusted bytes that become a message's `data`.
// The properties: toJson's output is always valid JSON, and is the payload itself, byte for byte,
// whenever the payload is valid JSON; a stamp taken is positive, leaves a suffix of the input, and
// appendStamp of it in front of that suffix is taken again to the same time and the same suffix.
// The same for the position envelope in front of it (offset 1..2^53-1, an epoch of the right
// shape). And the input read as a RESP reply (what the function library answers) is parsed
// without a crash, and what the history parser accepts keeps its promises.

#include <hiredis/hiredis.h>
#include <simdjson.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "adapters/redis_functions.h"
#include "adapters/redis_payload.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using wsrelay::fuzz::check;

using namespace wsrelay;

bool validJson(std::string_view text) {
    static simdjson::dom::parser parser;
    simdjson::padded_string padded(text);
    return parser.parse(padded).error() == simdjson::SUCCESS;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static RedisPayload payloads;
    const std::string_view input(reinterpret_cast<const char*>(data), size);

    // The position envelope: taken as a whole or not at all, before the stamp.
    std::string_view rest = input;
    std::string_view epoch;
    const uint64_t offset = takePosition(rest, epoch);
    if (offset == 0) {
        check(rest.data() == input.data() && rest.size() == input.size() && epoch.empty(),
              "no envelope, yet moved", input);
    } else {
        check(offset < (uint64_t{1} << 53) && isEpoch(epoch), "envelope out of range", input);
        check(input.ends_with(rest) && rest.size() + 5 <= input.size(), "not a suffix", input);
        std::string again;
        appendPosition(offset, epoch, again);
        again.append(rest);
        std::string_view reread = again;
        std::string_view epoch_again;
        check(takePosition(reread, epoch_again) == offset && epoch_again == epoch,
              "envelope does not round-trip", again);
        check(reread == rest, "enveloped payload changed", again);
    }
    std::string enveloped;
    appendPosition(1 + size, "e" + std::to_string(size % 1000), enveloped);
    enveloped.append(input);
    std::string_view inner = enveloped;
    std::string_view inner_epoch;
    check(takePosition(inner, inner_epoch) == 1 + size && inner == input,
          "appended envelope not taken back", enveloped);

    // The stamp: taken as a whole or not at all.
    const std::string_view unstamped = rest;
    const int64_t us = takeStamp(rest);
    if (us == 0) {
        check(rest.data() == unstamped.data() && rest.size() == unstamped.size(),
              "no stamp, yet moved", input);
    } else {
        check(us > 0, "negative stamp", input);
        check(unstamped.ends_with(rest) && rest.size() + 3 <= unstamped.size(), "not a suffix",
              input);
        std::string again;
        appendStamp(us, again);
        again.append(rest);
        std::string_view reread = again;
        check(takeStamp(reread) == us, "stamp does not round-trip", again);
        check(reread == rest, "stamped payload changed", again);
    }
    std::string stamped;
    appendStamp(1 + static_cast<int64_t>(size), stamped);
    stamped.append(input);
    std::string_view body = stamped;
    check(takeStamp(body) == 1 + static_cast<int64_t>(size) && body == input,
          "appended stamp not taken back", stamped);

    // The contract: valid JSON out, and JSON in goes out untouched.
    const bool json = validJson(rest);
    const std::string out(payloads.toJson(rest));
    check(validJson(out), "toJson output is not JSON", out);
    if (json)
        check(out == rest, "valid JSON was rewritten", rest);
    else
        check(out.size() >= 2 && out.front() == '"' && out.back() == '"', "not wrapped", out);

    // The function library's replies, from whatever RESP the input holds.
    redisReader* reader = redisReaderCreate();
    redisReaderFeed(reader, input.data(), input.size());
    void* parsed = nullptr;
    if (redisReaderGetReply(reader, &parsed) == REDIS_OK && parsed != nullptr) {
        const redisReply& reply = *static_cast<redisReply*>(parsed);
        uint64_t published = 0;
        std::string_view published_epoch;
        uint64_t trimmed = 0;
        if (parsePublishReply(reply, published, published_epoch, trimmed)) {
            check(published > 0 && isEpoch(published_epoch) && trimmed < (uint64_t{1} << 53),
                  "publish reply out of range", input);
        }
        StreamPosition top;
        std::vector<HistoryReplyEntry> entries;
        std::string error;
        const uint64_t after = size % 7;
        const uint32_t limit = static_cast<uint32_t>(size % 5);
        if (parseHistoryReply(reply, after, limit, top, entries, error)) {
            check(isEpoch(top.epoch) && entries.size() <= limit, "history reply accepted", input);
            uint64_t previous = after;
            for (const HistoryReplyEntry& e : entries) {
                check(e.offset > previous && e.offset <= top.offset, "entries out of order", input);
                previous = e.offset;
            }
        }
        freeReplyObject(parsed);
    }
    redisReaderFree(reader);
    return 0;
}
