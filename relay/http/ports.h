#pragma once

#include <cstdint>
#include <string_view>

// listen.port and listen.internal_port: which endpoints each one serves (docs/config.md,
// "Internal port"). The one rule the routes, the upgrade callback and the upgrade gate all read.
namespace wsrelay::http {

// The listener a connection was accepted on.
enum class Port : uint8_t {
    Public,    // listen.port: the clients' port
    Internal,  // listen.internal_port: Prometheus and the backends, inside the pod network
};

enum class Endpoint : uint8_t {
    WebSocket,  // websocket.path: the upgrade (and its 426 for a plain GET)
    Probe,      // /healthz, /readyz
    Operator,   // /metrics and /api/*: never for clients when an internal port exists
    Other,      // anything else: 404 on both ports
};

inline Endpoint endpointOf(std::string_view path, std::string_view websocket_path) {
    if (path == websocket_path) return Endpoint::WebSocket;
    if (path == "/healthz" || path == "/readyz") return Endpoint::Probe;
    if (path == "/metrics" || path.starts_with("/api/")) return Endpoint::Operator;
    return Endpoint::Other;
}

// Why an upgrade on the internal port is refused (404).
constexpr std::string_view kNoWebSocketHere =
    "no WebSocket endpoint on the internal port: clients connect to listen.port";

// Whether a connection accepted on `port` may reach `endpoint`; `split`: listen.internal_port is
// set. Without it there is only the public port, and it serves everything, as it always did.
// Refused is answered 404, as a path that does not exist.
constexpr bool serves(Port port, Endpoint endpoint, bool split) {
    switch (endpoint) {
        case Endpoint::WebSocket: return port == Port::Public;
        case Endpoint::Operator: return !split || port == Port::Internal;
        case Endpoint::Probe:
        case Endpoint::Other: return true;
    }
    return false;
}

}  // namespace wsrelay::http
