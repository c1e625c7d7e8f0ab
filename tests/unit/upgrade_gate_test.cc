// UpgradeGate's decisions on a request head, read from one end of a socketpair (local descriptors,
// no network) with a connect hook configured, so the gate reads heads itself: refusals are read
// back from the other end; an admitted upgrade is seen as the connect hook being asked. Handing a
// socket to lws is not exercised here (no lws context): the integration tests cover it. Pending
// bounds and timeouts are PendingConnections' (pending_connections_test.cc).

#include "relay/admission/upgrade_gate.h"

#include <arpa/inet.h>
#include <ev.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include "relay/hook/hook_bridge.h"
#include "tests/unit/worker_parts.h"

namespace wsrelay {
namespace {

using testing::FakeHook;
using ::testing::HasSubstr;
using ::testing::StartsWith;
using testing::WorkerParts;

Config gateConfig() {
    Config c = WorkerParts::defaultConfig();
    c.hook.url = "http://127.0.0.1:1/hook";
    c.hook.events = {"connect", "disconnect"};
    c.hook.forward_headers = {"origin"};
    return c;
}

std::string upgradeHead(std::string_view target, std::string_view extra = "") {
    std::string head = "GET ";
    head += target;
    head += " HTTP/1.1\r\nHost: relay\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";
    head += extra;
    head += "\r\n";
    return head;
}

struct GateParts {
    explicit GateParts(Config cfg = gateConfig()) : w(std::move(cfg)), bridge(w.ctx, hook) {
        w.ctx.hook = &bridge;
        gate = std::make_unique<UpgradeGate>(w.ctx);
    }
    ~GateParts() {
        gate.reset();
        if (client >= 0) close(client);
    }

    // A client connects and sends `head`; the gate reads it on the loop.
    void connectAndSend(const std::string& head, http::Port port = http::Port::Public) {
        int fds[2];
        ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds), 0);
        client = fds[0];
        ASSERT_EQ(send(client, head.data(), head.size(), MSG_NOSIGNAL),
                  static_cast<ssize_t>(head.size()));
        sockaddr_storage peer{};
        auto* in = reinterpret_cast<sockaddr_in*>(&peer);
        in->sin_family = AF_INET;
        in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        gate->accept(fds[1], peer, port);
        for (int i = 0; i < 4; ++i) ev_run(w.loop, EVRUN_NOWAIT);
    }
    // What the gate wrote back, up to its close; empty while the socket is still open.
    std::string answer() {
        std::string out;
        char buf[4096];
        for (;;) {
            const ssize_t n = recv(client, buf, sizeof buf, MSG_DONTWAIT);
            if (n > 0) {
                out.append(buf, static_cast<size_t>(n));
                continue;
            }
            if (n == 0) return out;  // closed by the gate
            return "(open)";
        }
    }

    WorkerParts w;
    FakeHook hook;
    HookBridge bridge;
    std::unique_ptr<UpgradeGate> gate;
    int client = -1;
};

TEST(UpgradeGateTest, AnUpgradeAtAnotherPathIsRefusedWith404) {
    GateParts g;
    g.connectAndSend(upgradeHead("/other"));
    const std::string answer = g.answer();
    EXPECT_THAT(answer, StartsWith("HTTP/1.1 404"));
    EXPECT_THAT(answer, HasSubstr("no WebSocket endpoint at this path"));
    EXPECT_TRUE(g.hook.requests.empty());
    EXPECT_EQ(g.w.metrics.handshakes[metrics::HandshakeResult::Path].value(), 1);
    EXPECT_EQ(g.w.metrics.pending_connections.value(), 0);
}

TEST(UpgradeGateTest, AnUpgradeOnTheInternalPortIsRefusedWith404BeforeTheHookIsAsked) {
    Config cfg = gateConfig();
    cfg.listen.internal_port = 9090;
    GateParts g(cfg);
    g.connectAndSend(upgradeHead("/ws"), http::Port::Internal);
    const std::string answer = g.answer();
    EXPECT_THAT(answer, StartsWith("HTTP/1.1 404"));
    EXPECT_THAT(answer, HasSubstr("no WebSocket endpoint on the internal port"));
    EXPECT_TRUE(g.hook.requests.empty());
    EXPECT_EQ(g.w.metrics.handshakes[metrics::HandshakeResult::Path].value(), 1);
    EXPECT_EQ(g.w.metrics.pending_connections.value(), 0);

    // The same request on the public port is the clients' upgrade.
    GateParts p(cfg);
    p.connectAndSend(upgradeHead("/ws"));
    EXPECT_EQ(p.answer(), "(open)");
    EXPECT_EQ(p.hook.requests.size(), 1u);
}

TEST(UpgradeGateTest, AMalformedOrNonGetUpgradeIsRefusedWith400) {
    struct Case {
        std::string head;
        std::string reason;
    };
    const Case cases[] = {
        {upgradeHead("/w%zz"), "malformed request path"},  // a bad escape
        {"POST /ws HTTP/1.1\r\nHost: r\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Key: a2V5\r\nSec-WebSocket-Version: 13\r\n\r\n",
         "a WebSocket upgrade is a GET"},
        {upgradeHead("/ws", "Sec-WebSocket-Protocol: other\r\n"),
         "offer the wsrelay.v1 subprotocol (or none)"},
        {"GET /ws HTTP/1.1\r\nHost: r\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Key: a2V5\r\nSec-WebSocket-Version: 8\r\n\r\n",
         "Sec-WebSocket-Version must be 13"},
    };
    for (const Case& c : cases) {
        GateParts g;
        g.connectAndSend(c.head);
        const std::string answer = g.answer();
        EXPECT_THAT(answer, StartsWith("HTTP/1.1 400")) << c.reason;
        EXPECT_THAT(answer, HasSubstr(c.reason));
        EXPECT_TRUE(g.hook.requests.empty());
        EXPECT_EQ(g.w.metrics.handshakes[metrics::HandshakeResult::BadRequest].value(), 1);
    }
}

TEST(UpgradeGateTest, ANormalisedPathIsAdmittedAndTheConnectHookAsked) {
    GateParts g;
    g.connectAndSend(upgradeHead("/x/../ws?a=1", "Origin: https://app\r\n"));
    EXPECT_EQ(g.answer(), "(open)");  // parked while the app decides
    ASSERT_EQ(g.hook.requests.size(), 1u);
    EXPECT_EQ(g.hook.requests[0].event, HookEvent::Connect);
    EXPECT_THAT(g.hook.requests[0].body, HasSubstr(R"("headers":{"origin":"https://app"})"));
    EXPECT_EQ(g.w.metrics.pending_connections.value(), 1);
}

TEST(UpgradeGateTest, AConnectTheAppDeniesIsRefusedWith403AndItsMessage) {
    GateParts g;
    g.connectAndSend(upgradeHead("/ws"));
    ASSERT_EQ(g.hook.requests.size(), 1u);
    HookResult r;
    r.outcome = HookOutcome::Ok;
    r.body = R"({"deny":{"message":"not today"}})";
    g.hook.requests[0].done(std::move(r));
    const std::string answer = g.answer();
    EXPECT_THAT(answer, StartsWith("HTTP/1.1 403"));
    EXPECT_THAT(answer, HasSubstr("not today"));
    EXPECT_EQ(g.w.metrics.handshakes[metrics::HandshakeResult::Hook].value(), 1);
    EXPECT_EQ(g.w.metrics.pending_connections.value(), 0);
}

TEST(UpgradeGateTest, AConnectTheHookCannotAnswerIsRefusedWith503) {
    GateParts g;
    g.hook.accepting = false;
    g.connectAndSend(upgradeHead("/ws"));
    const std::string answer = g.answer();
    EXPECT_THAT(answer, StartsWith("HTTP/1.1 503"));
    EXPECT_THAT(answer, HasSubstr("hook busy"));
}

TEST(UpgradeGateTest, AConnectAllowedAfterShutDownIsRefusedAndItsDisconnectAnnounced) {
    GateParts g;
    g.connectAndSend(upgradeHead("/ws"));
    ASSERT_EQ(g.hook.requests.size(), 1u);
    g.gate->shutDown();
    HookResult r;
    r.outcome = HookOutcome::Ok;
    r.body = R"({"user":"ann"})";
    HookDone done = std::move(g.hook.requests[0].done);
    done(std::move(r));
    EXPECT_THAT(g.answer(), StartsWith("HTTP/1.1 503"));
    // The app allowed it, so it hears of its end.
    ASSERT_EQ(g.hook.requests.size(), 2u);
    EXPECT_EQ(g.hook.requests[1].event, HookEvent::Disconnect);
    EXPECT_THAT(g.hook.requests[1].body, HasSubstr(R"("user":"ann")"));
    EXPECT_THAT(g.hook.requests[1].body, HasSubstr(R"("code":1001,"reason":"","channels":[]})"));
}

// ---- per-address limits: refused with 429 before anything is read or anyone asked ----

// Connections from chosen peer addresses, each kept open until the test ends.
struct PeerClients {
    explicit PeerClients(GateParts& parts) : g(parts) {}
    ~PeerClients() {
        for (int fd : clients) close(fd);
    }
    // A client at `peer` connects and sends `head`; returns its index.
    size_t connect(const char* peer, const std::string& head) {
        int fds[2];
        EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds), 0);
        clients.push_back(fds[0]);
        EXPECT_EQ(send(fds[0], head.data(), head.size(), MSG_NOSIGNAL),
                  static_cast<ssize_t>(head.size()));
        sockaddr_storage address{};
        auto* in = reinterpret_cast<sockaddr_in*>(&address);
        in->sin_family = AF_INET;
        EXPECT_EQ(inet_pton(AF_INET, peer, &in->sin_addr), 1);
        g.gate->accept(fds[1], address);
        for (int i = 0; i < 4; ++i) ev_run(g.w.loop, EVRUN_NOWAIT);
        return clients.size() - 1;
    }
    std::string answer(size_t i) {
        std::string out;
        char buf[4096];
        for (;;) {
            const ssize_t n = recv(clients[i], buf, sizeof buf, MSG_DONTWAIT);
            if (n > 0) {
                out.append(buf, static_cast<size_t>(n));
                continue;
            }
            return n == 0 ? out : "(open)";
        }
    }
    GateParts& g;
    std::vector<int> clients;
};

Config limitedConfig() {
    Config c = gateConfig();
    c.limits.per_ip_exempt = {};
    c.limits.handshakes_per_ip_per_second = 1;
    c.limits.handshakes_per_ip_burst = 1;
    c.limits.connections_per_ip = 0;
    return c;
}

TEST(UpgradeGateLimitsTest, OverTheRateIsRefused429BeforeTheHookIsAsked) {
    GateParts g(limitedConfig());
    PeerClients p(g);
    const size_t first = p.connect("203.0.113.5", upgradeHead("/ws"));
    EXPECT_EQ(p.answer(first), "(open)");
    ASSERT_EQ(g.hook.requests.size(), 1u);
    const size_t second = p.connect("203.0.113.5", upgradeHead("/ws"));
    const std::string answer = p.answer(second);
    EXPECT_THAT(answer, StartsWith("HTTP/1.1 429 Too Many Requests\r\n"));
    EXPECT_THAT(answer, HasSubstr("\r\nretry-after: 1\r\n"));
    EXPECT_THAT(answer, HasSubstr("too many new connections from this address"));
    EXPECT_EQ(g.hook.requests.size(), 1u);  // nobody was asked about it
    EXPECT_EQ(g.w.metrics.pending_connections.value(), 1);
    // Another address is not affected.
    p.connect("203.0.113.6", upgradeHead("/ws"));
    EXPECT_EQ(g.hook.requests.size(), 2u);
}

TEST(UpgradeGateLimitsTest, TheConnectionCapCountsPendingOnesAndReleasesThemAtClose) {
    Config c = limitedConfig();
    c.limits.handshakes_per_ip_per_second = 0;
    c.limits.connections_per_ip = 1;
    GateParts g(c);
    PeerClients p(g);
    p.connect("203.0.113.5", upgradeHead("/ws"));
    ASSERT_EQ(g.hook.requests.size(), 1u);
    EXPECT_EQ(g.w.shared.connections_per_address.entries(), 1u);
    const size_t second = p.connect("203.0.113.5", upgradeHead("/ws"));
    const std::string refused = p.answer(second);
    EXPECT_THAT(refused, StartsWith("HTTP/1.1 429"));
    EXPECT_THAT(refused, HasSubstr("retry-after: 10"));
    // The app denies the first: its count goes with it, and the address may connect again.
    HookResult r;
    r.outcome = HookOutcome::Ok;
    r.body = R"({"deny":{"message":"no"}})";
    HookDone done = std::move(g.hook.requests[0].done);
    done(std::move(r));
    EXPECT_EQ(g.w.shared.connections_per_address.entries(), 0u);
    EXPECT_EQ(g.w.metrics.ip_table_entries.value(), 0);
    p.connect("203.0.113.5", upgradeHead("/ws"));
    EXPECT_EQ(g.hook.requests.size(), 2u);
    g.gate.reset();  // closes what it still holds
    EXPECT_EQ(g.w.shared.connections_per_address.entries(), 0u);
}

TEST(UpgradeGateLimitsTest, ATrustedProxysClientIsLimitedByTheAddressItReports) {
    Config c = limitedConfig();
    c.limits.trusted_proxies = {"10.0.0.1"};
    GateParts g(c);
    PeerClients p(g);
    const std::string from5 = upgradeHead("/ws", "X-Forwarded-For: 9.9.9.9, 203.0.113.5\r\n");
    const std::string from6 = upgradeHead("/ws", "X-Forwarded-For: 203.0.113.6\r\n");
    p.connect("10.0.0.1", from5);
    EXPECT_EQ(g.hook.requests.size(), 1u);
    const size_t again = p.connect("10.0.0.1", from5);
    EXPECT_THAT(p.answer(again), StartsWith("HTTP/1.1 429"));
    EXPECT_EQ(g.hook.requests.size(), 1u);
    p.connect("10.0.0.1", from6);  // another client behind the same proxy
    EXPECT_EQ(g.hook.requests.size(), 2u);
    // An untrusted peer's header is ignored: it is limited by its own address, at accept.
    p.connect("198.51.100.1", from6);
    EXPECT_EQ(g.hook.requests.size(), 3u);
    const size_t forged =
        p.connect("198.51.100.1", upgradeHead("/ws", "X-Forwarded-For: 1.2.3.4\r\n"));
    EXPECT_THAT(p.answer(forged), StartsWith("HTTP/1.1 429"));
    EXPECT_EQ(g.hook.requests.size(), 3u);
}

}  // namespace
}  // namespace wsrelay
