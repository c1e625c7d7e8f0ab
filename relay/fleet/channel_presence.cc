#include "relay/fleet/channel_presence.h"

#include <charconv>
#include <utility>

#include "adapters/redis_payload.h"
#include "relay/fanout/channel_rules.h"
#include "relay/fleet/fleet_calls.h"
#include "relay/fleet/fleet_id.h"
#include "relay/protocol/protocol.h"

namespace wsrelay {
namespace {

constexpr std::string_view kJoinLeaveHead = "wsrelay:pj:{";

int64_t integerItem(const FleetReply& reply, size_t index) {
    if (index >= reply.items.size()) return 0;
    const std::string& text = reply.items[index];
    int64_t value = 0;
    std::from_chars(text.data(), text.data() + text.size(), value);
    return value;
}

}  // namespace

ChannelPresence::ChannelPresence(struct ev_loop* loop, const ChannelRules& rules, FleetCalls& calls,
                                 Facts facts, Options options)
    : loop_(loop), rules_(rules), calls_(calls), facts_(std::move(facts)),
      options_(std::move(options)) {
    ev_timer_init(&refresh_, onRefresh, 0., 0.);
    refresh_.data = this;
}

ChannelPresence::~ChannelPresence() { stop(); }

void ChannelPresence::start() {
    if (!rules_.anyPresence()) return;
    const double every = static_cast<double>(options_.refresh_ms) / 1000.0;
    ev_timer_set(&refresh_, every, every);
    ev_timer_start(loop_, &refresh_);
}

void ChannelPresence::stop() {
    if (loop_ != nullptr) ev_timer_stop(loop_, &refresh_);
}

std::string ChannelPresence::joinLeaveChannel(std::string_view channel) {
    std::string name(kJoinLeaveHead);
    name.append(channel);
    name += '}';
    return name;
}

std::string ChannelPresence::connectionId(uint64_t session) const {
    return fleet::connectionId(options_.instance, session);
}

std::string ChannelPresence::memberJson(uint64_t session) const {
    std::string user;
    std::string info;
    if (facts_) facts_(session, user, info);
    std::string out = R"({"user":)";
    if (user.empty()) {
        out += "null";
    } else {
        appendJsonString(user, out);
    }
    out += R"(,"connection":")";
    out += connectionId(session);
    out += R"(","info":)";
    out += info.empty() ? std::string_view("null") : std::string_view(info);
    out += '}';
    return out;
}

void ChannelPresence::onPresenceJoin(const Membership& m, std::string_view channel) {
    auto it = channels_.find(channel);
    if (it == channels_.end()) {
        it = channels_.emplace(std::string(channel), Channel{}).first;
        it->second.join_leave = rules_.presence(channel).join_leave;
    }
    std::string member = memberJson(m.id());
    it->second.members[m.id()] = member;
    std::vector<std::string> args{std::to_string(options_.ttl_ms), connectionId(m.id()), member};
    join(channel, std::move(args), it->second.join_leave, std::move(member));
}

void ChannelPresence::onPresenceLeave(const Membership& m, std::string_view channel) {
    auto it = channels_.find(channel);
    if (it == channels_.end()) return;
    Channel& ch = it->second;
    auto member = ch.members.find(m.id());
    if (member == ch.members.end()) return;
    const std::string json = std::move(member->second);
    ch.members.erase(member);
    calls_.call("presence_leave", std::string(channel), {connectionId(m.id())});
    // The count is the fleet's at the last join or refresh this worker made: an estimate, which
    // only decides whether the frame is worth sending.
    if (ch.join_leave && options_.max_join_leave_members > 0 &&
        ch.clients <= options_.max_join_leave_members) {
        publishFrame(channel, "leave", json);
    }
    if (ch.clients > 0) --ch.clients;
    if (ch.members.empty()) channels_.erase(it);
}

void ChannelPresence::join(std::string_view channel, std::vector<std::string> args, bool announce,
                           std::string member) {
    calls_.call("presence_join", std::string(channel), std::move(args),
                [this, name = std::string(channel), announce,
                 member = std::move(member)](FleetReply&& reply) {
                    if (reply.status != FleetStatus::Ok) return;  // the next refresh joins again
                    const int64_t added = integerItem(reply, 0);
                    const int64_t clients = integerItem(reply, 1);
                    auto it = channels_.find(name);
                    if (it != channels_.end()) it->second.clients = clients;
                    if (announce && added > 0 && options_.max_join_leave_members > 0 &&
                        clients <= options_.max_join_leave_members) {
                        publishFrame(name, "join", member);
                    }
                });
}

void ChannelPresence::publishFrame(std::string_view channel, std::string_view op,
                                   std::string_view member) {
    std::string frame = R"({"op":")";
    frame += op;
    frame += R"(","channel":")";
    frame += channel;  // a valid channel name: nothing to escape
    frame += R"(","member":)";
    frame += member;
    frame += '}';
    calls_.call("publish", joinLeaveChannel(channel), {std::move(frame)});
}

void ChannelPresence::refreshAll() {
    const std::string ttl = std::to_string(options_.ttl_ms);
    for (const auto& [name, ch] : channels_) {
        std::vector<std::string> args;
        for (const auto& [session, member] : ch.members) {
            if (args.empty()) {
                args.reserve(1 + 2 * std::min(ch.members.size(), kRefreshSlice));
                args.push_back(ttl);
            }
            args.push_back(connectionId(session));
            args.push_back(member);
            if (args.size() == 1 + 2 * kRefreshSlice)
                join(name, std::exchange(args, {}), false, {});
        }
        if (!args.empty()) join(name, std::move(args), false, {});
    }
}

void ChannelPresence::onRefresh(struct ev_loop*, ev_timer* w, int) {
    static_cast<ChannelPresence*>(w->data)->refreshAll();
}

void ChannelPresence::onChannelOpened(std::string_view channel) {
    if (broker_ != nullptr && rules_.presence(channel).join_leave) {
        broker_->subscribe(joinLeaveChannel(channel));
    }
}

void ChannelPresence::onChannelClosed(std::string_view channel) {
    if (broker_ != nullptr && rules_.presence(channel).join_leave) {
        broker_->unsubscribe(joinLeaveChannel(channel));
    }
}

bool ChannelPresence::onBrokerMessage(std::string_view channel, std::string_view data, Hub& hub) {
    if (!channel.starts_with(kJoinLeaveHead) || !channel.ends_with('}')) return false;
    const std::string_view name =
        channel.substr(kJoinLeaveHead.size(), channel.size() - kJoinLeaveHead.size() - 1);
    // Only the frames a relay publishes there; anything else someone wrote into Redis is dropped.
    if (data.starts_with(R"({"op":"join",)") || data.starts_with(R"({"op":"leave",)")) {
        hub.notify(name, protocol::encodeControl(0x1, data));
    }
    return true;
}

void ChannelPresence::members(std::string_view channel, int max,
                              std::function<void(Members&&)> done) {
    calls_.call("presence_get", std::string(channel), {std::to_string(max)},
                [done = std::move(done)](FleetReply&& reply) {
                    Members out;
                    out.status = reply.status;
                    if (reply.status == FleetStatus::Ok && !reply.items.empty()) {
                        out.cut = reply.items[0] == "1";
                        out.members.assign(std::make_move_iterator(reply.items.begin() + 1),
                                           std::make_move_iterator(reply.items.end()));
                    }
                    done(std::move(out));
                });
}

void ChannelPresence::stats(std::string_view channel, std::function<void(Stats&&)> done) {
    calls_.call("presence_stats", std::string(channel), {},
                [done = std::move(done)](FleetReply&& reply) {
                    Stats out;
                    out.status = reply.status;
                    if (reply.status == FleetStatus::Ok) {
                        out.clients = integerItem(reply, 0);
                        out.users = integerItem(reply, 1);
                    }
                    done(std::move(out));
                });
}

size_t ChannelPresence::localMembers(std::string_view channel) const {
    auto it = channels_.find(channel);
    return it == channels_.end() ? 0 : it->second.members.size();
}

}  // namespace wsrelay
