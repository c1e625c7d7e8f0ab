#pragma once

#include <optional>
#include <string_view>
#include <vector>

#include "adapters/client_address.h"
#include "conf/config.h"

namespace wsrelay {

struct RequestHead;

// The hops a proxy chain recorded in `request`, oldest (the client's claim) first: every
// X-Forwarded-For entry, or every Forwarded element's for= value, across all lines of the header
// in order. A hop that is not an address (garbage, "unknown", an obfuscated _name, an element
// without for=) is nullopt. Ports are dropped ("192.0.2.7:4711", "[2001:db8::1]:4711").
std::vector<std::optional<AddressKey>> forwardedHops(const RequestHead& request,
                                                     ClientAddressHeader header);

// The client address a trusted proxy reports: walking the hops from the right (the ones the
// trusted proxies appended), the first that is not in `trusted`; the leftmost when every hop is
// trusted. Nullopt when the header is absent or a hop that cannot be read comes before an
// untrusted one: the caller then keeps the proxy's own address (never a client's unchecked claim).
std::optional<AddressKey> forwardedClient(const RequestHead& request, ClientAddressHeader header,
                                          const CidrList& trusted);

}  // namespace wsrelay
