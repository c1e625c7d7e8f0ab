#include "relay/http/request_head.h"

#include <strings.h>

#include <vector>

namespace wsrelay {
namespace {

int hexValue(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// Decodes %XX in `in` into `out` (appending); '+' becomes ' ' when `plus_is_space`.
bool decodeInto(std::string_view in, bool plus_is_space, std::string& out) {
    for (size_t i = 0; i < in.size(); ++i) {
        char c = in[i];
        if (c == '%') {
            if (i + 2 >= in.size()) return false;
            const int hi = hexValue(in[i + 1]);
            const int lo = hexValue(in[i + 2]);
            if (hi < 0 || lo < 0) return false;
            c = static_cast<char>(hi << 4 | lo);
            i += 2;
        } else if (c == '+' && plus_is_space) {
            c = ' ';
        }
        if (c == '\0') return false;
        out.push_back(c);
    }
    return true;
}

}  // namespace

std::string_view trimSpaces(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

bool equalsIgnoreCase(std::string_view a, std::string_view b) {
    return a.size() == b.size() && strncasecmp(a.data(), b.data(), a.size()) == 0;
}

std::string_view RequestHead::path() const { return target.substr(0, target.find('?')); }

std::string_view RequestHead::header(std::string_view name) const {
    for (const auto& [n, v] : headers) {
        if (equalsIgnoreCase(n, name)) return v;
    }
    return {};
}

size_t RequestHead::headerCount(std::string_view name) const {
    size_t count = 0;
    for (const auto& [n, v] : headers) count += equalsIgnoreCase(n, name) ? 1 : 0;
    return count;
}

std::string_view RequestHead::query(std::string_view name) const {
    const size_t q = target.find('?');
    if (q == std::string_view::npos) return {};
    std::string_view rest = target.substr(q + 1);
    while (!rest.empty()) {
        const size_t amp = rest.find('&');
        const std::string_view pair = rest.substr(0, amp);
        const size_t eq = pair.find('=');
        if (pair.substr(0, eq) == name)
            return eq == std::string_view::npos ? "" : pair.substr(eq + 1);
        if (amp == std::string_view::npos) break;
        rest.remove_prefix(amp + 1);
    }
    return {};
}

bool RequestHead::isWebSocketUpgrade() const {
    return method == "GET" && equalsIgnoreCase(header("upgrade"), "websocket");
}

bool parseRequestHead(std::string_view head, RequestHead& out) {
    size_t eol = head.find("\r\n");
    if (eol == std::string_view::npos) return false;
    const std::string_view line = head.substr(0, eol);
    const size_t sp1 = line.find(' ');
    const size_t sp2 = line.rfind(' ');
    if (sp1 == std::string_view::npos || sp2 == sp1) return false;
    out.method = line.substr(0, sp1);
    out.target = line.substr(sp1 + 1, sp2 - sp1 - 1);
    out.headers.clear();
    size_t pos = eol + 2;
    while (pos < head.size()) {
        eol = head.find("\r\n", pos);
        if (eol == std::string_view::npos || eol == pos) break;
        const std::string_view h = head.substr(pos, eol - pos);
        pos = eol + 2;
        const size_t colon = h.find(':');
        if (colon == std::string_view::npos || colon == 0) return false;
        out.headers.emplace_back(h.substr(0, colon), trimSpaces(h.substr(colon + 1)));
    }
    return true;
}

bool urlDecode(std::string_view in, std::string& out) {
    out.clear();
    return decodeInto(in, true, out);
}

bool normalizedPath(std::string_view target, std::string& out) {
    out.clear();
    std::string decoded;
    // Only a literal '?' starts the query: "%3F" is part of the path, as in lws.
    if (!decodeInto(target.substr(0, target.find('?')), false, decoded)) return false;
    if (decoded.empty() || decoded.front() != '/') return false;
    // RFC 3986 remove_dot_segments over '/'-separated segments, empty ones folded away.
    std::vector<std::string_view> segments;
    const std::string_view path(decoded);
    bool directory = false;  // the path ends in '/' (or in a dot segment, which means the same)
    size_t pos = 1;
    while (pos <= path.size()) {
        size_t slash = path.find('/', pos);
        if (slash == std::string_view::npos) slash = path.size();
        const std::string_view segment = path.substr(pos, slash - pos);
        if (segment == "..") {
            if (!segments.empty()) segments.pop_back();
        } else if (!segment.empty() && segment != ".") {
            segments.push_back(segment);
        }
        directory = segment.empty() || segment == "." || segment == "..";
        pos = slash + 1;
    }
    for (const std::string_view segment : segments) {
        out += '/';
        out.append(segment);
    }
    if (out.empty() || directory) out += '/';
    return true;
}

bool listHasToken(std::string_view list, std::string_view token) {
    while (!list.empty()) {
        const size_t comma = list.find(',');
        if (equalsIgnoreCase(trimSpaces(list.substr(0, comma)), token)) return true;
        if (comma == std::string_view::npos) break;
        list.remove_prefix(comma + 1);
    }
    return false;
}

}  // namespace wsrelay
