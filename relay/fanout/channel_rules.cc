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
    }
}

HistoryPolicy ChannelRules::history(std::string_view channel) const {
    for (const Rule& rule : rules_) {
        if (rule.wildcard ? channel.starts_with(rule.prefix) : channel == rule.prefix) {
            return rule.history;
        }
    }
    return {};
}

}  // namespace wsrelay
