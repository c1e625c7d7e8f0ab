#pragma once

#include <string_view>
#include <utility>
#include <vector>

namespace wsrelay {

// An HTTP/1.1 request head read before libwebsockets sees it (relay/head_reader.h): enough to
// decide on an upgrade — method, path, query parameters, headers. Views into the caller's text.
struct RequestHead {
    std::string_view method;
    std::string_view target;  // path and query, as sent
    std::vector<std::pair<std::string_view, std::string_view>> headers;  // name as sent, value trimmed

    std::string_view path() const;
    // The first header named `name` (case-insensitive); empty when absent.
    std::string_view header(std::string_view name) const;
    // The raw value of query parameter `name`; empty when absent.
    std::string_view query(std::string_view name) const;
    // GET with Upgrade: websocket.
    bool isWebSocketUpgrade() const;
};

// Parses `head` (the request line and header lines, up to and including the blank line).
bool parseRequestHead(std::string_view head, RequestHead& out);

}  // namespace wsrelay
