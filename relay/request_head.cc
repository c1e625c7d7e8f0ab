#include "relay/request_head.h"

#include <strings.h>

namespace wsrelay {
namespace {

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

bool equalsIgnoreCase(std::string_view a, std::string_view b) {
    return a.size() == b.size() && strncasecmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace

std::string_view RequestHead::path() const { return target.substr(0, target.find('?')); }

std::string_view RequestHead::header(std::string_view name) const {
    for (const auto& [n, v] : headers) {
        if (equalsIgnoreCase(n, name)) return v;
    }
    return {};
}

std::string_view RequestHead::query(std::string_view name) const {
    const size_t q = target.find('?');
    if (q == std::string_view::npos) return {};
    std::string_view rest = target.substr(q + 1);
    while (!rest.empty()) {
        const size_t amp = rest.find('&');
        const std::string_view pair = rest.substr(0, amp);
        const size_t eq = pair.find('=');
        if (pair.substr(0, eq) == name) return eq == std::string_view::npos ? "" : pair.substr(eq + 1);
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
        out.headers.emplace_back(h.substr(0, colon), trim(h.substr(colon + 1)));
    }
    return true;
}

}  // namespace wsrelay
