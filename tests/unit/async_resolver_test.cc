#include "adapters/async_resolver.h"

#include <gtest/gtest.h>
#include <netdb.h>

#include <memory>

#include "tests/unit/resolver_loop.h"

// What needs no name server: literals, /etc/hosts, cancelling, destroying, the bound. A real name
// server, a slow one, is in tests/dns (run inside a private network namespace).
namespace wsrelay {
namespace {

using testing::Outcome;
using testing::ResolverLoop;

TEST(AsyncResolver, Ipv4LiteralIsAnsweredOnALaterTurn) {
    ResolverLoop l;
    AsyncResolver resolver(l.loop);
    Outcome out;
    const uint64_t id = resolver.resolve("127.0.0.1", 6379, out.recorder());
    EXPECT_NE(id, 0u);
    EXPECT_EQ(out.calls, 0) << "done ran inside resolve()";
    ASSERT_TRUE(l.runUntil([&] { return out.calls > 0; }, 5));
    EXPECT_EQ(out.error, 0);
    EXPECT_EQ(out.addresses, std::vector<std::string>{"127.0.0.1:6379"});
    EXPECT_TRUE(l.runUntilIdle(5));
    EXPECT_EQ(out.calls, 1);
}

TEST(AsyncResolver, Ipv6LiteralIsAnsweredOnALaterTurn) {
    ResolverLoop l;
    AsyncResolver resolver(l.loop);
    Outcome out;
    resolver.resolve("::1", 80, out.recorder());
    EXPECT_EQ(out.calls, 0);
    ASSERT_TRUE(l.runUntil([&] { return out.calls > 0; }, 5));
    EXPECT_EQ(out.error, 0);
    EXPECT_EQ(out.addresses, std::vector<std::string>{"[::1]:80"});
}

TEST(AsyncResolver, LocalhostResolvesToLoopback) {
    ResolverLoop l;
    AsyncResolver resolver(l.loop);
    Outcome out;
    resolver.resolve("localhost", 6379, out.recorder());
    EXPECT_EQ(out.calls, 0);
    ASSERT_TRUE(l.runUntil([&] { return out.calls > 0; }, 10));
    ASSERT_EQ(out.error, 0) << gai_strerror(out.error);
    ASSERT_FALSE(out.addresses.empty());
    for (const std::string& a : out.addresses) {
        EXPECT_TRUE(a.starts_with("127.") || a == "[::1]:6379") << a;
        EXPECT_TRUE(a.ends_with(":6379")) << a;
    }
}

TEST(AsyncResolver, EmptyHostIsNoName) {
    ResolverLoop l;
    AsyncResolver resolver(l.loop);
    Outcome out;
    resolver.resolve("", 6379, out.recorder());
    EXPECT_EQ(out.calls, 0);
    ASSERT_TRUE(l.runUntil([&] { return out.calls > 0; }, 5));
    EXPECT_EQ(out.error, EAI_NONAME);
    EXPECT_TRUE(out.addresses.empty());
}

TEST(AsyncResolver, CancelledLookupsAreNeverAnswered) {
    ResolverLoop l;
    AsyncResolver resolver(l.loop);
    Outcome by_name;
    Outcome literal;
    Outcome kept;
    resolver.cancel(resolver.resolve("localhost", 6379, by_name.recorder()));
    resolver.cancel(resolver.resolve("127.0.0.1", 6379, literal.recorder()));
    resolver.resolve("127.0.0.2", 6379, kept.recorder());
    resolver.cancel(12345);  // unknown: ignored
    // Idle means the cancelled lookup's thread has answered too, and the answer was dropped.
    ASSERT_TRUE(l.runUntilIdle(10));
    EXPECT_EQ(by_name.calls, 0);
    EXPECT_EQ(literal.calls, 0);
    EXPECT_EQ(kept.calls, 1);
}

TEST(AsyncResolver, CancelAfterTheAnswerIsIgnored) {
    ResolverLoop l;
    AsyncResolver resolver(l.loop);
    Outcome out;
    const uint64_t id = resolver.resolve("127.0.0.1", 1, out.recorder());
    ASSERT_TRUE(l.runUntilIdle(5));
    resolver.cancel(id);
    EXPECT_EQ(out.calls, 1);
}

TEST(AsyncResolver, DestroyedWithLookupsInFlightAnswersNothing) {
    ResolverLoop l;
    const int threads_before = ResolverLoop::threadCount();
    auto resolver = std::make_unique<AsyncResolver>(l.loop);
    Outcome by_name;
    Outcome literal;
    resolver->resolve("localhost", 6379, by_name.recorder());
    resolver->resolve("127.0.0.1", 6379, literal.recorder());
    resolver.reset();
    // The lookup thread outlives the resolver: wait for it to finish and drop its answer, so that
    // a use after free there would show under ASan, within this test.
    EXPECT_TRUE(l.runUntilThreadsAtMost(threads_before, 10));
    EXPECT_TRUE(l.runUntilIdle(1)) << "a watcher was left on the loop";
    EXPECT_EQ(by_name.calls, 0);
    EXPECT_EQ(literal.calls, 0);
}

TEST(AsyncResolver, DoneMayDestroyTheResolver) {
    ResolverLoop l;
    auto resolver = std::make_unique<AsyncResolver>(l.loop);
    Outcome second;
    int first_calls = 0;
    resolver->resolve("127.0.0.1", 1, [&](int, std::vector<ResolvedAddress>) {
        ++first_calls;
        resolver.reset();
    });
    resolver->resolve("127.0.0.2", 1, second.recorder());
    ASSERT_TRUE(l.runUntilIdle(5));
    EXPECT_EQ(first_calls, 1);
    EXPECT_EQ(second.calls, 0);
}

TEST(AsyncResolver, DoneMayResolveAgainAndIsAnsweredOnALaterTurn) {
    ResolverLoop l;
    AsyncResolver resolver(l.loop);
    Outcome inner;
    bool inner_called_inside = false;
    resolver.resolve("127.0.0.1", 1, [&](int, std::vector<ResolvedAddress>) {
        resolver.resolve("::1", 2, inner.recorder());
        inner_called_inside = inner.calls != 0;
    });
    ASSERT_TRUE(l.runUntil([&] { return inner.calls > 0; }, 5));
    EXPECT_FALSE(inner_called_inside);
    EXPECT_EQ(inner.addresses, std::vector<std::string>{"[::1]:2"});
}

// 16 lookup threads per resolver (adapters/async_resolver.cc). Answers are collected only on the
// loop, so within one turn the 17th is refused however fast the first 16 are.
TEST(AsyncResolver, LookupsBeyondTheBoundAreRefusedWithEaiAgain) {
    ResolverLoop l;
    AsyncResolver resolver(l.loop);
    constexpr int kBound = 16;
    std::vector<Outcome> accepted(kBound);
    for (Outcome& o : accepted) resolver.resolve("localhost", 6379, o.recorder());
    Outcome refused;
    Outcome literal;
    resolver.resolve("localhost", 6379, refused.recorder());
    resolver.resolve("127.0.0.1", 6379, literal.recorder());  // a literal takes no thread
    EXPECT_EQ(refused.calls, 0) << "a refusal is answered later too, never inside resolve()";
    ASSERT_TRUE(l.runUntilIdle(20));
    EXPECT_EQ(refused.calls, 1);
    EXPECT_EQ(refused.error, EAI_AGAIN);
    EXPECT_TRUE(refused.addresses.empty());
    EXPECT_EQ(literal.error, 0);
    for (const Outcome& o : accepted) {
        EXPECT_EQ(o.calls, 1);
        EXPECT_EQ(o.error, 0) << gai_strerror(o.error);
    }
    // Slots come back once the answers are collected.
    Outcome again;
    resolver.resolve("localhost", 6379, again.recorder());
    ASSERT_TRUE(l.runUntilIdle(10));
    EXPECT_EQ(again.error, 0);
}

}  // namespace
}  // namespace wsrelay
