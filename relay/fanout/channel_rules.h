#pragma once

#include <string_view>
#include <vector>

#include "adapters/broker.h"
#include "conf/config.h"

namespace wsrelay {

// The `channels` entries of the config, matched against channel names: the first entry whose
// pattern matches decides. Built once at startup; read-only afterwards, so workers share one.
class ChannelRules {
public:
    explicit ChannelRules(const std::vector<Config::Channel>& entries);

    // What the broker keeps of `channel` (size 0: no history).
    HistoryPolicy history(std::string_view channel) const;

private:
    struct Rule {
        std::string prefix;  // the pattern without its trailing *
        bool wildcard = false;
        HistoryPolicy history;
    };
    std::vector<Rule> rules_;
};

}  // namespace wsrelay
