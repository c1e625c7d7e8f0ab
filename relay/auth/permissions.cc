#include "relay/auth/permissions.h"

#include "adapters/jwt_verifier.h"
#include "relay/protocol/protocol.h"

namespace wsrelay {
namespace {

constexpr std::string_view kSubPlaceholder = "{sub}";

// "" when the pattern needs {sub} and the user id cannot stand in a channel name.
std::string substitute(std::string_view pattern, std::string_view user, bool user_ok) {
    std::string out;
    size_t from = 0;
    for (size_t at; (at = pattern.find(kSubPlaceholder, from)) != std::string_view::npos;) {
        if (!user_ok) return {};
        out.append(pattern.substr(from, at - from));
        out.append(user);
        from = at + kSubPlaceholder.size();
    }
    out.append(pattern.substr(from));
    return out;
}

// A pattern is usable when what precedes its optional '*' could be (the start of) a channel name.
bool usablePattern(std::string_view pattern, size_t max_channel_bytes) {
    if (pattern == "*") return true;
    std::string_view stem = pattern;
    if (stem.ends_with('*')) stem.remove_suffix(1);
    return protocol::validChannel(stem, max_channel_bytes);
}

void addAll(ChannelPatterns& into, const std::vector<std::string>& patterns, size_t max_bytes) {
    for (const std::string& p : patterns) {
        if (usablePattern(p, max_bytes)) into.add(p);
    }
}

}  // namespace

void ChannelPatterns::add(std::string_view pattern) {
    if (pattern == "*") {
        all_ = true;
    } else if (pattern.ends_with('*')) {
        prefixes_.emplace_back(pattern.substr(0, pattern.size() - 1));
    } else {
        exact_.emplace_back(pattern);
    }
}

bool ChannelPatterns::matches(std::string_view channel) const {
    if (all_) return true;
    for (const std::string& e : exact_) {
        if (e == channel) return true;
    }
    for (const std::string& p : prefixes_) {
        if (channel.starts_with(p)) return true;
    }
    return false;
}

void AppGrants::add(std::string_view channel) {
    if (contains(channel)) return;
    if (!channels_) channels_ = std::make_unique<std::vector<std::string>>();
    channels_->emplace_back(channel);
}

void AppGrants::remove(std::string_view channel) {
    if (!channels_) return;
    auto& list = *channels_;
    for (size_t i = 0; i < list.size(); ++i) {
        if (list[i] != channel) continue;
        if (i + 1 != list.size()) list[i] = std::move(list.back());
        list.pop_back();
        break;
    }
    if (list.empty()) channels_.reset();
}

bool AppGrants::contains(std::string_view channel) const {
    if (!channels_) return false;
    for (const std::string& c : *channels_) {
        if (c == channel) return true;
    }
    return false;
}

Permissions grantPermissions(const Config::Auth& auth, const jwt::Claims& claims,
                             size_t max_channel_bytes) {
    Permissions out;
    addAll(out.subscribe, claims.subscribe, max_channel_bytes);
    addAll(out.publish, claims.publish, max_channel_bytes);
    const bool user_ok = protocol::validChannel(claims.subject, max_channel_bytes);
    auto grant = [&](ChannelPatterns& into, const std::vector<std::string>& patterns) {
        for (const std::string& p : patterns) {
            std::string concrete = substitute(p, claims.subject, user_ok);
            if (!concrete.empty() && usablePattern(concrete, max_channel_bytes)) {
                into.add(concrete);
            }
        }
    };
    grant(out.subscribe, auth.permissions.subscribe);
    grant(out.publish, auth.permissions.publish);
    for (const std::string& p : auth.permissions.auto_subscribe) {
        std::string channel = substitute(p, claims.subject, user_ok);
        if (!channel.empty() && protocol::validChannel(channel, max_channel_bytes)) {
            out.subscribe.add(channel);
            out.auto_subscribe.push_back(std::move(channel));
        }
    }
    return out;
}

}  // namespace wsrelay
