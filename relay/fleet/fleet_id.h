#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

// Names in the fleet (docs/scaling.md "The fleet"): the instance, its workers, its connections,
// and the internal channels that carry commands between them.
namespace wsrelay::fleet {

// 8 of [a-z0-9], random per process start: 36^8 names, so two instances of one fleet share one
// with a chance of about n^2 / 5.6e12.
inline constexpr size_t kInstanceIdChars = 8;
std::string makeInstanceId();
bool validInstanceId(std::string_view id);

// `<instance>.<worker>`: where a worker's inbox is.
std::string workerAddress(std::string_view instance, int worker);

// A connection's id in the fleet, `<instance>.<session id>` (the session id holds its worker in
// its top 16 bits: relay/session/session_table.h). Opaque to clients and the app: at most
// kMaxConnectionIdBytes of [a-z0-9.].
inline constexpr size_t kMaxConnectionIdBytes = 64;
std::string connectionId(std::string_view instance, uint64_t session);

struct ConnectionRef {
    std::string_view instance;
    uint64_t session = 0;
    int worker = 0;
};
// The parts of a connection id; nullopt when `id` is not one.
std::optional<ConnectionRef> parseConnectionId(std::string_view id);

// Internal channels. A client channel name cannot hold a brace (docs/protocol.md "Channel names"),
// so no client can subscribe to them or publish on them.
inline constexpr std::string_view kChannelPrefix = "wsrelay:{fleet}:";
// Commands to every worker of every instance.
inline constexpr std::string_view kControlChannel = "wsrelay:{fleet}:ctl";
// A worker's inbox: commands for its connections, and the replies to its own requests.
std::string inboxChannel(std::string_view worker_address);
inline bool isFleetChannel(std::string_view channel) {
    return channel.substr(0, kChannelPrefix.size()) == kChannelPrefix;
}

}  // namespace wsrelay::fleet
