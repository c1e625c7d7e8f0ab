// libFuzzer target for what the per-address limits read of a request a trusted proxy forwarded:
// the X-Forwarded-For and Forwarded hops (relay/admission/forwarded_for.h), and the CIDR parser
// the same bytes would meet in limits.trusted_proxies.
// The properties: nothing crashes or reads out of bounds; a client found is one of the hops read,
// and is not a trusted proxy unless every hop is; a CIDR that parses contains its own prefix.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "adapters/client_address.h"
#include "relay/admission/forwarded_for.h"
#include "relay/http/request_head.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using wsrelay::fuzz::check;

using namespace wsrelay;

void checkHeader(const RequestHead& head, ClientAddressHeader which, const CidrList& trusted) {
    const auto hops = forwardedHops(head, which);
    const auto client = forwardedClient(head, which, trusted);
    if (!client) return;
    bool found = false;
    bool all_trusted = true;
    for (const auto& hop : hops) {
        if (hop && *hop == *client) found = true;
        if (!hop || !trusted.contains(*hop)) all_trusted = false;
    }
    check(found, "client is not one of the hops");
    check(!trusted.contains(*client) || all_trusted, "a trusted proxy taken for the client");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    Cidr cidr;
    if (parseCidr(input, cidr)) {
        check(cidrContains(cidr, cidr.prefix), "a network without its own prefix", input);
    }
    const std::string head =
        "GET /ws HTTP/1.1\r\nHost: relay\r\nX-Forwarded-For: " + std::string(input) +
        "\r\nForwarded: " + std::string(input) + "\r\n\r\n";
    RequestHead request;
    if (!parseRequestHead(head, request)) return 0;
    const CidrList trusted({"10.0.0.0/8", "2001:db8::/32", "127.0.0.1"});
    checkHeader(request, ClientAddressHeader::XForwardedFor, trusted);
    checkHeader(request, ClientAddressHeader::Forwarded, trusted);
    return 0;
}
