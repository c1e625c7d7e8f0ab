#include "relay/fleet/fleet_commands.h"

#include <algorithm>
#include <cstdint>
#include <utility>
#include <vector>

#include "relay/edge/http_api_body.h"
#include "relay/fanout/hub.h"
#include "relay/fleet/fleet_control.h"
#include "relay/fleet/fleet_id.h"
#include "relay/session/session.h"
#include "relay/session/session_table.h"

namespace wsrelay {
namespace {

std::string affected(size_t n) { return R"({"affected":)" + std::to_string(n) + "}"; }

}  // namespace

FleetCommands::FleetCommands(SessionTable& sessions, Hub& hub, std::string instance)
    : sessions_(sessions), hub_(hub), instance_(std::move(instance)) {}

void FleetCommands::registerOn(FleetControl& fleet) {
    fleet.on("disconnect", [this](const simdjson::dom::object& c) { return disconnect(c); });
    fleet.on("subscribe", [this](const simdjson::dom::object& c) { return subscribe(c); });
    fleet.on("unsubscribe", [this](const simdjson::dom::object& c) { return unsubscribe(c); });
    fleet.on("channels", [this](const simdjson::dom::object& c) { return channels(c); });
    fleet.on("channel", [this](const simdjson::dom::object& c) { return channel(c); });
}

// Calls act(session) for every open connection the command names here; returns how many. The
// sessions are collected first: acting on one must not change what the walk visits.
template <class F>
size_t FleetCommands::forTargets(const simdjson::dom::object& command, F&& act) {
    std::vector<Session*> targets;
    std::string_view user;
    std::string_view connection;
    if (command["user"].get(user) == simdjson::SUCCESS) {
        sessions_.forUser(user, [&targets](Session& s) { targets.push_back(&s); });
    } else if (command["connection"].get(connection) == simdjson::SUCCESS) {
        const auto ref = fleet::parseConnectionId(connection);
        if (ref && ref->instance == instance_) {
            if (Session* s = sessions_.find(ref->session)) targets.push_back(s);
        }
    }
    size_t n = 0;
    for (Session* session : targets) {
        if (session->closing()) continue;
        act(*session);
        ++n;
    }
    return n;
}

std::string FleetCommands::disconnect(const simdjson::dom::object& command) {
    int64_t code = kDefaultApiCloseCode;
    if (command["code"].get(code) != simdjson::SUCCESS || code < 4000 || code > 4999) {
        code = kDefaultApiCloseCode;
    }
    std::string_view reason;
    if (command["reason"].get(reason) != simdjson::SUCCESS || reason.empty()) {
        reason = "disconnected by the app";
    }
    return affected(forTargets(
        command, [code, reason](Session& s) { s.closeWith(static_cast<int>(code), reason); }));
}

std::string FleetCommands::subscribe(const simdjson::dom::object& command) {
    simdjson::dom::array list;
    if (command["channels"].get(list) != simdjson::SUCCESS) return affected(0);
    return affected(forTargets(command, [&list](Session& s) {
        std::string_view name;
        for (simdjson::dom::element c : list) {
            if (c.get(name) == simdjson::SUCCESS) s.join(name);
        }
    }));
}

std::string FleetCommands::unsubscribe(const simdjson::dom::object& command) {
    simdjson::dom::array list;
    if (command["channels"].get(list) != simdjson::SUCCESS) return affected(0);
    return affected(forTargets(command, [&list](Session& s) {
        std::string_view name;
        for (simdjson::dom::element c : list) {
            if (c.get(name) == simdjson::SUCCESS) s.leave(name, LeaveReason::Server);
        }
    }));
}

std::string FleetCommands::channels(const simdjson::dom::object& command) {
    std::string_view pattern;
    if (command["pattern"].get(pattern) != simdjson::SUCCESS) pattern = {};
    uint64_t limit = kDefaultChannelsLimit;
    if (command["limit"].get(limit) != simdjson::SUCCESS || limit == 0 ||
        limit > kMaxChannelsLimit) {
        limit = kDefaultChannelsLimit;
    }
    std::vector<std::pair<std::string_view, size_t>> found;
    hub_.forEachChannel([&](std::string_view name, size_t subscribers) {
        if (pattern.empty() || channelMatches(pattern, name)) found.emplace_back(name, subscribers);
    });
    const bool truncated = found.size() > limit;
    if (truncated) {
        std::nth_element(found.begin(), found.begin() + static_cast<ptrdiff_t>(limit), found.end());
        found.resize(limit);
    }
    std::sort(found.begin(), found.end());
    // Channel names need no escaping: their charset has no quote, backslash or control byte.
    std::string out = R"({"channels":[)";
    for (size_t i = 0; i < found.size(); ++i) {
        if (i != 0) out += ',';
        out += "[\"";
        out += found[i].first;
        out += "\",";
        out += std::to_string(found[i].second);
        out += ']';
    }
    out += truncated ? R"(],"truncated":true})" : R"(],"truncated":false})";
    return out;
}

std::string FleetCommands::channel(const simdjson::dom::object& command) {
    std::string_view name;
    size_t n = 0;
    if (command["channel"].get(name) == simdjson::SUCCESS) n = hub_.subscriberCount(name);
    return R"({"subscribers":)" + std::to_string(n) + "}";
}

}  // namespace wsrelay
