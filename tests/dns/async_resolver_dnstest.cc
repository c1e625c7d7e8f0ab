#include <ev.h>
#include <gtest/gtest.h>
#include <netdb.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>

#include "adapters/async_resolver.h"
#include "tests/unit/resolver_loop.h"

// AsyncResolver against a real, slow name server: tests/dns/run.sh starts slow_dns_server.py on
// 127.0.0.1:53 inside a private network and mount namespace whose /etc/resolv.conf names it, and
// runs this binary there. Run any other way, these tests skip.
namespace wsrelay {
namespace {

using testing::Outcome;
using testing::ResolverLoop;

constexpr const char* kSlowName = "slow.wsrelay.test";  // answered after the delay
constexpr const char* kFastName = "fast.wsrelay.test";  // answered at once

class AsyncResolverDns : public ::testing::Test {
protected:
    void SetUp() override {
        const char* delay = std::getenv("WSRELAY_SLOW_DNS_DELAY_MS");
        if (delay == nullptr) GTEST_SKIP() << "run through tests/dns/run.sh";
        delay_ = std::atoi(delay) / 1000.0;
        // Refuses to run against the host's own resolver, whatever the environment says.
        std::ifstream conf("/etc/resolv.conf");
        std::stringstream text;
        text << conf.rdbuf();
        ASSERT_EQ(text.str().find("nameserver 127.0.0.1\n"), 0u) << text.str();
    }

    double delay_ = 0;
    ResolverLoop l_;
};

// The point of the class: while a lookup waits for a slow name server, the loop keeps turning.
TEST_F(AsyncResolverDns, LoopKeepsTurningDuringASlowLookup) {
    AsyncResolver resolver(l_.loop);
    struct Ticks {
        ev_tstamp last = 0;
        ev_tstamp max_gap = 0;
        int count = 0;
    } ticks;
    ev_timer tick;
    ev_timer_init(
        &tick,
        [](struct ev_loop*, ev_timer* w, int) {
            auto* t = static_cast<Ticks*>(w->data);
            // ev_time(), not the loop's cached time: a blocked loop would not update that.
            const ev_tstamp now = ev_time();
            t->max_gap = std::max(t->max_gap, now - t->last);
            t->last = now;
            ++t->count;
        },
        0.01, 0.01);
    tick.data = &ticks;
    ticks.last = ev_time();
    ev_timer_start(l_.loop, &tick);

    Outcome out;
    const ev_tstamp start = ev_time();
    resolver.resolve(kSlowName, 6379, out.recorder());
    ASSERT_TRUE(l_.runUntil([&] { return out.calls > 0; }, delay_ + 8));
    const ev_tstamp took = ev_time() - start;
    ev_timer_stop(l_.loop, &tick);

    ASSERT_EQ(out.error, 0) << gai_strerror(out.error);
    EXPECT_EQ(out.addresses, std::vector<std::string>{"192.0.2.10:6379"});
    // The lookup really waited for the server, else the ticks below would prove nothing.
    EXPECT_GE(took, delay_ * 0.9);
    // Every 10 ms tick came, give or take a busy shared machine: nowhere near the 2 s delay.
    EXPECT_LT(ticks.max_gap, 0.25) << ticks.count << " ticks in " << took << " s";
    EXPECT_GE(ticks.count, static_cast<int>(took / 0.01 / 2));
}

TEST_F(AsyncResolverDns, FastNameResolves) {
    AsyncResolver resolver(l_.loop);
    Outcome out;
    resolver.resolve(kFastName, 80, out.recorder());
    ASSERT_TRUE(l_.runUntil([&] { return out.calls > 0; }, 10));
    ASSERT_EQ(out.error, 0) << gai_strerror(out.error);
    EXPECT_EQ(out.addresses, std::vector<std::string>{"192.0.2.11:80"});
}

TEST_F(AsyncResolverDns, UnknownNameIsNoName) {
    AsyncResolver resolver(l_.loop);
    Outcome out;
    resolver.resolve("nosuch.wsrelay.test", 6379, out.recorder());
    ASSERT_TRUE(l_.runUntil([&] { return out.calls > 0; }, 10));
    EXPECT_EQ(out.error, EAI_NONAME) << gai_strerror(out.error);
    EXPECT_TRUE(out.addresses.empty());
}

TEST_F(AsyncResolverDns, CancelledSlowLookupIsNeverAnswered) {
    AsyncResolver resolver(l_.loop);
    Outcome out;
    const uint64_t id = resolver.resolve(kSlowName, 6379, out.recorder());
    ASSERT_FALSE(l_.runUntil([] { return false; }, 0.2));  // the query is out
    resolver.cancel(id);
    // Idle: the lookup thread came back from the server and its answer was dropped.
    ASSERT_TRUE(l_.runUntilIdle(delay_ + 8));
    EXPECT_EQ(out.calls, 0);
}

// The resolver goes while its thread waits for the server: no answer, the loop is free at once,
// and the thread ends by itself when the server answers, touching nothing freed (ASan build).
TEST_F(AsyncResolverDns, DestroyedDuringASlowLookup) {
    // Lookup threads of earlier tests end by themselves, just after their answer: counted with
    // this one (the process's threads), one ending while this test's starts would hide it.
    ASSERT_TRUE(l_.runUntilThreadsAtMost(1, delay_ + 8));
    const int threads_before = ResolverLoop::threadCount();
    auto resolver = std::make_unique<AsyncResolver>(l_.loop);
    Outcome out;
    resolver->resolve(kSlowName, 6379, out.recorder());
    ASSERT_FALSE(l_.runUntil([] { return false; }, 0.2));
    EXPECT_GT(ResolverLoop::threadCount(), threads_before) << "no lookup thread in flight";
    const ev_tstamp destroyed_at = ev_time();
    resolver.reset();
    EXPECT_LT(ev_time() - destroyed_at, 0.1) << "the destructor waited for the lookup";
    EXPECT_TRUE(l_.runUntilIdle(0.5)) << "a watcher was left on the loop";
    EXPECT_TRUE(l_.runUntilThreadsAtMost(threads_before, delay_ + 8));
    EXPECT_EQ(out.calls, 0);
}

// With every lookup thread waiting on the slow server, another name is refused at once (not queued
// behind them) and a literal is still answered at once; the slow ones all arrive afterwards.
TEST_F(AsyncResolverDns, BoundRefusesAtOnceAndLiteralsBypassIt) {
    AsyncResolver resolver(l_.loop);
    constexpr int kBound = 16;
    std::vector<Outcome> slow(kBound);
    for (Outcome& o : slow) resolver.resolve(kSlowName, 6379, o.recorder());
    Outcome refused;
    Outcome literal;
    const ev_tstamp start = ev_time();
    resolver.resolve(kFastName, 6379, refused.recorder());
    resolver.resolve("10.1.2.3", 6379, literal.recorder());
    ASSERT_TRUE(l_.runUntil([&] { return refused.calls > 0 && literal.calls > 0; }, 5));
    EXPECT_LT(ev_time() - start, delay_ / 2);
    EXPECT_EQ(refused.error, EAI_AGAIN);
    EXPECT_EQ(literal.addresses, std::vector<std::string>{"10.1.2.3:6379"});
    for (const Outcome& o : slow) EXPECT_EQ(o.calls, 0);

    ASSERT_TRUE(l_.runUntilIdle(delay_ + 10));
    for (const Outcome& o : slow) {
        EXPECT_EQ(o.error, 0) << gai_strerror(o.error);
        EXPECT_EQ(o.addresses, std::vector<std::string>{"192.0.2.10:6379"});
    }
}

}  // namespace
}  // namespace wsrelay
