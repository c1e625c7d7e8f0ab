#include "adapters/memory_fleet_presence.h"

#include <simdjson.h>

#include <charconv>
#include <string_view>
#include <unordered_set>

namespace wsrelay {
namespace {

FleetReply failure(std::string error) {
    return FleetReply{FleetStatus::Error, 0, {}, std::move(error)};
}

bool wholeNumber(const std::string& text, int64_t& out) {
    const char* end = text.data() + text.size();
    auto [ptr, ec] = std::from_chars(text.data(), end, out);
    return ec == std::errc() && ptr == end && out >= 0;
}

// The member's "user" when it is a string; the relay writes the members, so anything else is
// null.
std::optional<std::string> userOf(simdjson::dom::parser& parser, const std::string& json) {
    simdjson::dom::element doc;
    if (parser.parse(json).get(doc)) return std::nullopt;
    std::string_view user;
    if (doc["user"].get_string().get(user)) return std::nullopt;
    return std::string(user);
}

}  // namespace

std::optional<FleetReply> MemoryPresence::call(const FleetCall& call, Clock::time_point now) {
    const int64_t now_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
    if (call.function == "presence_join") return join(call, now_ms);
    if (call.function == "presence_leave") return leave(call);
    if (call.function == "presence_get") return get(call, now_ms);
    if (call.function == "presence_stats") return stats(call, now_ms);
    return std::nullopt;
}

void MemoryPresence::remove(Channel& channel, const std::string& connection, size_t& removed) {
    auto it = channel.members.find(connection);
    if (it == channel.members.end()) return;
    channel.expiries.erase({it->second.expires_ms, connection});
    channel.members.erase(it);
    ++removed;
}

void MemoryPresence::prune(Channel& channel, int64_t now_ms) {
    // Redis removes expiries <= now (ZRANGEBYSCORE -inf now).
    while (!channel.expiries.empty() && channel.expiries.begin()->first <= now_ms) {
        channel.members.erase(channel.expiries.begin()->second);
        channel.expiries.erase(channel.expiries.begin());
    }
}

void MemoryPresence::dropIfEmpty(const std::string& key) {
    auto it = channels_.find(key);
    if (it != channels_.end() && it->second.members.empty()) channels_.erase(it);
}

FleetReply MemoryPresence::join(const FleetCall& call, int64_t now_ms) {
    const auto& args = call.args;
    int64_t ttl = 0;
    if (args.size() < 3 || args.size() % 2 != 1) {
        return failure("wsrelay_presence_join: 1 <channel> <ttl_ms> <connection> <member> ...");
    }
    if (!wholeNumber(args[0], ttl) || ttl < 1) return failure("wsrelay: ttl_ms must be at least 1");
    Channel& channel = channels_[call.key];
    prune(channel, now_ms);
    int64_t added = 0;
    for (size_t i = 1; i + 1 < args.size(); i += 2) {
        const std::string& connection = args[i];
        auto [it, fresh] = channel.members.try_emplace(connection);
        if (fresh) {
            ++added;
        } else {
            channel.expiries.erase({it->second.expires_ms, connection});
        }
        it->second.json = args[i + 1];
        it->second.expires_ms = now_ms + ttl;
        channel.expiries.emplace(now_ms + ttl, connection);
    }
    FleetReply reply;
    reply.items = {std::to_string(added), std::to_string(channel.members.size())};
    return reply;
}

FleetReply MemoryPresence::leave(const FleetCall& call) {
    size_t removed = 0;
    auto it = channels_.find(call.key);
    if (it != channels_.end()) {
        for (const std::string& connection : call.args) remove(it->second, connection, removed);
        dropIfEmpty(call.key);
    }
    FleetReply reply;
    reply.integer = static_cast<int64_t>(removed);
    return reply;
}

FleetReply MemoryPresence::get(const FleetCall& call, int64_t now_ms) {
    int64_t max = 0;
    if (call.args.empty() || !wholeNumber(call.args[0], max)) {
        return failure("wsrelay: max must be a whole number >= 0");
    }
    FleetReply reply;
    reply.items.emplace_back(1, '0');  // "1" once cut
    auto it = channels_.find(call.key);
    if (it == channels_.end()) return reply;
    prune(it->second, now_ms);
    for (const auto& [expiry, connection] : it->second.expiries) {
        if (static_cast<int64_t>(reply.items.size()) > max) {
            reply.items[0][0] = '1';
            break;
        }
        reply.items.push_back(it->second.members.at(connection).json);
    }
    dropIfEmpty(call.key);
    return reply;
}

FleetReply MemoryPresence::stats(const FleetCall& call, int64_t now_ms) {
    FleetReply reply;
    reply.items = {"0", "0"};
    auto it = channels_.find(call.key);
    if (it == channels_.end()) return reply;
    prune(it->second, now_ms);
    simdjson::dom::parser parser;
    std::unordered_set<std::string> users;
    for (const auto& [connection, member] : it->second.members) {
        if (auto user = userOf(parser, member.json)) users.insert(std::move(*user));
    }
    reply.items = {std::to_string(it->second.members.size()), std::to_string(users.size())};
    dropIfEmpty(call.key);
    return reply;
}

}  // namespace wsrelay
