// libFuzzer target for liftSubprotocolToken (relay/auth/subprotocol_token.h) called directly, as
// request_head_fuzz reaches it only through readHead, with the head alone and a fixed bound. The
// first byte picks the bound on the head (0..8160 bytes); the rest are the bytes at the start of
// a socket: a request head, possibly followed by more.
// The properties: nothing crashes; the bytes change only when the result is Ready and a bearer
// entry was offered, and then the token is the first non-empty one offered; the rewritten head
// keeps every other line, in order, offers no bearer entry but still wsrelay.v1, ends at its
// blank line, is followed by exactly what followed the head, and lifting it again changes
// nothing; BadRequest means a bearer entry was offered without wsrelay.v1.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "relay/auth/subprotocol_token.h"
#include "relay/http/request_head.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using wsrelay::fuzz::check;

using namespace wsrelay;
using Result = SubprotocolLift::Result;

// The lines of `head` (which ends with CRLF), without their CRLF.
std::vector<std::string_view> lines(std::string_view head) {
    std::vector<std::string_view> out;
    size_t pos = 0;
    while (pos < head.size()) {
        const size_t eol = head.find("\r\n", pos);
        out.push_back(head.substr(pos, eol - pos));
        pos = eol + 2;
    }
    return out;
}

// The value of a Sec-WebSocket-Protocol line (the name written exactly, any case, then ':').
bool protocolValue(std::string_view line, std::string_view& value) {
    constexpr std::string_view kName = "sec-websocket-protocol";
    const size_t colon = line.find(':');
    if (colon != kName.size() || !equalsIgnoreCase(line.substr(0, colon), kName)) return false;
    value = line.substr(colon + 1);
    return true;
}

// What the Sec-WebSocket-Protocol lines of `head` offer.
struct Offer {
    bool bearer = false;       // any wsrelay.bearer.* entry
    bool subprotocol = false;  // a wsrelay.v1 entry
    std::string token;         // the first non-empty bearer token
};

Offer offer(std::string_view head) {
    Offer out;
    for (std::string_view line : lines(head)) {
        std::string_view value;
        if (!protocolValue(line, value)) continue;
        while (true) {
            const size_t comma = value.find(',');
            const std::string_view entry = trimSpaces(value.substr(0, comma));
            if (entry.starts_with(kBearerSubprotocolPrefix)) {
                out.bearer = true;
                if (out.token.empty()) out.token = entry.substr(kBearerSubprotocolPrefix.size());
            } else if (entry == kSubprotocol) {
                out.subprotocol = true;
            }
            if (comma == std::string_view::npos) break;
            value.remove_prefix(comma + 1);
        }
    }
    return out;
}

// The lines of `head` other than Sec-WebSocket-Protocol ones.
std::vector<std::string_view> otherLines(std::string_view head) {
    std::vector<std::string_view> out;
    std::string_view value;
    for (std::string_view line : lines(head)) {
        if (!protocolValue(line, value)) out.push_back(line);
    }
    return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size == 0) return 0;
    const size_t max_head = size_t{data[0]} * 32;
    const std::string input(reinterpret_cast<const char*>(data) + 1, size - 1);
    std::string bytes = input;
    const SubprotocolLift lift = liftSubprotocolToken(bytes, max_head);

    const size_t end = input.find("\r\n\r\n");
    if (end == std::string::npos) {
        check(lift.result == (input.size() > max_head ? Result::TooLarge : Result::Incomplete),
              "head without its blank line: wrong result", input);
    } else if (end + 4 > max_head) {
        check(lift.result == Result::TooLarge, "head over the bound not refused", input);
    }
    if (lift.result != Result::Ready || bytes == input) {
        check(bytes == input, "bytes changed without a Ready result", input);
        // Ready and BadRequest read a complete head.
        const std::string_view head_in = end == std::string::npos
                                             ? std::string_view()
                                             : std::string_view(input).substr(0, end + 2);
        if (lift.result == Result::Ready) {
            check(!offer(head_in).bearer && lift.token.empty(), "bearer entry left in the head",
                  input);
        } else if (lift.result == Result::BadRequest) {
            const Offer offered = offer(head_in);
            check(offered.bearer && !offered.subprotocol, "BadRequest without its reason", input);
        } else {
            check(lift.token.empty(), "token from an unread head", input);
        }
        return 0;
    }

    // Ready and rewritten.
    const std::string_view head_in = std::string_view(input).substr(0, end + 2);
    const Offer offered = offer(head_in);
    check(offered.bearer && offered.subprotocol, "head rewritten without a bearer entry", input);
    check(lift.token == offered.token, "token is not the first one offered", lift.token);

    const std::string_view rest = std::string_view(input).substr(end + 2);  // blank line onwards
    check(bytes.size() >= rest.size() && std::string_view(bytes).ends_with(rest),
          "what follows the head changed", bytes);
    const size_t new_end = bytes.find("\r\n\r\n");
    check(new_end != std::string::npos && new_end + 2 == bytes.size() - rest.size(),
          "rewritten head does not end at its blank line", bytes);
    const std::string_view head_out = std::string_view(bytes).substr(0, new_end + 2);
    const Offer left = offer(head_out);
    check(!left.bearer, "bearer entry left in the rewritten head", bytes);
    check(left.subprotocol, "wsrelay.v1 lost in the rewrite", bytes);
    check(otherLines(head_in) == otherLines(head_out), "other header lines changed", bytes);

    std::string again = bytes;
    const SubprotocolLift second = liftSubprotocolToken(again, max_head);
    check(second.result == Result::Ready && second.token.empty() && again == bytes,
          "lifting twice changes the head", bytes);
    return 0;
}
