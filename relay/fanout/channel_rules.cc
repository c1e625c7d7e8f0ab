#include "relay/fanout/channel_rules.h"

namespace wsrelay {

ChannelRules::ChannelRules(const std::vector<Config::Channel>& entries) {
    rules_.reserve(entries.size());
    for (const Config::Channel& entry : entries) {
        Rule rule;
        const bool wildcard = !entry.pattern.empty() && entry.pattern.back() == '*';
        rule.prefix = wildcard ? entry.pattern.substr(0, entry.pattern.size() - 1) : entry.pattern;
        rule.wildcard = wildcard;
        rule.history = HistoryPolicy{entry.history_size, entry.history_ttl_ms};
        rules_.push_back(std::move(rule));
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
