#include "adapters/memory_fleet_occupancy.h"

#include <algorithm>
#include <charconv>
#include <iterator>
#include <vector>

namespace wsrelay {
namespace {

bool count(const std::string& text, int64_t& out) {
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
    return ec == std::errc() && end == text.data() + text.size() && out >= 0;
}

FleetReply error(std::string text) {
    return FleetReply{FleetStatus::Error, 0, {}, std::move(text)};
}

// {head, events...}: the functions' replies.
FleetReply reply(std::string head, std::vector<std::string> events) {
    FleetReply r;
    r.items.reserve(1 + events.size());
    r.items.push_back(std::move(head));
    std::move(events.begin(), events.end(), std::back_inserter(r.items));
    return r;
}

}  // namespace

std::string MemoryOccupancy::nextSeq() {
    const int64_t clock = std::chrono::duration_cast<std::chrono::microseconds>(
                              std::chrono::system_clock::now().time_since_epoch())
                              .count();
    seq_ = std::max(seq_ + 1, clock);
    return std::to_string(seq_);
}

std::optional<FleetReply> MemoryOccupancy::call(const FleetCall& call, Clock::time_point now) {
    if (call.function == "occupancy_update") return update(call, now);
    if (call.function == "occupancy_due") return due(call, now);
    return std::nullopt;
}

FleetReply MemoryOccupancy::update(const FleetCall& call, Clock::time_point now) {
    const auto& args = call.args;
    int64_t delay_ms = 0;
    if (args.size() < 2 || !count(args[1], delay_ms)) {
        return error(
            "wsrelay_occupancy_update: 1 <base> <holder> <delay_ms> <+channel|-channel>...");
    }
    const std::string& holder = args[0];
    int64_t pending = 0;
    std::vector<std::string> events;  // channel, seq, ...
    auto release = [&](const std::string& channel) {
        auto it = holders_.find(channel);
        if (it == holders_.end() || it->second.erase(holder) == 0 || !it->second.empty()) return;
        holders_.erase(it);
        if (!occupied_.contains(channel) || pending_.contains(channel)) return;
        const Clock::time_point deadline = now + std::chrono::milliseconds(delay_ms);
        pending_.emplace(channel, deadline);
        deadlines_.emplace(deadline, channel);
        ++pending;
    };
    for (size_t i = 2; i < args.size(); ++i) {
        const std::string& op = args[i];
        if (op == "*") {
            std::vector<std::string> held;
            for (const auto& [channel, holders] : holders_) {
                if (holders.contains(holder)) held.push_back(channel);
            }
            for (const std::string& channel : held) release(channel);
            continue;
        }
        if (op.empty() || (op[0] != '+' && op[0] != '-')) {
            return error("wsrelay_occupancy_update: an op is +<channel>, -<channel> or *, got " +
                         op);
        }
        std::string channel = op.substr(1);
        if (op[0] == '-') {
            release(channel);
            continue;
        }
        auto& holders = holders_[channel];
        if (!holders.insert(holder).second || holders.size() != 1) continue;
        if (auto p = pending_.find(channel); p != pending_.end()) {
            auto [first, last] = deadlines_.equal_range(p->second);
            for (auto it = first; it != last; ++it) {
                if (it->second == channel) {
                    deadlines_.erase(it);
                    break;
                }
            }
            pending_.erase(p);
            continue;  // emptied and held again within the delay: no event
        }
        if (!occupied_.insert(channel).second) continue;
        events.push_back(std::move(channel));
        events.push_back(nextSeq());
    }
    return reply(std::to_string(pending), std::move(events));
}

FleetReply MemoryOccupancy::due(const FleetCall& call, Clock::time_point now) {
    const auto& args = call.args;
    int64_t delay_ms = 0;
    int64_t max = 0;
    if (args.size() < 2 || !count(args[0], delay_ms) || !count(args[1], max)) {
        return error("wsrelay_occupancy_due: 1 <base> <delay_ms> <max>");
    }
    std::vector<std::string> events;  // channel, seq, ...
    int64_t taken = 0;
    bool more = false;
    while (!deadlines_.empty() && deadlines_.begin()->first <= now) {
        if (taken == max) {
            more = true;
            break;
        }
        ++taken;
        std::string channel = std::move(deadlines_.begin()->second);
        deadlines_.erase(deadlines_.begin());
        pending_.erase(channel);
        if (holders_.contains(channel) || occupied_.erase(channel) == 0) continue;
        events.push_back(std::move(channel));
        events.push_back(nextSeq());
    }
    return reply(more ? "1" : "0", std::move(events));
}

}  // namespace wsrelay
