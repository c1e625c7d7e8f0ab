#pragma once

// A libev loop for AsyncResolver tests, shared by tests/unit and tests/dns: runs it until a
// condition holds, until it has nothing left to do, or until the lookup threads are gone.

#include <arpa/inet.h>
#include <ev.h>
#include <netinet/in.h>

#include <filesystem>
#include <functional>
#include <iterator>
#include <string>
#include <vector>

#include "adapters/async_resolver.h"

namespace wsrelay::testing {

class ResolverLoop {
public:
    ResolverLoop() : loop(ev_loop_new(EVFLAG_AUTO)) {}
    ~ResolverLoop() { ev_loop_destroy(loop); }
    ResolverLoop(const ResolverLoop&) = delete;
    ResolverLoop& operator=(const ResolverLoop&) = delete;

    // Turns the loop until `finished()` or `seconds` pass; returns finished().
    bool runUntil(const std::function<bool()>& finished, double seconds) {
        bool expired = false;
        ev_timer guard;
        ev_timer_init(&guard, onExpired, seconds, 0.);
        guard.data = &expired;
        ev_timer_start(loop, &guard);
        while (!finished() && !expired) ev_run(loop, EVRUN_ONCE);
        ev_timer_stop(loop, &guard);
        return finished();
    }

    // Runs the loop until no watcher is left active (a resolver that owes nothing, and has no
    // lookup thread running, keeps none), or `seconds` pass. True if it ran dry.
    bool runUntilIdle(double seconds) {
        bool expired = false;
        ev_timer guard;
        ev_timer_init(&guard, onIdleGuard, seconds, 0.);
        guard.data = &expired;
        ev_timer_start(loop, &guard);
        ev_unref(loop);  // the guard alone does not keep ev_run() going
        ev_run(loop, 0);
        if (!expired) {
            ev_ref(loop);
            ev_timer_stop(loop, &guard);
        }
        return !expired;
    }

    // Threads of this process: a resolver's lookup threads are detached, and this is how a test
    // sees them end.
    static int threadCount() {
        const std::filesystem::directory_iterator tasks("/proc/self/task");
        return static_cast<int>(std::distance(begin(tasks), end(tasks)));
    }

    // Turns the loop (every 10 ms) until at most `count` threads remain, or `seconds` pass.
    bool runUntilThreadsAtMost(int count, double seconds) {
        ev_timer tick;
        ev_timer_init(&tick, onTick, 0.01, 0.01);
        ev_timer_start(loop, &tick);
        const bool ok = runUntil([count] { return threadCount() <= count; }, seconds);
        ev_timer_stop(loop, &tick);
        return ok;
    }

    struct ev_loop* loop;

private:
    static void onExpired(struct ev_loop*, ev_timer* w, int) {
        *static_cast<bool*>(w->data) = true;
    }
    static void onIdleGuard(struct ev_loop* loop, ev_timer* w, int) {
        ev_ref(loop);  // libev stopped the expired timer, which unrefs once more
        *static_cast<bool*>(w->data) = true;
        ev_break(loop, EVBREAK_ALL);
    }
    static void onTick(struct ev_loop*, ev_timer*, int) {}
};

// "127.0.0.1:6379", "[::1]:80".
inline std::string addressText(const ResolvedAddress& a) {
    char text[INET6_ADDRSTRLEN] = {};
    if (a.addr.ss_family == AF_INET) {
        const auto& in = reinterpret_cast<const sockaddr_in&>(a.addr);
        inet_ntop(AF_INET, &in.sin_addr, text, sizeof text);
        return std::string(text) + ":" + std::to_string(ntohs(in.sin_port));
    }
    if (a.addr.ss_family == AF_INET6) {
        const auto& in6 = reinterpret_cast<const sockaddr_in6&>(a.addr);
        inet_ntop(AF_INET6, &in6.sin6_addr, text, sizeof text);
        return "[" + std::string(text) + "]:" + std::to_string(ntohs(in6.sin6_port));
    }
    return "family " + std::to_string(a.addr.ss_family);
}

// One lookup's answer, as a test sees it.
struct Outcome {
    int calls = 0;
    int error = -1;
    std::vector<std::string> addresses;

    AsyncResolver::Done recorder() {
        return [this](int e, std::vector<ResolvedAddress> list) {
            ++calls;
            error = e;
            addresses.clear();
            for (const ResolvedAddress& a : list) addresses.push_back(addressText(a));
        };
    }
};

}  // namespace wsrelay::testing
