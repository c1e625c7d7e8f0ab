#include "adapters/redis_url.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdint>

namespace wsrelay {
namespace {

bool startsWithNoCase(std::string_view text, std::string_view prefix) {
    if (text.size() < prefix.size()) return false;
    for (size_t i = 0; i < prefix.size(); ++i) {
        if (std::tolower(static_cast<unsigned char>(text[i])) != prefix[i]) return false;
    }
    return true;
}

int hexValue(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

bool percentDecode(std::string_view in, std::string& out) {
    out.clear();
    for (size_t i = 0; i < in.size(); ++i) {
        if (in[i] != '%') {
            out += in[i];
            continue;
        }
        if (i + 2 >= in.size()) return false;
        const int hi = hexValue(in[i + 1]);
        const int lo = hexValue(in[i + 2]);
        if (hi < 0 || lo < 0) return false;
        out += static_cast<char>(hi * 16 + lo);
        i += 2;
    }
    return true;
}

// A decimal number in [min, max]; no sign, no spaces.
bool parseNumber(std::string_view text, int64_t min, int64_t max, int& out) {
    if (text.empty() ||
        !std::all_of(text.begin(), text.end(), [](unsigned char c) { return std::isdigit(c); })) {
        return false;
    }
    int64_t n = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
    if (ec != std::errc() || end != text.data() + text.size() || n < min || n > max) return false;
    out = static_cast<int>(n);
    return true;
}

bool hasSpaceOrControl(std::string_view s) {
    return std::any_of(s.begin(), s.end(), [](unsigned char c) { return c <= ' ' || c == 0x7f; });
}

}  // namespace

RedisUrlParse parseRedisUrl(std::string_view text) {
    RedisUrlParse out;
    auto fail = [&out](std::string message) {
        out.error = std::move(message);
        out.url = RedisUrl{};
        return out;
    };
    const bool tls = startsWithNoCase(text, "rediss://");
    if (!tls && !startsWithNoCase(text, "redis://")) {
        return fail("expected redis://[user:password@]host[:port][/db] (rediss:// for TLS)");
    }
    out.url.tls = tls;
    std::string_view rest = text.substr(tls ? 9 : 8);
    if (rest.find_first_of("?#") != std::string_view::npos) {
        return fail("query and fragment parts (? and #) are not supported");
    }
    const size_t slash = rest.find('/');
    std::string_view authority = rest.substr(0, slash);
    const std::string_view path =
        slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);

    // The last '@' ends the credentials, so an unencoded '@' in a password still works.
    const size_t at = authority.rfind('@');
    if (at != std::string_view::npos) {
        const std::string_view userinfo = authority.substr(0, at);
        authority = authority.substr(at + 1);
        const size_t colon = userinfo.find(':');
        if (colon == std::string_view::npos) {
            return fail("credentials need a password: use redis://:password@host or "
                        "redis://user:password@host");
        }
        if (!percentDecode(userinfo.substr(0, colon), out.url.user)) {
            return fail("the user has an invalid percent-escape (expected %XX)");
        }
        if (!percentDecode(userinfo.substr(colon + 1), out.url.password)) {
            return fail("the password has an invalid percent-escape (expected %XX)");
        }
        if (out.url.password.empty()) return fail("the password is empty");
    }

    std::string_view port;
    if (!authority.empty() && authority.front() == '[') {
        const size_t close = authority.find(']');
        if (close == std::string_view::npos) return fail("unterminated [IPv6] host");
        out.url.host = std::string(authority.substr(1, close - 1));
        const std::string_view after = authority.substr(close + 1);
        if (!after.empty()) {
            if (after.front() != ':') return fail("unexpected text after the [IPv6] host");
            port = after.substr(1);
            if (port.empty()) return fail("the port is empty");
        }
    } else {
        const size_t colon = authority.find(':');
        out.url.host = std::string(authority.substr(0, colon));
        if (colon != std::string_view::npos) {
            port = authority.substr(colon + 1);
            if (port.empty()) return fail("the port is empty");
        }
    }
    if (out.url.host.empty()) return fail("the host is missing");
    if (hasSpaceOrControl(out.url.host) || out.url.host.find_first_of("[]@") != std::string::npos) {
        return fail("the host '" + out.url.host + "' is not a host name or IP address");
    }
    if (!port.empty() && !parseNumber(port, 1, 65535, out.url.port)) {
        return fail("the port '" + std::string(port) + "' is not a number in 1..65535");
    }
    if (!path.empty() && !parseNumber(path, 0, 1000000, out.url.db)) {
        return fail("the database '" + std::string(path) + "' is not a number in 0..1000000");
    }
    return out;
}

std::string describeRedisUrl(const RedisUrl& url) {
    const bool v6 = url.host.find(':') != std::string::npos;
    std::string host = v6 ? "[" + url.host + "]" : url.host;
    return host + ":" + std::to_string(url.port) + "/" + std::to_string(url.db);
}

bool parseHostPort(std::string_view text, ClusterNode& out, std::string& error) {
    std::string_view host;
    std::string_view port;
    if (!text.empty() && text.front() == '[') {
        const size_t close = text.find("]:");
        if (close == std::string_view::npos) {
            error = "'" + std::string(text) + "' is not [IPv6]:port";
            return false;
        }
        host = text.substr(1, close - 1);
        port = text.substr(close + 2);
    } else {
        const size_t colon = text.rfind(':');
        if (colon == std::string_view::npos || text.find(':') != colon) {
            error = "'" + std::string(text) + "' is not host:port";
            return false;
        }
        host = text.substr(0, colon);
        port = text.substr(colon + 1);
    }
    if (hasSpaceOrControl(host)) {
        error = "'" + std::string(text) + "': the host has whitespace or control characters";
        return false;
    }
    int value = 0;
    const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (host.empty() || port.empty() || ec != std::errc() || end != port.data() + port.size() ||
        value < 1 || value > 65535) {
        error = "'" + std::string(text) + "' is not host:port with a port in 1..65535";
        return false;
    }
    out.host = std::string(host);
    out.port = value;
    return true;
}

}  // namespace wsrelay
