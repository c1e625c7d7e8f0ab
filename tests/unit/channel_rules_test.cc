// ChannelRules: the `channels` entries of the config matched against channel names, first match
// wins; and the pattern syntax the loader accepts, against the channel names the protocol does.

#include "relay/fanout/channel_rules.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "conf/config_loader.h"
#include "relay/protocol/protocol.h"

namespace wsrelay {
namespace {

Config::Channel entry(std::string pattern, int size, int64_t ttl_ms = 600000) {
    return Config::Channel{std::move(pattern), size, ttl_ms};
}

TEST(ChannelRulesTest, WithoutEntriesNoChannelHasHistory) {
    const ChannelRules rules({});
    EXPECT_EQ(rules.history("chat"), HistoryPolicy{});
    EXPECT_FALSE(rules.history("chat").enabled());
}

TEST(ChannelRulesTest, AnExactPatternMatchesThatChannelOnly) {
    const ChannelRules rules({entry("chat:lobby", 50, 5000)});
    EXPECT_EQ(rules.history("chat:lobby"), (HistoryPolicy{50, 5000}));
    EXPECT_EQ(rules.history("chat:lobby2"), HistoryPolicy{});
    EXPECT_EQ(rules.history("chat:lobb"), HistoryPolicy{});
    EXPECT_EQ(rules.history("CHAT:LOBBY"), HistoryPolicy{});  // names are case-sensitive
}

TEST(ChannelRulesTest, APrefixPatternMatchesAnyRestIncludingNone) {
    const ChannelRules rules({entry("chat:*", 100)});
    EXPECT_EQ(rules.history("chat:lobby").size, 100);
    EXPECT_EQ(rules.history("chat:a:b:c").size, 100);
    EXPECT_EQ(rules.history("chat:").size, 100);
    EXPECT_EQ(rules.history("chat").size, 0);
    EXPECT_EQ(rules.history("news:chat:x").size, 0);
}

TEST(ChannelRulesTest, ALoneStarMatchesEveryChannel) {
    const ChannelRules rules({entry("*", 10)});
    for (const char* channel : {"a", "chat:lobby", "x.y.z"}) {
        EXPECT_EQ(rules.history(channel).size, 10) << channel;
    }
}

TEST(ChannelRulesTest, TheFirstMatchingEntryDecides) {
    const ChannelRules rules({
        entry("chat:noisy", 0),  // no history for this one, although chat:* keeps it
        entry("chat:vip:*", 1000, 3600000),
        entry("chat:*", 100, 60000),
        entry("chat:lobby", 5),  // never reached: chat:* comes first
        entry("*", 1, 1000),
    });
    EXPECT_EQ(rules.history("chat:noisy"), (HistoryPolicy{0, 600000}));
    EXPECT_FALSE(rules.history("chat:noisy").enabled());
    EXPECT_EQ(rules.history("chat:vip:ann"), (HistoryPolicy{1000, 3600000}));
    EXPECT_EQ(rules.history("chat:lobby"), (HistoryPolicy{100, 60000}));
    EXPECT_EQ(rules.history("news"), (HistoryPolicy{1, 1000}));
}

TEST(ChannelRulesTest, BuiltFromTheLoadedConfiguration) {
    const ConfigLoad load = loadConfigText(R"(channels:
  - pattern: "orders:*"
    history_size: 300
    history_ttl_ms: 86400000
  - {pattern: "presence", history_size: 1}
)",
                                           "cfg.yaml", {});
    ASSERT_TRUE(load.ok()) << load.errors[0].toString();
    const ChannelRules rules(load.config.channels);
    EXPECT_EQ(rules.history("orders:42"), (HistoryPolicy{300, 86400000}));
    EXPECT_EQ(rules.history("presence"), (HistoryPolicy{1, 600000}));
    EXPECT_EQ(rules.history("presence:x"), HistoryPolicy{});
}

// conf/ cannot link the protocol library, so it spells the channel characters itself: a pattern
// the loader accepts must be made of exactly the characters validChannel accepts.
TEST(ChannelRulesTest, ThePatternCharactersAreTheChannelCharacters) {
    for (int c = 1; c < 256; ++c) {
        const std::string name = "a" + std::string(1, static_cast<char>(c));
        if (c == '*') continue;  // the one pattern character: tested above
        const bool channel = protocol::validChannel(name, 255);
        // Through the YAML loader, quoted so that YAML takes every byte as it is.
        std::string escaped;
        for (char ch : name) {
            if (ch == '"' || ch == '\\') escaped += '\\';
            escaped += ch;
        }
        const ConfigLoad loaded =
            loadConfigText("channels: [{pattern: \"" + escaped + "\"}]\n", "cfg.yaml", {});
        const bool accepted = loaded.ok() && loaded.config.channels.size() == 1 &&
                              loaded.config.channels[0].pattern == name;
        if (c < 0x20 || c >= 0x7f) {
            // Control and non-ASCII bytes: never channel characters; YAML may refuse them first.
            EXPECT_FALSE(channel) << c;
            EXPECT_FALSE(accepted) << c;
            continue;
        }
        EXPECT_EQ(accepted, channel) << "byte " << c << " '" << static_cast<char>(c) << "'";
    }
}

}  // namespace
}  // namespace wsrelay
