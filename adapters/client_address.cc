#include "adapters/client_address.h"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

namespace wsrelay {
namespace {

constexpr unsigned kMappedV4Bits = 96;

}  // namespace

bool parseAddress(std::string_view text, AddressKey& out) {
    // inet_pton needs a terminated string; longer text is no address.
    char buf[INET6_ADDRSTRLEN];
    if (text.empty() || text.size() >= sizeof buf) return false;
    std::memcpy(buf, text.data(), text.size());
    buf[text.size()] = '\0';
    AddressKey key{};
    if (text.find(':') == std::string_view::npos) {
        in_addr v4{};
        if (inet_pton(AF_INET, buf, &v4) != 1) return false;
        key[10] = 0xff;
        key[11] = 0xff;
        std::memcpy(key.data() + 12, &v4, 4);
    } else {
        in6_addr v6{};
        if (inet_pton(AF_INET6, buf, &v6) != 1) return false;
        std::memcpy(key.data(), &v6, 16);
    }
    out = key;
    return true;
}

bool isMappedV4(const AddressKey& address) {
    for (size_t i = 0; i < 10; ++i) {
        if (address[i] != 0) return false;
    }
    return address[10] == 0xff && address[11] == 0xff;
}

AddressKey limitKey(const AddressKey& address) {
    if (isMappedV4(address)) return address;
    AddressKey key = address;
    std::memset(key.data() + 8, 0, 8);
    return key;
}

std::string addressText(const AddressKey& address) {
    char buf[INET6_ADDRSTRLEN] = {};
    if (isMappedV4(address)) {
        inet_ntop(AF_INET, address.data() + 12, buf, sizeof buf);
    } else {
        inet_ntop(AF_INET6, address.data(), buf, sizeof buf);
    }
    return buf;
}

bool parseCidr(std::string_view text, Cidr& out) {
    const size_t slash = text.find('/');
    AddressKey prefix{};
    if (!parseAddress(text.substr(0, slash), prefix)) return false;
    const bool v4 = text.substr(0, slash).find(':') == std::string_view::npos;
    unsigned bits = 128;
    if (slash != std::string_view::npos) {
        const std::string_view length = text.substr(slash + 1);
        unsigned n = 0;
        const auto [end, ec] = std::from_chars(length.data(), length.data() + length.size(), n);
        if (length.empty() || ec != std::errc() || end != length.data() + length.size() ||
            n > (v4 ? 32u : 128u)) {
            return false;
        }
        bits = v4 ? n + kMappedV4Bits : n;
    }
    Cidr cidr{prefix, bits};
    // Host bits set: "10.0.0.1/8" would silently mean 10.0.0.0/8.
    for (unsigned i = bits; i < 128; ++i) {
        if ((prefix[i / 8] >> (7 - i % 8)) & 1) return false;
    }
    out = cidr;
    return true;
}

std::string checkCidr(std::string_view text) {
    Cidr cidr;
    if (parseCidr(text, cidr)) return "";
    return "'" + std::string(text) +
           "' is not an address or a network (10.0.0.0/8, 2001:db8::/32) without host bits";
}

bool cidrContains(const Cidr& cidr, const AddressKey& address) {
    const unsigned whole = cidr.bits / 8;
    if (std::memcmp(cidr.prefix.data(), address.data(), whole) != 0) return false;
    const unsigned rest = cidr.bits % 8;
    if (rest == 0) return true;
    const auto mask = static_cast<uint8_t>(0xff << (8 - rest));
    return (cidr.prefix[whole] & mask) == (address[whole] & mask);
}

CidrList::CidrList(const std::vector<std::string>& entries) {
    for (const std::string& entry : entries) {
        Cidr cidr;
        if (parseCidr(entry, cidr)) cidrs_.push_back(cidr);
    }
}

bool CidrList::contains(const AddressKey& address) const {
    for (const Cidr& cidr : cidrs_) {
        if (cidrContains(cidr, address)) return true;
    }
    return false;
}

}  // namespace wsrelay
