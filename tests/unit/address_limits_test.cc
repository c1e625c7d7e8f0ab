// The per-address limits' parts, without sockets: CIDR lists, the client address a trusted proxy
// reports (X-Forwarded-For, Forwarded), the cross-worker connection counts, the token buckets with
// an explicit clock, and the decisions AddressLimits and ApiKeyThrottle make from them.

#include "relay/admission/address_limits.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "adapters/client_address.h"
#include "relay/admission/forwarded_for.h"
#include "relay/http/request_head.h"

namespace wsrelay {
namespace {

AddressKey addr(std::string_view text) {
    AddressKey key{};
    EXPECT_TRUE(parseAddress(text, key)) << text;
    return key;
}

// ---- addresses and CIDR lists ----

TEST(ClientAddressTest, IPv4IsMappedAndIPv6KeptAsIs) {
    EXPECT_TRUE(isMappedV4(addr("192.0.2.7")));
    EXPECT_EQ(addressText(addr("192.0.2.7")), "192.0.2.7");
    EXPECT_FALSE(isMappedV4(addr("2001:db8::1")));
    EXPECT_EQ(addressText(addr("2001:db8::1")), "2001:db8::1");
    AddressKey key{};
    for (std::string_view bad : {"", "192.0.2", "192.0.2.256", "1.2.3.4.5", "[::1]", "::1%lo",
                                 "192.0.2.7:80", "host.example", " 192.0.2.7"}) {
        EXPECT_FALSE(parseAddress(bad, key)) << bad;
    }
}

TEST(ClientAddressTest, IPv6IsLimitedByItsSlash64AndIPv4ByItself) {
    EXPECT_EQ(limitKey(addr("2001:db8:1:2:aaaa::1")), limitKey(addr("2001:db8:1:2:bbbb::2")));
    EXPECT_NE(limitKey(addr("2001:db8:1:2::1")), limitKey(addr("2001:db8:1:3::1")));
    EXPECT_EQ(limitKey(addr("192.0.2.7")), addr("192.0.2.7"));
    EXPECT_NE(limitKey(addr("192.0.2.7")), limitKey(addr("192.0.2.8")));
}

TEST(ClientAddressTest, CidrsMatchTheirNetworkOnly) {
    const CidrList list({"10.0.0.0/8", "192.168.1.128/25", "2001:db8::/32", "127.0.0.1"});
    EXPECT_TRUE(list.contains(addr("10.255.1.2")));
    EXPECT_FALSE(list.contains(addr("11.0.0.1")));
    EXPECT_TRUE(list.contains(addr("192.168.1.200")));
    EXPECT_FALSE(list.contains(addr("192.168.1.127")));
    EXPECT_TRUE(list.contains(addr("2001:db8:ffff::1")));
    EXPECT_FALSE(list.contains(addr("2001:db9::1")));
    EXPECT_TRUE(list.contains(addr("127.0.0.1")));
    EXPECT_FALSE(list.contains(addr("127.0.0.2")));
    // An IPv4 network never matches an IPv6 address that is not mapped.
    EXPECT_FALSE(CidrList({"0.0.0.0/0"}).contains(addr("2001:db8::1")));
    EXPECT_TRUE(CidrList({"0.0.0.0/0"}).contains(addr("203.0.113.9")));
    EXPECT_TRUE(CidrList({"::/0"}).contains(addr("203.0.113.9")));
    EXPECT_TRUE(CidrList(std::vector<std::string>{}).empty());
}

TEST(ClientAddressTest, MalformedCidrsAreRefusedWithAReason) {
    for (std::string_view bad :
         {"10.0.0.0/33", "10.0.0.1/8", "10.0.0.0/", "10.0.0.0/x", "10.0.0.0/8/8", "2001:db8::/129",
          "2001:db8::1/32", "any", "", "10.0.0.0/-1", "10.0.0.0/ 8"}) {
        EXPECT_NE(checkCidr(bad), "") << bad;
    }
    for (std::string_view good : {"10.0.0.0/8", "0.0.0.0/0", "::/0", "::1", "192.0.2.7/32"}) {
        EXPECT_EQ(checkCidr(good), "") << good;
    }
}

// ---- the client a trusted proxy reports ----

struct Head {
    explicit Head(std::string text) : text_(std::move(text)) {
        EXPECT_TRUE(parseRequestHead(text_, request));
    }
    std::string text_;
    RequestHead request;
};

Head headWith(std::string_view headers) {
    return Head("GET /ws HTTP/1.1\r\nHost: relay\r\n" + std::string(headers) + "\r\n");
}

std::optional<std::string> client(std::string_view headers,
                                  ClientAddressHeader which = ClientAddressHeader::XForwardedFor,
                                  const CidrList& trusted = CidrList({"10.0.0.0/8"})) {
    const Head h = headWith(headers);
    const auto found = forwardedClient(h.request, which, trusted);
    if (!found) return std::nullopt;
    return addressText(*found);
}

TEST(ForwardedForTest, TheRightmostUntrustedHopIsTheClient) {
    // The client forged the first entry; the trusted proxies appended the rest.
    EXPECT_EQ(client("X-Forwarded-For: 1.1.1.1, 203.0.113.5, 10.0.0.2\r\n"), "203.0.113.5");
    EXPECT_EQ(client("X-Forwarded-For: 203.0.113.5\r\n"), "203.0.113.5");
    // Several header lines are one list, in order.
    EXPECT_EQ(client("X-Forwarded-For: 1.1.1.1\r\nX-Forwarded-For: 203.0.113.5, 10.1.1.1\r\n"),
              "203.0.113.5");
    // Every hop trusted: the leftmost.
    EXPECT_EQ(client("X-Forwarded-For: 10.0.0.9, 10.0.0.2\r\n"), "10.0.0.9");
    // Ports and brackets as some proxies write them.
    EXPECT_EQ(client("X-Forwarded-For: 203.0.113.5:4711\r\n"), "203.0.113.5");
    EXPECT_EQ(client("X-Forwarded-For: [2001:db8::5]:4711\r\n"), "2001:db8::5");
    EXPECT_EQ(client("X-Forwarded-For: 2001:db8::5\r\n"), "2001:db8::5");
}

TEST(ForwardedForTest, AbsentOrBrokenChainsGiveNoClient) {
    EXPECT_EQ(client(""), std::nullopt);
    EXPECT_EQ(client("X-Forwarded-For:\r\n"), std::nullopt);
    EXPECT_EQ(client("X-Forwarded-For: garbage\r\n"), std::nullopt);
    EXPECT_EQ(client("X-Forwarded-For: 203.0.113.5, , 10.0.0.2\r\n"), std::nullopt);
    EXPECT_EQ(client("X-Forwarded-For: 203.0.113.5, nonsense, 10.0.0.2\r\n"), std::nullopt);
    EXPECT_EQ(client("X-Forwarded-For: 203.0.113.5,\r\n"), std::nullopt);
    EXPECT_EQ(client("X-Forwarded-For: [203.0.113.5]\r\n"), std::nullopt);
    EXPECT_EQ(client("X-Forwarded-For: [2001:db8::5\r\n"), std::nullopt);
    EXPECT_EQ(client("X-Forwarded-For: 2001:db8::5]:80\r\n"), std::nullopt);
    // A malformed hop left of the client does not matter: the walk stops at the client.
    EXPECT_EQ(client("X-Forwarded-For: <script>, 203.0.113.5, 10.0.0.2\r\n"), "203.0.113.5");
    // The other header is not read.
    EXPECT_EQ(client("Forwarded: for=203.0.113.5\r\n"), std::nullopt);
}

TEST(ForwardedForTest, ForwardedForValuesAreReadFromTheirElements) {
    const auto fwd = ClientAddressHeader::Forwarded;
    EXPECT_EQ(client("Forwarded: for=203.0.113.5;proto=https;by=10.0.0.2\r\n", fwd), "203.0.113.5");
    EXPECT_EQ(client("Forwarded: for=1.1.1.1, for=203.0.113.5, For=10.0.0.2\r\n", fwd),
              "203.0.113.5");
    EXPECT_EQ(client("Forwarded: for=\"[2001:db8:cafe::17]:4711\"\r\n", fwd), "2001:db8:cafe::17");
    EXPECT_EQ(client("Forwarded: for=\"203.0.113.5:80\";proto=http\r\n", fwd), "203.0.113.5");
    // A comma inside quotes does not split an element.
    EXPECT_EQ(client("Forwarded: for=203.0.113.5;x=\"a,b\", for=10.0.0.2\r\n", fwd), "203.0.113.5");
    EXPECT_EQ(client("Forwarded: for=unknown\r\n", fwd), std::nullopt);
    EXPECT_EQ(client("Forwarded: for=_hidden, for=10.0.0.2\r\n", fwd), std::nullopt);
    EXPECT_EQ(client("Forwarded: proto=https\r\n", fwd), std::nullopt);
    EXPECT_EQ(client("Forwarded: for=203.0.113.5;for=198.51.100.1\r\n", fwd), std::nullopt);
    EXPECT_EQ(client("Forwarded: for=\"203.0.113.5\r\n", fwd), std::nullopt);
    EXPECT_EQ(client("Forwarded: for=\"20\\3.0.113.5\"\r\n", fwd), std::nullopt);
    EXPECT_EQ(client("X-Forwarded-For: 203.0.113.5\r\n", fwd), std::nullopt);
}

// ---- connection counts across workers ----

TEST(AddressCountsTest, ACapRefusesOneMoreAndADryRunCountsIt) {
    AddressCounts counts;
    const AddressKey a = addr("203.0.113.5");
    auto first = counts.acquire(a, 2, true);
    EXPECT_TRUE(first.counted);
    EXPECT_TRUE(first.new_entry);
    EXPECT_TRUE(counts.acquire(a, 2, true).counted);
    const auto refused = counts.acquire(a, 2, true);
    EXPECT_FALSE(refused.counted);
    EXPECT_TRUE(refused.over);
    EXPECT_EQ(counts.count(a), 2u);
    const auto dry = counts.acquire(a, 2, false);
    EXPECT_TRUE(dry.counted);
    EXPECT_TRUE(dry.over);
    EXPECT_EQ(counts.count(a), 3u);
    EXPECT_FALSE(counts.release(a));
    EXPECT_FALSE(counts.release(a));
    EXPECT_TRUE(counts.release(a));  // the last one: the entry goes
    EXPECT_EQ(counts.entries(), 0u);
    EXPECT_FALSE(counts.release(a));
}

TEST(AddressCountsTest, ThreadsAcquiringAndReleasingLeaveNothingBehind) {
    AddressCounts counts;
    constexpr int kThreads = 4;
    constexpr int kRounds = 20000;
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&counts, t] {
            for (int i = 0; i < kRounds; ++i) {
                AddressKey key = addr("198.51.100.0");
                key[15] = static_cast<uint8_t>((i + t) % 7);
                if (counts.acquire(key, 1000000, true).counted) counts.release(key);
            }
        });
    }
    for (auto& t : threads) t.join();
    EXPECT_EQ(counts.entries(), 0u);
}

TEST(AddressCountsTest, TheCapHoldsExactlyAcrossThreads) {
    AddressCounts counts;
    const AddressKey a = addr("203.0.113.5");
    std::atomic<int> admitted{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&] {
            for (int i = 0; i < 1000; ++i) {
                if (counts.acquire(a, 100, true).counted) admitted.fetch_add(1);
            }
        });
    }
    for (auto& t : threads) t.join();
    EXPECT_EQ(admitted.load(), 100);
    EXPECT_EQ(counts.count(a), 100u);
}

TEST(AddressSlotTest, ASlotReleasesItsCountOnceWhereverItMoved) {
    AddressCounts counts;
    metrics::Slot entries;
    const AddressKey a = addr("203.0.113.5");
    ASSERT_TRUE(counts.acquire(a, 10, true).counted);
    entries.add();
    {
        AddressSlot slot(counts, a, entries);
        AddressSlot moved = std::move(slot);
        EXPECT_FALSE(slot.held());  // NOLINT(bugprone-use-after-move): the point of the test
        EXPECT_TRUE(moved.held());
        AddressSlot again;
        again = std::move(moved);
        EXPECT_EQ(counts.count(a), 1u);
    }
    EXPECT_EQ(counts.count(a), 0u);
    EXPECT_EQ(entries.value(), 0);
}

// ---- token buckets ----

TEST(AddressBucketsTest, ABurstThenTheRateAndTheWaitUntilTheNextToken) {
    AddressBuckets buckets(2.0, 3.0);
    const AddressKey a = addr("203.0.113.5");
    double wait = 0;
    for (int i = 0; i < 3; ++i) EXPECT_TRUE(buckets.tryTake(a, 100.0, wait)) << i;
    EXPECT_FALSE(buckets.tryTake(a, 100.0, wait));
    EXPECT_DOUBLE_EQ(wait, 0.5);
    EXPECT_FALSE(buckets.tryTake(a, 100.25, wait));
    EXPECT_DOUBLE_EQ(wait, 0.25);
    EXPECT_TRUE(buckets.tryTake(a, 100.5, wait));
    // Another address has its own bucket.
    EXPECT_TRUE(buckets.tryTake(addr("203.0.113.6"), 100.5, wait));
    // Refilled up to the burst, no further.
    for (int i = 0; i < 3; ++i) EXPECT_TRUE(buckets.tryTake(a, 1000.0, wait)) << i;
    EXPECT_FALSE(buckets.tryTake(a, 1000.0, wait));
}

TEST(AddressBucketsTest, WaitTakesNothingAndTakeNeverGoesBelowEmpty) {
    AddressBuckets buckets(1.0, 2.0);
    const AddressKey a = addr("203.0.113.5");
    EXPECT_EQ(buckets.wait(a, 10.0), 0);
    EXPECT_EQ(buckets.size(), 0u);  // asking does not make an entry
    for (int i = 0; i < 5; ++i) buckets.take(a, 10.0);
    EXPECT_DOUBLE_EQ(buckets.wait(a, 10.0), 1.0);
    EXPECT_DOUBLE_EQ(buckets.wait(a, 10.5), 0.5);
    EXPECT_EQ(buckets.wait(a, 11.0), 0);
}

TEST(AddressBucketsTest, TheMapStaysBoundedAndForgetsFullBucketsFirst) {
    AddressBuckets buckets(1.0, 1.0, 4);
    double wait = 0;
    AddressKey key = addr("198.51.100.0");
    for (int i = 0; i < 100; ++i) {
        key[15] = static_cast<uint8_t>(i);
        EXPECT_TRUE(buckets.tryTake(key, 0.0, wait));
        EXPECT_LE(buckets.size(), 4u);
    }
    // Later, every bucket is full again: a sweep drops them all to make room.
    key[15] = 200;
    EXPECT_TRUE(buckets.tryTake(key, 10.0, wait));
    EXPECT_EQ(buckets.size(), 1u);
}

// ---- AddressLimits and ApiKeyThrottle decisions ----

Config limitsConfig() {
    Config c;
    c.limits.per_ip_exempt = {"192.0.2.0/24"};
    c.limits.handshakes_per_ip_per_second = 10;
    c.limits.handshakes_per_ip_burst = 2;
    c.limits.connections_per_ip = 0;
    return c;
}

TEST(AddressLimitsTest, OverTheRateIsRefusedWithARetryAfterAndExemptAddressesNever) {
    const Config c = limitsConfig();
    AddressCounts counts;
    metrics::WorkerMetrics m;
    AddressLimits limits(c, 1, counts, m);
    const AddressKey a = addr("203.0.113.5");
    EXPECT_TRUE(limits.admit(a, 0).admitted);
    EXPECT_TRUE(limits.admit(a, 0).admitted);
    const auto refused = limits.admit(a, 0);
    EXPECT_FALSE(refused.admitted);
    EXPECT_EQ(refused.retry_after_s, 1u);
    EXPECT_EQ(
        m.ip_limited[metrics::IpLimit::HandshakeRate][metrics::IpLimitResult::Refused].value(), 1);
    for (int i = 0; i < 10; ++i) EXPECT_TRUE(limits.admit(addr("192.0.2.9"), 0).admitted);
    EXPECT_TRUE(limits.admit(a, 0.1).admitted);  // a token a tenth of a second later
}

TEST(AddressLimitsTest, TheRateIsSplitAcrossWorkers) {
    Config c = limitsConfig();
    c.limits.handshakes_per_ip_burst = 4;
    AddressCounts counts;
    metrics::WorkerMetrics m;
    AddressLimits limits(c, 2, counts, m);  // 5 a second and a burst of 2 on this worker
    const AddressKey a = addr("203.0.113.5");
    EXPECT_TRUE(limits.admit(a, 0).admitted);
    EXPECT_TRUE(limits.admit(a, 0).admitted);
    EXPECT_FALSE(limits.admit(a, 0).admitted);
    EXPECT_FALSE(limits.admit(a, 0.1).admitted);
    EXPECT_TRUE(limits.admit(a, 0.2).admitted);
}

TEST(AddressLimitsTest, TheCapHoldsUntilASlotIsReleasedAndTheTableEmpties) {
    Config c = limitsConfig();
    c.limits.handshakes_per_ip_per_second = 0;
    c.limits.connections_per_ip = 2;
    AddressCounts counts;
    metrics::WorkerMetrics m;
    AddressLimits limits(c, 1, counts, m);
    const AddressKey a = addr("203.0.113.5");
    auto first = limits.admit(a, 0);
    auto second = limits.admit(a, 0);
    ASSERT_TRUE(first.admitted && second.admitted);
    EXPECT_EQ(m.ip_table_entries.value(), 1);
    const auto third = limits.admit(a, 0);
    EXPECT_FALSE(third.admitted);
    EXPECT_EQ(third.retry_after_s, 10u);
    EXPECT_EQ(m.ip_limited[metrics::IpLimit::Connections][metrics::IpLimitResult::Refused].value(),
              1);
    first.slot.reset();
    auto fourth = limits.admit(a, 0);
    EXPECT_TRUE(fourth.admitted);
    second.slot.reset();
    fourth.slot.reset();
    EXPECT_EQ(counts.entries(), 0u);
    EXPECT_EQ(m.ip_table_entries.value(), 0);
}

TEST(AddressLimitsTest, ADryRunAdmitsAndCountsWhatItWouldHaveRefused) {
    Config c = limitsConfig();
    c.limits.per_ip_dry_run = true;
    c.limits.connections_per_ip = 1;
    AddressCounts counts;
    metrics::WorkerMetrics m;
    AddressLimits limits(c, 1, counts, m);
    const AddressKey a = addr("203.0.113.5");
    std::vector<AddressLimits::Decision> held;
    for (int i = 0; i < 4; ++i) {
        held.push_back(limits.admit(a, 0));
        EXPECT_TRUE(held.back().admitted) << i;
    }
    using metrics::IpLimit;
    using metrics::IpLimitResult;
    EXPECT_EQ(m.ip_limited[IpLimit::HandshakeRate][IpLimitResult::DryRun].value(), 2);
    EXPECT_EQ(m.ip_limited[IpLimit::Connections][IpLimitResult::DryRun].value(), 3);
    EXPECT_EQ(m.ip_limited[IpLimit::HandshakeRate][IpLimitResult::Refused].value(), 0);
    EXPECT_EQ(counts.count(a), 4u);
    held.clear();
    EXPECT_EQ(counts.entries(), 0u);
}

TEST(AddressLimitsTest, TheClientOfATrustedProxyComesFromItsHeader) {
    Config c = limitsConfig();
    c.limits.trusted_proxies = {"10.0.0.0/8"};
    AddressCounts counts;
    metrics::WorkerMetrics m;
    AddressLimits limits(c, 1, counts, m);
    EXPECT_TRUE(limits.readsHeads());
    EXPECT_TRUE(limits.fromTrustedProxy(addr("10.1.2.3")));
    EXPECT_FALSE(limits.fromTrustedProxy(addr("203.0.113.5")));
    const Head h = headWith("X-Forwarded-For: 2001:db8:1:2::77, 10.0.0.2\r\n");
    EXPECT_EQ(limits.clientOf(h.request, addr("10.1.2.3")), limitKey(addr("2001:db8:1:2::")));
    const Head none = headWith("");
    EXPECT_EQ(limits.clientOf(none.request, addr("10.1.2.3")), addr("10.1.2.3"));
}

TEST(ApiKeyThrottleTest, PastTheFailuresTheKeyIsNotCheckedUntilTheyAge) {
    Config c = limitsConfig();
    c.limits.api_key_failures_per_ip_per_minute = 3;
    metrics::WorkerMetrics m;
    ApiKeyThrottle throttle(c, 1, m);
    const AddressKey a = addr("203.0.113.5");
    for (int i = 0; i < 3; ++i) {
        EXPECT_EQ(throttle.refusal(a, 0), 0u) << i;
        throttle.failed(a, 0);
    }
    EXPECT_EQ(throttle.refusal(a, 0), 20u);  // 3 a minute: one every 20 s
    EXPECT_EQ(throttle.refusal(addr("203.0.113.6"), 0), 0u);
    EXPECT_EQ(throttle.refusal(a, 20.5), 0u);
    EXPECT_EQ(m.ip_limited[metrics::IpLimit::ApiKey][metrics::IpLimitResult::Refused].value(), 1);
    for (int i = 0; i < 10; ++i) throttle.failed(addr("192.0.2.1"), 0);  // exempt
    EXPECT_EQ(throttle.refusal(addr("192.0.2.1"), 0), 0u);
}

TEST(ApiKeyThrottleTest, OffOrDryRunNeverRefuses) {
    Config c = limitsConfig();
    c.limits.api_key_failures_per_ip_per_minute = 0;
    metrics::WorkerMetrics m;
    ApiKeyThrottle off(c, 1, m);
    const AddressKey a = addr("203.0.113.5");
    for (int i = 0; i < 100; ++i) off.failed(a, 0);
    EXPECT_EQ(off.refusal(a, 0), 0u);
    c.limits.api_key_failures_per_ip_per_minute = 1;
    c.limits.per_ip_dry_run = true;
    ApiKeyThrottle dry(c, 1, m);
    dry.failed(a, 0);
    EXPECT_EQ(dry.refusal(a, 0), 0u);
    EXPECT_EQ(m.ip_limited[metrics::IpLimit::ApiKey][metrics::IpLimitResult::DryRun].value(), 1);
}

}  // namespace
}  // namespace wsrelay
