#include "relay/permissions.h"

#include "adapters/jwt_verifier.h"
#include "gtest/gtest.h"

namespace wsrelay {
namespace {

jwt::Claims claims(std::string sub, std::vector<std::string> subscribe,
                   std::vector<std::string> publish = {}) {
    jwt::Claims c;
    c.subject = std::move(sub);
    c.subscribe = std::move(subscribe);
    c.publish = std::move(publish);
    return c;
}

TEST(PermissionsTest, ExactAndPrefixPatternsFromTheToken) {
    Config::Auth auth;
    const Permissions p = grantPermissions(auth, claims("42", {"room:1", "news:*"}, {"room:1"}), 255);
    EXPECT_TRUE(p.subscribe.matches("room:1"));
    EXPECT_FALSE(p.subscribe.matches("room:10"));
    EXPECT_TRUE(p.subscribe.matches("news:"));
    EXPECT_TRUE(p.subscribe.matches("news:eu"));
    EXPECT_FALSE(p.subscribe.matches("new"));
    EXPECT_TRUE(p.publish.matches("room:1"));
    EXPECT_FALSE(p.publish.matches("news:eu"));
}

TEST(PermissionsTest, StarAloneGrantsEverythingAndNothingGrantsNothing) {
    Config::Auth auth;
    EXPECT_TRUE(grantPermissions(auth, claims("u", {"*"}), 255).subscribe.matches("any:thing"));
    const Permissions none = grantPermissions(auth, claims("u", {}), 255);
    EXPECT_TRUE(none.subscribe.empty());
    EXPECT_FALSE(none.subscribe.matches("a"));
}

TEST(PermissionsTest, ConfigGrantsSubstituteTheUserAndAutoSubscribeImpliesSubscribe) {
    Config::Auth auth;
    auth.permissions.subscribe = {"user:{sub}:*"};
    auth.permissions.publish = {"echo:{sub}"};
    auth.permissions.auto_subscribe = {"user:{sub}"};
    const Permissions p = grantPermissions(auth, claims("alice", {}), 255);
    EXPECT_TRUE(p.subscribe.matches("user:alice:inbox"));
    EXPECT_FALSE(p.subscribe.matches("user:bob:inbox"));
    EXPECT_TRUE(p.subscribe.matches("user:alice"));
    EXPECT_TRUE(p.publish.matches("echo:alice"));
    ASSERT_EQ(p.auto_subscribe.size(), 1u);
    EXPECT_EQ(p.auto_subscribe[0], "user:alice");
}

TEST(PermissionsTest, AUserIdThatCannotBeAChannelGrantsNothingThroughSub) {
    Config::Auth auth;
    auth.permissions.subscribe = {"user:{sub}", "public"};
    auth.permissions.auto_subscribe = {"user:{sub}"};
    const Permissions p = grantPermissions(auth, claims("a b", {}), 255);
    EXPECT_FALSE(p.subscribe.matches("user:a b"));
    EXPECT_FALSE(p.subscribe.matches("user:"));
    EXPECT_TRUE(p.subscribe.matches("public"));
    EXPECT_TRUE(p.auto_subscribe.empty());
}

TEST(PermissionsTest, TokenPatternsNoChannelCouldMatchAreDropped) {
    Config::Auth auth;
    const Permissions p = grantPermissions(auth, claims("u", {"bad name*", "ok"}), 255);
    EXPECT_FALSE(p.subscribe.matches("bad name1"));
    EXPECT_TRUE(p.subscribe.matches("ok"));
}

}  // namespace
}  // namespace wsrelay
