#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

// Client addresses as the per-address limits see them, and the CIDR lists that name trusted
// proxies and exempt addresses (limits.trusted_proxies, limits.per_ip_exempt). No dependency:
// conf/ checks the lists with the same parser the relay matches them with.
namespace wsrelay {

// An address as a map key: IPv4 mapped into IPv6 (::ffff:a.b.c.d), so one map serves both
// families.
using AddressKey = std::array<uint8_t, 16>;

// "192.0.2.7" or "2001:db8::1" (no brackets, no port, no zone). False for anything else.
bool parseAddress(std::string_view text, AddressKey& out);
bool isMappedV4(const AddressKey& address);
// What the per-address limits count under: the address itself for IPv4, its /64 for IPv6 (one
// host usually holds a whole /64, so counting single IPv6 addresses would limit nothing).
AddressKey limitKey(const AddressKey& address);
// For logs: "192.0.2.7" or "2001:db8::1".
std::string addressText(const AddressKey& address);

// A network: `bits` leading bits of `prefix`, counted over the mapped 128-bit form (an IPv4 /8
// is bits = 104).
struct Cidr {
    AddressKey prefix{};
    unsigned bits = 0;
};
// "10.0.0.0/8", "2001:db8::/32", or a single address ("192.0.2.7" = /32, "::1" = /128). Bits set
// after the prefix length are refused ("10.0.0.1/8"): the entry would not mean what it says.
bool parseCidr(std::string_view text, Cidr& out);
// The configuration check: empty when `text` is a valid CIDR, else why not.
std::string checkCidr(std::string_view text);
bool cidrContains(const Cidr& cidr, const AddressKey& address);

// A list of networks, read once from configuration (entries were checked with checkCidr; an
// invalid one is skipped).
class CidrList {
public:
    CidrList() = default;
    explicit CidrList(const std::vector<std::string>& entries);
    bool contains(const AddressKey& address) const;
    bool empty() const { return cidrs_.empty(); }

private:
    std::vector<Cidr> cidrs_;
};

}  // namespace wsrelay
