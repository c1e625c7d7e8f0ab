#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "adapters/broker.h"
#include "conf/config.h"

namespace wsrelay {

// Whether a channel keeps presence (docs/scaling.md "Presence"): its members are kept fleet-wide,
// and with `join_leave` its subscribers hear who joins and leaves.
struct PresencePolicy {
    bool enabled = false;
    bool join_leave = false;
    bool operator==(const PresencePolicy&) const = default;
};

// The `channels` entries of the config (docs/config.md), matched against channel names: the first
// entry whose pattern matches decides, and a channel no entry matches has the defaults (no
// history). A pattern is an exact channel name, or a prefix followed by * that matches any rest,
// none included; a lone * matches every channel. The loader has checked the patterns. Built once
// at startup; read-only afterwards, so workers share one.
class ChannelRules {
public:
    explicit ChannelRules(const std::vector<Config::Channel>& entries);

    // What the broker keeps of `channel` (size 0: no history). Walks the entries in order, as the
    // first match wins; a configuration holds few.
    HistoryPolicy history(std::string_view channel) const;
    // Whether `channel` keeps presence (the same first match).
    PresencePolicy presence(std::string_view channel) const;
    // Whether any entry keeps presence: without, the presence machinery stays idle.
    bool anyPresence() const { return any_presence_; }

private:
    struct Rule {
        std::string prefix;  // the pattern without its trailing *
        bool wildcard = false;
        HistoryPolicy history;
        PresencePolicy presence;
    };
    const Rule* match(std::string_view channel) const;
    std::vector<Rule> rules_;
    bool any_presence_ = false;
};

}  // namespace wsrelay
