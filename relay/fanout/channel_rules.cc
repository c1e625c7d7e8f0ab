#include "relay/fanout/channel_rules.h"

namespace wsrelay {

ChannelRules::ChannelRules(const std::vector<Config::Channel>& entries) {
    rules_.reserve(entries.size());
    for (const Config::Channel& entry : entries) {
        const bool wildcard = entry.pattern.ends_with('*');
        Rule& rule = rules_.emplace_back();
        rule.prefix = wildcard ? entry.pattern.substr(0, entry.pattern.size() - 1) : entry.pattern;
        rule.wildcard = wildcard;
        rule.history = HistoryPolicy{entry.history_size, entry.history_ttl_ms};
        rule.presence = PresencePolicy{entry.presence, entry.presence && entry.join_leave};
        any_presence_ = any_presence_ || entry.presence;
    }
}

const ChannelRules::Rule* ChannelRules::match(std::string_view channel) const {
    for (const Rule& rule : rules_) {
        if (rule.wildcard ? channel.starts_with(rule.prefix) : channel == rule.prefix) {
            return &rule;
        }
    }
    return nullptr;
}

HistoryPolicy ChannelRules::history(std::string_view channel) const {
    const Rule* rule = match(channel);
    return rule != nullptr ? rule->history : HistoryPolicy{};
}

PresencePolicy ChannelRules::presence(std::string_view channel) const {
    const Rule* rule = match(channel);
    return rule != nullptr ? rule->presence : PresencePolicy{};
}

}  // namespace wsrelay
