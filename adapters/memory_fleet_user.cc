#include "adapters/memory_fleet_user.h"

#include <algorithm>
#include <charconv>

namespace wsrelay {
namespace {

FleetReply errorReply(std::string text) {
    FleetReply reply;
    reply.status = FleetStatus::Error;
    reply.error = std::move(text);
    return reply;
}

}  // namespace

bool MemoryUserSets::call(const FleetCall& call, FleetReply& reply) {
    if (call.function == "user_admit") {
        reply = admit(call.args);
    } else if (call.function == "user_leave") {
        reply = leave(call.args);
    } else {
        return false;
    }
    return true;
}

FleetReply MemoryUserSets::admit(const std::vector<std::string>& args) {
    uint64_t limit = 0;
    const bool numeric =
        args.size() == 5 &&
        std::from_chars(args[2].data(), args[2].data() + args[2].size(), limit).ec == std::errc{};
    if (!numeric || (args[3] != "refuse" && args[3] != "evict_oldest")) {
        return errorReply("wsrelay_user_admit: 1 <fleet key> <user> <connection> <limit> "
                          "<refuse|evict_oldest> <ttl_ms>");
    }
    if (limit < 1) return errorReply("wsrelay: limit must be at least 1");
    std::vector<std::string>& held = users_[args[0]];
    const std::string& connection = args[1];
    FleetReply reply;
    reply.items.emplace_back("admit");
    if (std::find(held.begin(), held.end(), connection) != held.end()) return reply;
    if (held.size() >= limit) {
        if (args[3] == "refuse") {
            reply.items = {"refuse", std::to_string(held.size())};
            return reply;
        }
        const auto evicted = static_cast<std::ptrdiff_t>(held.size() - limit + 1);
        reply.items = {"evict"};
        reply.items.insert(reply.items.end(), std::make_move_iterator(held.begin()),
                           std::make_move_iterator(held.begin() + evicted));
        held.erase(held.begin(), held.begin() + evicted);
    }
    held.push_back(connection);
    return reply;
}

FleetReply MemoryUserSets::leave(const std::vector<std::string>& args) {
    if (args.size() < 2)
        return errorReply("wsrelay_user_leave: 1 <fleet key> <user> <connection> ...");
    auto it = users_.find(args[0]);
    FleetReply reply;
    if (it == users_.end()) return reply;
    std::vector<std::string>& held = it->second;
    for (size_t i = 1; i < args.size(); ++i) {
        auto at = std::find(held.begin(), held.end(), args[i]);
        if (at == held.end()) continue;
        held.erase(at);
        ++reply.integer;
    }
    if (held.empty()) users_.erase(it);
    return reply;
}

}  // namespace wsrelay
