// libFuzzer target for the Redis payload contract and the entry stamp (adapters/redis_payload.h):
// what a backend publishes to Redis is untrusted bytes that become a message's `data`.
// The properties: toJson's output is always valid JSON, and is the payload itself, byte for byte,
// whenever the payload is valid JSON; a stamp taken is positive, leaves a suffix of the input, and
// appendStamp of it in front of that suffix is taken again to the same time and the same suffix.

#include <simdjson.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

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

    // The stamp: taken as a whole or not at all.
    std::string_view rest = input;
    const int64_t us = takeStamp(rest);
    if (us == 0) {
        check(rest.data() == input.data() && rest.size() == input.size(), "no stamp, yet moved",
              input);
    } else {
        check(us > 0, "negative stamp", input);
        check(input.ends_with(rest) && rest.size() + 3 <= input.size(), "not a suffix", input);
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
    return 0;
}
