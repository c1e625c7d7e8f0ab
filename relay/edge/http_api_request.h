#pragma once

// HttpApi's per-request state and answer helpers, shared by the files that serve its paths
// (http_api.cc, http_api_fleet.cc). Not for anything outside HttpApi.

#include <cstdint>
#include <string>
#include <string_view>

#include "adapters/redis_payload.h"
#include "relay/edge/http_api.h"

namespace wsrelay {

// The state of one API request, kept in the connection's lws data while it is in flight.
struct HttpApi::Request {
    const Route* route = nullptr;
    bool broadcast = false;
    bool history = false;
    bool too_large = false;
    // Refused at the head (no or wrong key): answered once the body is read, not before.
    unsigned refused = 0;
    std::string refusal;
    unsigned retry_after_s = 0;  // a 429 of the key throttle
    std::string body;
    uint64_t id = 0;
    size_t outstanding = 0;  // publishes the broker has not answered yet
    size_t channels = 0;
    bool failed = false;
    uint64_t offset = 0;  // a publish of one channel with history: where it went
    std::string epoch;
    unsigned status = 0;  // nonzero once the response is decided
    std::string response;
};

// {"error":<reason>}, the reason JSON-escaped.
inline std::string errorBody(std::string_view reason) {
    std::string out = R"({"error":)";
    appendJsonString(reason, out);
    out += '}';
    return out;
}

}  // namespace wsrelay
