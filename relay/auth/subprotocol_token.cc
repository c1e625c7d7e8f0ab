#include "relay/auth/subprotocol_token.h"

#include <strings.h>

#include <string_view>
#include <vector>

#include "relay/http/request_head.h"

namespace wsrelay {
namespace {

constexpr std::string_view kHeaderName = "sec-websocket-protocol";

bool isProtocolHeader(std::string_view line, std::string_view& value) {
    const size_t colon = line.find(':');
    if (colon != kHeaderName.size()) return false;
    if (strncasecmp(line.data(), kHeaderName.data(), kHeaderName.size()) != 0) return false;
    value = line.substr(colon + 1);
    return true;
}

}  // namespace

SubprotocolLift liftSubprotocolToken(std::string& bytes, size_t max_head_bytes) {
    SubprotocolLift out;
    const size_t end = bytes.find("\r\n\r\n");
    if (end == std::string::npos) {
        out.result = bytes.size() > max_head_bytes ? SubprotocolLift::Result::TooLarge
                                                   : SubprotocolLift::Result::Incomplete;
        return out;
    }
    if (end + 4 > max_head_bytes) {
        out.result = SubprotocolLift::Result::TooLarge;
        return out;
    }
    out.result = SubprotocolLift::Result::Ready;
    const std::string_view head(bytes.data(), end + 2);  // every line with its CRLF

    std::string rewritten;
    bool changed = false;
    bool offers_subprotocol = false;
    size_t pos = 0;
    while (pos < head.size()) {
        size_t eol = head.find("\r\n", pos);
        const std::string_view line = head.substr(pos, eol - pos);
        pos = eol + 2;
        std::string_view value;
        if (!isProtocolHeader(line, value)) {
            rewritten.append(line).append("\r\n");
            continue;
        }
        std::vector<std::string_view> kept;
        bool lifted = false;
        size_t from = 0;
        while (from <= value.size()) {
            size_t comma = value.find(',', from);
            if (comma == std::string_view::npos) comma = value.size();
            const std::string_view entry = trimSpaces(value.substr(from, comma - from));
            from = comma + 1;
            if (entry.starts_with(kBearerSubprotocolPrefix)) {
                if (out.token.empty()) out.token = entry.substr(kBearerSubprotocolPrefix.size());
                lifted = true;
            } else if (!entry.empty()) {
                if (entry == kSubprotocol) offers_subprotocol = true;
                kept.push_back(entry);
            }
        }
        if (!lifted) {
            rewritten.append(line).append("\r\n");
            continue;
        }
        changed = true;
        if (kept.empty()) continue;
        rewritten.append("Sec-WebSocket-Protocol: ");
        for (size_t i = 0; i < kept.size(); ++i) {
            if (i > 0) rewritten.append(", ");
            rewritten.append(kept[i]);
        }
        rewritten.append("\r\n");
    }
    if (!changed) return out;
    if (!offers_subprotocol) {
        out.result = SubprotocolLift::Result::BadRequest;
        return out;
    }
    rewritten.append(bytes, end + 2, std::string::npos);  // the blank line and anything after it
    bytes.swap(rewritten);
    return out;
}

}  // namespace wsrelay
