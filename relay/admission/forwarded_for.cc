#include "relay/admission/forwarded_for.h"

#include "relay/http/request_head.h"

namespace wsrelay {
namespace {

// "192.0.2.7", "192.0.2.7:4711", "2001:db8::1", "[2001:db8::1]", "[2001:db8::1]:4711".
std::optional<AddressKey> hopAddress(std::string_view text) {
    text = trimSpaces(text);
    AddressKey key{};
    if (!text.empty() && text.front() == '[') {
        const size_t close = text.find(']');
        if (close == std::string_view::npos) return std::nullopt;
        const std::string_view rest = text.substr(close + 1);
        if (!rest.empty() && rest.front() != ':') return std::nullopt;
        text = text.substr(1, close - 1);
        if (text.find(':') == std::string_view::npos) return std::nullopt;  // "[192.0.2.7]"
    } else if (const size_t colon = text.find(':');
               colon != std::string_view::npos &&
               text.find(':', colon + 1) == std::string_view::npos) {
        text = text.substr(0, colon);  // IPv4 with a port: one colon only
    }
    if (!parseAddress(text, key)) return std::nullopt;
    return key;
}

// Splits `value` at `sep` outside double quotes.
template <typename Each>
void splitOutsideQuotes(std::string_view value, char sep, Each each) {
    bool quoted = false;
    size_t start = 0;
    for (size_t i = 0; i < value.size(); ++i) {
        const char c = value[i];
        if (c == '"') quoted = !quoted;
        if (c == '\\' && quoted) ++i;  // an escaped character inside quotes
        if (c == sep && !quoted) {
            each(value.substr(start, i - start));
            start = i + 1;
        }
    }
    each(value.substr(start));
}

// One Forwarded element ("for=192.0.2.7;proto=https;by=..."): its for= address.
std::optional<AddressKey> forwardedFor(std::string_view element) {
    std::optional<AddressKey> found;
    bool seen = false;
    bool valid = true;
    splitOutsideQuotes(element, ';', [&](std::string_view pair) {
        pair = trimSpaces(pair);
        const size_t eq = pair.find('=');
        if (eq == std::string_view::npos || !equalsIgnoreCase(pair.substr(0, eq), "for")) return;
        if (seen) valid = false;  // two for= in one element: ambiguous
        seen = true;
        std::string_view v = pair.substr(eq + 1);
        if (v.size() >= 2 && v.front() == '"' && v.back() == '"') {
            v = v.substr(1, v.size() - 2);
            if (v.find('\\') != std::string_view::npos) return;  // no address needs escapes
        }
        found = hopAddress(v);
    });
    return valid ? found : std::nullopt;
}

}  // namespace

std::vector<std::optional<AddressKey>> forwardedHops(const RequestHead& request,
                                                     ClientAddressHeader header) {
    const std::string_view name =
        header == ClientAddressHeader::Forwarded ? "forwarded" : "x-forwarded-for";
    std::vector<std::optional<AddressKey>> hops;
    for (const auto& [field, value] : request.headers) {
        if (!equalsIgnoreCase(field, name)) continue;
        if (header == ClientAddressHeader::Forwarded) {
            splitOutsideQuotes(value, ',', [&](std::string_view element) {
                hops.push_back(forwardedFor(element));
            });
        } else {
            splitOutsideQuotes(value, ',',
                               [&](std::string_view entry) { hops.push_back(hopAddress(entry)); });
        }
    }
    return hops;
}

std::optional<AddressKey> forwardedClient(const RequestHead& request, ClientAddressHeader header,
                                          const CidrList& trusted) {
    const auto hops = forwardedHops(request, header);
    if (hops.empty()) return std::nullopt;
    for (auto it = hops.rbegin(); it != hops.rend(); ++it) {
        if (!it->has_value()) return std::nullopt;  // the chain the proxies vouch for is broken
        if (!trusted.contains(**it)) return *it;
    }
    return hops.front();
}

}  // namespace wsrelay
