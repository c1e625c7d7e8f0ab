#pragma once

// Addresses and client sockets shared by the WebSocket, Redis and HTTP connections.

#include <netinet/in.h>

#include <string>
#include <string_view>

namespace wsrelay::loadgen {

// Parses IP:PORT with an IPv4 literal. False with `error` set otherwise.
bool parseHostPort(std::string_view text, sockaddr_in& out, std::string& error);

// Parses SCHEME://IP[:PORT][/PATH] (`scheme` is "ws" or "http"; port 80 when omitted): `authority`
// is IP[:PORT] as written (for the Host header), `path` at least "/".
bool parseUrl(std::string_view url, std::string_view scheme, sockaddr_in& addr,
              std::string& authority, std::string& path, std::string& error);

// A non-blocking, close-on-exec TCP socket bound to `source` (IP_BIND_ADDRESS_NO_PORT, so the
// ephemeral port is picked per destination) with TCP_NODELAY, its connect() under way. -1 with
// `error` set on failure.
int openClientSocket(const sockaddr_in& to, in_addr source, std::string& error);

}  // namespace wsrelay::loadgen
