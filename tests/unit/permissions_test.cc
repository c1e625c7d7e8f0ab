#include "relay/auth/permissions.h"

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
    const Permissions p =
        grantPermissions(auth, claims("42", {"room:1", "news:*"}, {"room:1"}), 255);
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

TEST(AppGrantsTest, EmptyUntilTheFirstGrantAndAgainAfterTheLast) {
    AppGrants grants;
    EXPECT_TRUE(grants.empty());
    EXPECT_FALSE(grants.contains("private:room42"));
    grants.remove("private:room42");  // nothing to remove: no allocation either
    EXPECT_TRUE(grants.empty());

    grants.add("private:room42");
    grants.add("lobby");
    grants.add("private:room42");  // once
    EXPECT_FALSE(grants.empty());
    EXPECT_TRUE(grants.contains("private:room42"));
    EXPECT_TRUE(grants.contains("lobby"));
    EXPECT_FALSE(grants.contains("private:room4"));
    EXPECT_FALSE(grants.contains("private:room42x"));

    grants.remove("private:room42");
    EXPECT_FALSE(grants.contains("private:room42"));
    EXPECT_TRUE(grants.contains("lobby"));
    grants.remove("lobby");
    EXPECT_FALSE(grants.contains("lobby"));
    EXPECT_TRUE(grants.empty());
}

TEST(AppGrantsTest, RemovingAnyEntryKeepsTheOthers) {
    AppGrants grants;
    for (const char* c : {"a", "b", "c", "d"}) grants.add(c);
    grants.remove("b");  // from the middle
    grants.remove("d");  // the last
    grants.remove("x");  // never granted
    EXPECT_TRUE(grants.contains("a"));
    EXPECT_FALSE(grants.contains("b"));
    EXPECT_TRUE(grants.contains("c"));
    EXPECT_FALSE(grants.contains("d"));
    // A pointer: what a connection pays before its first grant.
    EXPECT_EQ(sizeof(AppGrants), sizeof(void*));
}

}  // namespace
}  // namespace wsrelay
