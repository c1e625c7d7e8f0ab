#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace wsrelay {

// An HTTP/1.1 request head read before libwebsockets sees it (relay/admission/head_reader.h):
// enough to decide on an upgrade — method, path, query parameters, headers. Views into the caller's
// text.
struct RequestHead {
    std::string_view method;
    std::string_view target;  // path and query, as sent
    std::vector<std::pair<std::string_view, std::string_view>>
        headers;  // name as sent, value trimmed

    // The path as sent, before the query; see normalizedPath() for the one to compare.
    std::string_view path() const;
    // The first header named `name` (case-insensitive); empty when absent.
    std::string_view header(std::string_view name) const;
    // How many headers are named `name`.
    size_t headerCount(std::string_view name) const;
    // The raw value of query parameter `name`; empty when absent.
    std::string_view query(std::string_view name) const;
    // GET with Upgrade: websocket.
    bool isWebSocketUpgrade() const;
};

// Parses `head` (the request line and header lines, up to and including the blank line).
bool parseRequestHead(std::string_view head, RequestHead& out);

// The path of `target` the way libwebsockets 4.1.6 reads it before routing: %XX decoded, runs of
// '/' folded, "." segments dropped and ".." segments applied. False (the request is refused) for a
// bad escape, a decoded NUL, or a path that does not start with '/'. The relay's admission and
// lws must agree on which path a request names; where this and lws could ever disagree, the
// upgrade is refused (UpgradeGate::confirm), never let through.
bool normalizedPath(std::string_view target, std::string& out);

// %XX and '+' decoded, as lws does for query arguments. False on a bad escape or a decoded NUL.
bool urlDecode(std::string_view in, std::string& out);

// `s` without leading and trailing spaces and tabs (HTTP's optional white space).
std::string_view trimSpaces(std::string_view s);

// ASCII case-insensitive equality (header names, tokens).
bool equalsIgnoreCase(std::string_view a, std::string_view b);

// Whether the comma-separated header value `list` holds `token` (case-insensitive, RFC 7230
// lists: "keep-alive, Upgrade").
bool listHasToken(std::string_view list, std::string_view token);

}  // namespace wsrelay
