#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "conf/config.h"

namespace wsrelay {

namespace jwt {
struct Claims;
}

// Channel patterns: an exact name, or a prefix ending in '*' ("chat:*"; "*" alone is every
// channel). A handful per connection, so a linear scan beats any index.
class ChannelPatterns {
public:
    void add(std::string_view pattern);
    bool matches(std::string_view channel) const;
    bool empty() const { return exact_.empty() && prefixes_.empty() && !all_; }

private:
    std::vector<std::string> exact_;
    std::vector<std::string> prefixes_;
    bool all_ = false;
};

// What one authenticated connection may do, from its token's claims and auth.permissions.
struct Permissions {
    ChannelPatterns subscribe;
    ChannelPatterns publish;
    std::vector<std::string> auto_subscribe;  // exact channels, also in `subscribe`
};

// The channels the app subscribed one connection to (the connect answer's or a hook answer's
// "subscribe"). They are the app's decision, not the token's: a token refresh re-checks only the
// channels the client subscribed to itself. A grant ends when the connection leaves the channel,
// whoever asks. One null pointer until the first grant: most connections never get one.
class AppGrants {
public:
    void add(std::string_view channel);
    void remove(std::string_view channel);
    bool contains(std::string_view channel) const;
    bool empty() const { return channels_ == nullptr; }

private:
    std::unique_ptr<std::vector<std::string>> channels_;  // a handful at most: a linear scan
};

// Who a connection is, for as long as its token (or the refreshed one) holds.
struct Identity {
    std::string user;
    int64_t expires_at_ms = 0;  // 0 = the token has no exp
    Permissions permissions;
    std::string info;  // the info claim's JSON (presence); empty = none
};

// Claims patterns as the token gives them, config patterns with {sub} replaced by the user id.
// A user id that is not a valid channel name makes the {sub} patterns grant nothing; token
// patterns with characters no channel has are dropped (they could never match).
Permissions grantPermissions(const Config::Auth& auth, const jwt::Claims& claims,
                             size_t max_channel_bytes);

}  // namespace wsrelay
