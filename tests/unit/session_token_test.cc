// A session's token on a recording Wire: the expiry warning, the close at expiry, and the refresh
// command, verified by a real Authenticator against tokens signed here with a test HS256 secret.
// Token times are wall-clock (as the relay checks them); the expiry timer runs on the test's loop.

#include <ev.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "adapters/base64url.h"
#include "adapters/jwt_key_set.h"
#include "adapters/jwt_verifier.h"
#include "relay/auth/authenticator.h"
#include "relay/hook/hook_bridge.h"
#include "relay/session/session.h"
#include "tests/unit/worker_parts.h"

namespace wsrelay {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;
using testing::TestSession;
using testing::WorkerParts;

constexpr std::string_view kSecret = "a-test-secret-for-session-token-tests-0123";

// An HS256 token over `payload` (the claims' JSON), signed with `secret`.
std::string mint(std::string_view payload, std::string_view secret = kSecret) {
    const std::string signing =
        base64UrlEncode(R"({"alg":"HS256","typ":"JWT"})") + "." + base64UrlEncode(payload);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
         reinterpret_cast<const unsigned char*>(signing.data()), signing.size(), mac, &n);
    return signing + "." + base64UrlEncode({reinterpret_cast<const char*>(mac), n});
}

// A token for `user` that expires at `exp` (Unix seconds).
std::string token(std::string_view user, int64_t exp, std::string_view secret = kSecret) {
    return mint(R"({"sub":")" + std::string(user) + R"(","exp":)" + std::to_string(exp) + "}",
                secret);
}

int64_t nowSeconds() { return wallClockMs() / 1000; }

Config authConfig() {
    Config c = WorkerParts::defaultConfig();
    c.websocket.write_coalesce_ms = 0;
    c.auth.enabled = true;
    c.auth.jwt.secret = std::string(kSecret);
    c.auth.expiry_warning_ms = 60000;
    return c;
}

// WorkerParts with the Authenticator a worker has when auth is on.
struct AuthParts {
    explicit AuthParts(Config c = authConfig()) : w(std::move(c)) {
        jwt::KeySet keys;
        std::string error;
        EXPECT_TRUE(keys.addSecret(std::string(kSecret), error)) << error;
        source.publish(std::make_shared<const jwt::KeySet>(std::move(keys)));
        auth = std::make_unique<Authenticator>(w.config, source);
        w.ctx.authenticator = auth.get();
    }
    // The identity the gate would give a connection with `jwt`.
    std::unique_ptr<Identity> identity(const std::string& jwt) {
        auto id = std::make_unique<Identity>();
        EXPECT_EQ(auth->verify(jwt, *id), jwt::Failure::None);
        return id;
    }
    int64_t refreshes(metrics::RefreshResult r) { return w.metrics.token_refreshes[r].value(); }

    WorkerParts w;
    jwt::KeySource source;
    std::unique_ptr<Authenticator> auth;
};

// The text frames written by the end of this turn, then forgotten.
std::vector<std::string> turn(WorkerParts& w, TestSession& s) {
    w.flush.flushTurn();
    std::vector<std::string> texts = s.wire.texts();
    s.wire.bytes.clear();
    return texts;
}

int receive(TestSession& s, std::string_view text) {
    return s->onReceive(text.data(), text.size(), Session::Piece{});
}

std::string refresh(const std::string& jwt, int id) {
    return R"({"op":"refresh","token":")" + jwt + R"(","id":)" + std::to_string(id) + "}";
}

std::string warning(int64_t exp) {
    return R"({"op":"token_expiring","exp":)" + std::to_string(exp) + R"(,"in_ms":)";
}

// ---- expiry ----

TEST(SessionTokenTest, ATokenInsideTheWarningWindowIsWarnedOfAtOnce) {
    AuthParts a;
    const int64_t exp = nowSeconds() + 30;
    TestSession s(a.w, 1, a.identity(token("alice", exp)));
    s->start({});  // as the worker does once the session is open
    const auto texts = turn(a.w, s);
    ASSERT_THAT(texts, SizeIs(1));
    EXPECT_THAT(texts[0], HasSubstr(warning(exp)));
    EXPECT_FALSE(s->closing());
}

TEST(SessionTokenTest, ATokenFarFromExpiryIsNotWarnedOf) {
    AuthParts a;
    TestSession s(a.w, 1, a.identity(token("alice", nowSeconds() + 3600)));
    s->start({});  // as the worker does once the session is open
    EXPECT_THAT(turn(a.w, s), IsEmpty());
    ev_run(a.w.loop, EVRUN_NOWAIT);
    EXPECT_THAT(turn(a.w, s), IsEmpty());
    EXPECT_FALSE(s->closing());
}

TEST(SessionTokenTest, TheWarningComesFromTheTimerWhenTheWindowOpens) {
    Config c = authConfig();
    const int64_t exp = nowSeconds() + 3;
    // The window opens about 200 ms from now.
    c.auth.expiry_warning_ms = static_cast<int>(exp * 1000 - wallClockMs() - 200);
    AuthParts a(c);
    TestSession s(a.w, 1, a.identity(token("alice", exp)));
    s->start({});  // as the worker does once the session is open
    EXPECT_THAT(turn(a.w, s), IsEmpty());
    std::vector<std::string> texts;
    const int64_t give_up_at = wallClockMs() + 5000;
    while (texts.empty() && wallClockMs() < give_up_at) {
        ev_run(a.w.loop, EVRUN_ONCE);  // waits for the session's timer
        texts = turn(a.w, s);
    }
    ASSERT_THAT(texts, SizeIs(1));
    EXPECT_THAT(texts[0], HasSubstr(warning(exp)));
    EXPECT_FALSE(s->closing());
}

TEST(SessionTokenTest, AtExpiryTheSessionIsClosedWithTokenExpired) {
    AuthParts a;
    auto identity = std::make_unique<Identity>();
    identity->user = "alice";
    identity->expires_at_ms = wallClockMs() - 1;
    TestSession s(a.w, 1, std::move(identity));
    s->start({});                  // as the worker does once the session is open
    ev_run(a.w.loop, EVRUN_ONCE);  // the timer is due at once
    EXPECT_TRUE(s->closing());
    a.w.flush.flushTurn();
    EXPECT_EQ(s->onWriteable(), 0);  // what is queued goes first
    EXPECT_EQ(s->onWriteable(), -1);
    const auto texts = s.wire.texts();
    ASSERT_THAT(texts, SizeIs(1));  // the warning goes out before the close
    EXPECT_THAT(texts[0], HasSubstr(R"("op":"token_expiring")"));
    EXPECT_EQ(s.wire.close_code, 4003);
    EXPECT_EQ(s.wire.close_reason, "token expired");
    s.close();
    EXPECT_EQ(a.w.metrics.disconnects[metrics::closeCodeIndex(4003)].value(), 1);
}

TEST(SessionTokenTest, TheLeewayPutsTheCloseOff) {
    Config c = authConfig();
    c.auth.jwt.leeway_ms = 60000;
    AuthParts a(c);
    auto identity = std::make_unique<Identity>();
    identity->user = "alice";
    identity->expires_at_ms = wallClockMs() - 1;
    TestSession s(a.w, 1, std::move(identity));
    s->start({});  // as the worker does once the session is open
    ev_run(a.w.loop, EVRUN_NOWAIT);
    EXPECT_FALSE(s->closing());
    const auto texts = turn(a.w, s);
    ASSERT_THAT(texts, SizeIs(1));
    EXPECT_THAT(texts[0], HasSubstr(R"("op":"token_expiring")"));
}

TEST(SessionTokenTest, ATokenWithoutExpiryIsNeverWarnedOfOrClosed) {
    AuthParts a;
    auto identity = std::make_unique<Identity>();
    identity->user = "alice";  // expires_at_ms 0: no exp
    TestSession s(a.w, 1, std::move(identity));
    s->start({});  // as the worker does once the session is open
    ev_run(a.w.loop, EVRUN_NOWAIT);
    EXPECT_THAT(turn(a.w, s), IsEmpty());
    EXPECT_FALSE(s->closing());
}

// ---- refresh ----

TEST(SessionTokenTest, ARefreshForTheSameUserIsAcknowledgedAndCounted) {
    AuthParts a;
    TestSession s(a.w, 1, a.identity(token("alice", nowSeconds() + 30)));
    s->start({});                          // as the worker does once the session is open
    ASSERT_THAT(turn(a.w, s), SizeIs(1));  // warned
    EXPECT_EQ(receive(s, refresh(token("alice", nowSeconds() + 3600), 7)), 0);
    EXPECT_THAT(turn(a.w, s), ElementsAre(R"({"op":"ack","id":7})"));
    EXPECT_EQ(a.refreshes(metrics::RefreshResult::Ok), 1);
    EXPECT_EQ(a.refreshes(metrics::RefreshResult::Rejected), 0);
    // The new token is the one whose expiry counts: far off, so no warning and no close.
    ev_run(a.w.loop, EVRUN_NOWAIT);
    EXPECT_THAT(turn(a.w, s), IsEmpty());
    EXPECT_FALSE(s->closing());
}

TEST(SessionTokenTest, ARefreshedTokenIsWarnedOfAgain) {
    AuthParts a;
    TestSession s(a.w, 1, a.identity(token("alice", nowSeconds() + 30)));
    s->start({});  // as the worker does once the session is open
    ASSERT_THAT(turn(a.w, s), SizeIs(1));
    const int64_t exp = nowSeconds() + 40;
    EXPECT_EQ(receive(s, refresh(token("alice", exp), 2)), 0);
    const auto texts = turn(a.w, s);
    ASSERT_THAT(texts, SizeIs(2));
    EXPECT_THAT(texts[0], HasSubstr(warning(exp)));
    EXPECT_EQ(texts[1], R"({"op":"ack","id":2})");
}

TEST(SessionTokenTest, ARefreshThatDoesNotVerifyIsRefusedAndTheSessionKeepsItsToken) {
    AuthParts a;
    const int64_t exp = nowSeconds() + 3600;
    TestSession s(a.w, 1, a.identity(token("alice", exp)));
    s->start({});  // as the worker does once the session is open
    struct Case {
        std::string jwt;
        std::string reason;
    };
    const Case cases[] = {
        {token("alice", exp, "another-secret-another-secret-another-secret"), "bad signature"},
        {token("alice", nowSeconds() - 60), "token expired"},
        {token("bob", exp), "different user"},
        {"not.a.token", ""},
    };
    int id = 1;
    for (const Case& c : cases) {
        EXPECT_EQ(receive(s, refresh(c.jwt, id)), 0) << c.reason;
        const auto texts = turn(a.w, s);
        ASSERT_THAT(texts, SizeIs(1)) << c.reason;
        EXPECT_THAT(texts[0], HasSubstr(R"("op":"error")")) << c.reason;
        EXPECT_THAT(texts[0], HasSubstr(R"("id":)" + std::to_string(id))) << c.reason;
        EXPECT_THAT(texts[0], HasSubstr(R"("code":401)")) << c.reason;
        EXPECT_THAT(texts[0], HasSubstr(c.reason));
        EXPECT_FALSE(s->closing()) << c.reason;
        ++id;
    }
    EXPECT_EQ(a.refreshes(metrics::RefreshResult::Rejected), 4);
    EXPECT_EQ(a.refreshes(metrics::RefreshResult::Ok), 0);
    // Still alice's first token: a refresh for alice is taken.
    EXPECT_EQ(receive(s, refresh(token("alice", exp + 60), 9)), 0);
    EXPECT_THAT(turn(a.w, s), ElementsAre(R"({"op":"ack","id":9})"));
}

TEST(SessionTokenTest, ARefreshThatDropsAGrantLeavesTheChannelAndTellsTheApp) {
    Config cfg = authConfig();
    cfg.hook.url = "http://127.0.0.1:1/hook";
    cfg.hook.events = {"unsubscribe"};
    AuthParts a(cfg);
    testing::FakeHook hook;
    HookBridge bridge(a.w.ctx, hook);
    a.w.ctx.hook = &bridge;
    const int64_t exp = nowSeconds() + 3600;
    const auto withChannels = [&](std::string_view channels) {
        return mint(R"({"sub":"alice","exp":)" + std::to_string(exp) + R"(,"channels":)" +
                    std::string(channels) + "}");
    };
    TestSession s(a.w, 1, a.identity(withChannels(R"(["a","b"])")));
    s->start({});
    s->join("granted");  // the app's grant: the token's to keep
    EXPECT_EQ(receive(s, R"({"op":"subscribe","channel":"a"})"), 0);
    EXPECT_EQ(receive(s, R"({"op":"subscribe","channel":"b"})"), 0);
    turn(a.w, s);
    EXPECT_EQ(receive(s, refresh(withChannels(R"(["a"])"), 3)), 0);
    EXPECT_THAT(turn(a.w, s),
                ElementsAre(R"({"op":"unsubscribed","channel":"b","reason":"forbidden"})",
                            R"({"op":"ack","id":3})"));
    ASSERT_THAT(hook.requests, SizeIs(1));
    EXPECT_EQ(hook.requests[0].body,
              R"({"event":"unsubscribe","connection":"unit0000.1","user":"alice","meta":null,)"
              R"("channel":"b","reason":"token"})");
    EXPECT_TRUE(a.w.hub.isSubscribed(s->membership(), "a"));
    EXPECT_TRUE(a.w.hub.isSubscribed(s->membership(), "granted"));
    a.w.ctx.hook = nullptr;
    s.close();
    hook.requests.clear();
}

TEST(SessionTokenTest, ARefreshWithoutAuthIsABadRequestAndNotCounted) {
    WorkerParts w(authConfig());  // no Authenticator in the context: auth is off
    TestSession s(w, 1);
    s->start({});  // as the worker does once the session is open
    EXPECT_EQ(receive(s, refresh(token("alice", nowSeconds() + 3600), 3)), 0);
    const auto texts = turn(w, s);
    ASSERT_THAT(texts, SizeIs(1));
    EXPECT_THAT(texts[0], HasSubstr(R"("op":"error")"));
    EXPECT_THAT(texts[0], HasSubstr("authentication is disabled"));
    EXPECT_THAT(texts[0], HasSubstr(R"("code":400)"));
    EXPECT_EQ(w.metrics.token_refreshes[metrics::RefreshResult::Ok].value(), 0);
    EXPECT_EQ(w.metrics.token_refreshes[metrics::RefreshResult::Rejected].value(), 0);
}

}  // namespace
}  // namespace wsrelay
