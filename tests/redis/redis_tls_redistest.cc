// TLS to Redis (rediss://) against real redis-server processes with a tls-port, using the test PKI
// of tests/tls/make_certs.sh: standalone pub/sub and the history functions, a server that requires
// client certificates, the wrong CA, a name mismatch, Sentinel and Cluster. Each server also keeps
// its plain-text port, for the test's own synchronous client; the brokers only use the TLS port.
#include "adapters/redis_tls.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "adapters/redis_broker.h"
#include "tests/redis/broker_endpoint.h"
#include "tests/redis/broker_rig.h"
#include "tests/redis/redis_cluster_processes.h"
#include "tests/redis/redis_server.h"

namespace wsrelay {
namespace {

using testing::BrokerRig;
using ::testing::ElementsAre;
using testing::Endpoint;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using testing::RedisClient;
using testing::RedisClusterProcesses;
using testing::RedisServer;
using testing::ReplyPtr;

constexpr auto kDeadline = std::chrono::seconds(15);

// The test PKI, written once for the whole binary and removed at exit.
class Pki {
public:
    static const Pki& get() {
        static Pki pki;
        return pki;
    }
    bool ok() const { return ok_; }
    std::string path(const std::string& name) const { return dir_ + "/" + name; }
    // redis-server arguments for a TLS port signed by the test CA.
    std::vector<std::string> serverArgs(int tls_port, const char* auth_clients) const {
        return {"--tls-port",         std::to_string(tls_port), "--tls-cert-file",
                path("server.crt"),   "--tls-key-file",         path("server.key"),
                "--tls-ca-cert-file", path("ca.crt"),           "--tls-auth-clients",
                auth_clients};
    }

private:
    Pki() {
        char dir[] = "/tmp/wsrelay-tls-XXXXXX";
        if (mkdtemp(dir) == nullptr) return;
        dir_ = dir;
        ok_ = testing::runTool({"/bin/bash", WSRELAY_SOURCE_DIR "/tests/tls/make_certs.sh", dir_},
                               std::chrono::seconds(30)) == 0;
    }
    ~Pki() {
        if (!dir_.empty()) {
            testing::runTool({"/bin/rm", "-rf", dir_}, std::chrono::seconds(10));
        }
    }
    std::string dir_;
    bool ok_ = false;
};

class RedisTlsTest : public ::testing::Test, protected BrokerRig {
protected:
    RedisTlsTest() : BrokerRig(kDeadline) {}

    void SetUp() override {
        if (!RedisServer::available()) GTEST_SKIP() << RedisServer::kBinary << " is missing";
        ASSERT_TRUE(Pki::get().ok()) << "tests/tls/make_certs.sh failed";
    }
    void TearDown() override { clear(); }

    // A server with a TLS port; `auth_clients` is its tls-auth-clients.
    void startServer(const char* auth_clients = "no") {
        tls_port_ = RedisServer::freePort();
        server_.setArgs(Pki::get().serverArgs(tls_port_, auth_clients));
        std::string error;
        ASSERT_TRUE(server_.start(error)) << error;
    }

    static RedisTlsOptions tlsOptions(const std::string& ca = "ca.crt") {
        RedisTlsOptions t;
        t.ca_file = Pki::get().path(ca);
        return t;
    }

    RedisBrokerOptions options(const RedisTlsOptions& tls, const std::string& host = "127.0.0.1") {
        RedisBrokerOptions o;
        o.url.host = host;
        o.url.port = tls_port_;
        o.url.tls = true;
        o.tls = std::make_shared<const RedisTls>(tls);
        o.reconnect_min_ms = 10;
        o.reconnect_max_ms = 100;
        o.probe_interval_ms = 50;
        o.probe_timeout_ms = 2000;
        return o;
    }

    Endpoint& endpoint(const RedisBrokerOptions& o) {
        factories_.push_back(std::make_unique<RedisBrokerFactory>(o));
        return add(*factories_.back());
    }

    // The broker tried (and failed) at least twice, and is not up.
    std::string failure(Endpoint& e) {
        EXPECT_TRUE(pumpUntil([&] { return !e.broker->lastError().empty(); }));
        pumpFor(std::chrono::milliseconds(200));
        EXPECT_FALSE(e.up());
        return e.broker->lastError();
    }

    RedisServer server_;
    int tls_port_ = 0;
    std::vector<std::unique_ptr<RedisBrokerFactory>> factories_;
};

TEST_F(RedisTlsTest, PubSubAndProbesOverTls) {
    startServer();
    Endpoint& a = endpoint(options(tlsOptions()));
    Endpoint& b = endpoint(options(tlsOptions()));
    a.subscribe("chat");
    ASSERT_TRUE(allUp()) << a.broker->lastError();
    // Large messages, many at once: TLS records split and joined across reads and writes.
    const std::string big(40000, 'x');
    constexpr int kCount = 300;
    for (int i = 0; i < kCount; ++i) {
        b.publish("chat", "\"" + std::to_string(i) + big + "\"", static_cast<uint64_t>(i));
    }
    b.publish("chat", "\"end\"", kCount);
    ASSERT_TRUE(syncedThrough(a, "chat", "\"end\""));
    ASSERT_EQ(a.dataOf("chat").size(), size_t{kCount + 1});
    for (int i = 0; i < kCount; ++i) {
        ASSERT_EQ(a.dataOf("chat")[static_cast<size_t>(i)], "\"" + std::to_string(i) + big + "\"");
    }
    // A backend publishing on the plain port reaches the TLS subscriber too.
    RedisClient backend = server_.client();
    EXPECT_EQ(backend.publish("chat", "\"from the backend\""), 1);
    ASSERT_TRUE(syncedThrough(a, "chat", "\"from the backend\""));
    // Probes keep coming back over TLS: no Down after the first Up.
    pumpFor(std::chrono::milliseconds(300));
    EXPECT_EQ(a.downs(), 0);
    EXPECT_EQ(b.downs(), 0);
}

TEST_F(RedisTlsTest, HistoryFunctionsOverTls) {
    startServer();
    RedisBrokerOptions o = options(tlsOptions());
    o.functions = true;  // FUNCTION LOAD before Up, then FCALLs
    Endpoint& a = endpoint(o);
    a.subscribe("orders");
    ASSERT_TRUE(allUp()) << a.broker->lastError();
    const HistoryPolicy policy{10, 60000};
    a.publish("orders", "1", 1, policy);
    a.publish("orders", "2", 2, policy);
    ASSERT_TRUE(syncedThrough(a, "orders", "2"));
    EXPECT_EQ(a.positionsOf("orders").back().offset, 2u);
    HistoryRequest read;
    read.token = 7;
    read.policy = policy;
    read.limit = 10;
    a.readHistory("orders", read);
    ASSERT_TRUE(pumpUntil([&] { return a.history(7) != nullptr; }));
    const HistoryAnswer& answer = *a.history(7);
    EXPECT_EQ(answer.status, HistoryStatus::Ok);
    EXPECT_THAT(answer.entries, ElementsAre(HistoryEntry{1, "1"}, HistoryEntry{2, "2"}));
}

TEST_F(RedisTlsTest, HostNameIsSentAndVerified) {
    startServer();
    // "localhost" is in the certificate as a DNS name (SNI and name check); 127.0.0.1 as an IP.
    Endpoint& a = endpoint(options(tlsOptions(), "localhost"));
    ASSERT_TRUE(allUp()) << a.broker->lastError();
}

TEST_F(RedisTlsTest, ClientCertificateRequiredByTheServer) {
    startServer("yes");
    const RedisTls without(tlsOptions());
    Endpoint& refused = endpoint(options(tlsOptions()));
    const std::string error = failure(refused);
    EXPECT_THAT(error, HasSubstr("broker.redis.tls.cert_file")) << error;
    EXPECT_THAT(without.check("127.0.0.1", tls_port_, 2.0),
                HasSubstr("broker.redis.tls.cert_file"));
    clear();

    RedisTlsOptions with = tlsOptions();
    with.cert_file = Pki::get().path("client.crt");
    with.key_file = Pki::get().path("client.key");
    EXPECT_THAT(RedisTls(with).check("127.0.0.1", tls_port_, 2.0), IsEmpty());
    Endpoint& a = endpoint(options(with));
    a.subscribe("chat");
    ASSERT_TRUE(allUp()) << a.broker->lastError();
    RedisClient backend = server_.client();
    EXPECT_EQ(backend.publish("chat", "\"hi\""), 1);
    ASSERT_TRUE(syncedThrough(a, "chat", "\"hi\""));
}

TEST_F(RedisTlsTest, WrongCaIsRefusedNamingTheKey) {
    startServer();
    const RedisTlsOptions other = tlsOptions("other-ca.crt");
    Endpoint& a = endpoint(options(other));
    const std::string error = failure(a);
    EXPECT_THAT(error, HasSubstr("certificate verify failed")) << error;
    EXPECT_THAT(error, HasSubstr("broker.redis.tls.ca_file")) << error;
    // What startup checks, before any worker runs.
    const std::string check = RedisTls(other).check("127.0.0.1", tls_port_, 2.0);
    EXPECT_THAT(check, HasSubstr("certificate verify failed: ")) << check;
    EXPECT_THAT(check, HasSubstr("broker.redis.tls.ca_file " + Pki::get().path("other-ca.crt")));
}

TEST_F(RedisTlsTest, NameMismatchIsRefused) {
    startServer();
    RedisTlsOptions wrong_name = tlsOptions();
    wrong_name.server_name = "redis.example.net";
    Endpoint& a = endpoint(options(wrong_name));
    const std::string error = failure(a);
    EXPECT_THAT(error, HasSubstr("hostname mismatch")) << error;
    EXPECT_THAT(error, HasSubstr("broker.redis.tls.server_name")) << error;
    // An IP literal the certificate does not list.
    RedisTlsOptions wrong_ip = tlsOptions();
    wrong_ip.server_name = "127.0.0.2";
    EXPECT_THAT(RedisTls(wrong_ip).check("127.0.0.1", tls_port_, 2.0),
                HasSubstr("IP address mismatch"));
}

TEST_F(RedisTlsTest, PlainPortOrNoServerIsNoTlsVerdictAtStartup) {
    startServer();
    const RedisTls tls(tlsOptions());
    // Nothing listens: the broker retries, startup goes on.
    EXPECT_THAT(tls.check("127.0.0.1", RedisServer::freePort(), 1.0), IsEmpty());
    // A plain-text port never answers a ClientHello as TLS; the broker says so.
    RedisBrokerOptions o = options(tlsOptions());
    o.url.port = server_.port();
    o.probe_timeout_ms = 300;
    Endpoint& a = endpoint(o);
    const std::string error = failure(a);
    EXPECT_FALSE(error.empty());
}

TEST_F(RedisTlsTest, FilesThatDoNotLoadNameTheirKey) {
    RedisTlsOptions missing = tlsOptions();
    missing.ca_file = "/nonexistent/ca.crt";
    EXPECT_THAT([&] { RedisTls t(missing); }, ::testing::ThrowsMessage<std::runtime_error>(
                                                  HasSubstr("broker.redis.tls.ca_file")));
    RedisTlsOptions mismatched = tlsOptions();
    mismatched.cert_file = Pki::get().path("client.crt");
    mismatched.key_file = Pki::get().path("server.key");
    EXPECT_THAT([&] { RedisTls t(mismatched); }, ::testing::ThrowsMessage<std::runtime_error>(
                                                     HasSubstr("broker.redis.tls.key_file")));
}

// Sentinel: the master is reached over TLS (a rediss:// URL), the sentinels over TLS with
// broker.redis.sentinel.tls, or in plain text without it.
class RedisTlsSentinelTest : public RedisTlsTest {
protected:
    void SetUp() override {
        RedisTlsTest::SetUp();
        if (IsSkipped()) return;
        startServer();
        char dir[] = "/tmp/wsrelay-tls-sentinel-XXXXXX";
        ASSERT_NE(mkdtemp(dir), nullptr);
        dir_ = dir;
        conf_ = dir_ + "/sentinel.conf";
        std::ofstream(conf_) << "sentinel monitor m 127.0.0.1 " << tls_port_ << " 1\n";
        sentinel_tls_port_ = RedisServer::freePort();
        std::vector<std::string> args = {"--sentinel", "--tls-replication", "yes"};
        const std::vector<std::string> tls = Pki::get().serverArgs(sentinel_tls_port_, "no");
        args.insert(args.end(), tls.begin(), tls.end());
        sentinel_.setConfigFile(conf_);
        sentinel_.setArgs(args);
        std::string error;
        ASSERT_TRUE(sentinel_.start(error)) << error;
    }
    void TearDown() override {
        RedisTlsTest::TearDown();
        sentinel_.kill();
        if (!conf_.empty()) unlink(conf_.c_str());
        if (!dir_.empty()) rmdir(dir_.c_str());
    }

    RedisBrokerOptions sentinelOptions(bool sentinel_tls) {
        RedisBrokerOptions o = options(tlsOptions());
        o.url.port = RedisServer::freePort();  // not used in sentinel mode
        o.sentinel_master = "m";
        o.sentinels = {
            ClusterNode{"127.0.0.1", sentinel_tls ? sentinel_tls_port_ : sentinel_.port()}};
        if (sentinel_tls) o.sentinel_tls = o.tls;
        return o;
    }

    RedisServer sentinel_;
    int sentinel_tls_port_ = 0;
    std::string dir_;
    std::string conf_;
};

TEST_F(RedisTlsSentinelTest, MasterFoundThroughTlsSentinelAndReachedOverTls) {
    Endpoint& a = endpoint(sentinelOptions(true));
    a.subscribe("chat");
    ASSERT_TRUE(allUp()) << a.broker->lastError();
    RedisClient backend = server_.client();
    EXPECT_EQ(backend.publish("chat", "\"via sentinel\""), 1);
    ASSERT_TRUE(syncedThrough(a, "chat", "\"via sentinel\""));
}

TEST_F(RedisTlsSentinelTest, PlainTextSentinelsWithATlsMaster) {
    Endpoint& a = endpoint(sentinelOptions(false));
    a.subscribe("chat");
    ASSERT_TRUE(allUp()) << a.broker->lastError();
    RedisClient backend = server_.client();
    EXPECT_EQ(backend.publish("chat", "\"plain sentinel\""), 1);
    ASSERT_TRUE(syncedThrough(a, "chat", "\"plain sentinel\""));
}

TEST_F(RedisTlsSentinelTest, SentinelWithTheWrongCaIsRefused) {
    RedisBrokerOptions o = sentinelOptions(true);
    o.sentinel_tls = std::make_shared<const RedisTls>(tlsOptions("other-ca.crt"));
    Endpoint& a = endpoint(o);
    const std::string error = failure(a);
    EXPECT_THAT(error, HasSubstr("broker.redis.tls.ca_file")) << error;
}

// Cluster: every node has a TLS port and speaks TLS on the cluster bus (tls-cluster); CLUSTER
// SLOTS asked over TLS names the nodes' TLS ports, which the broker then connects to.
class RedisTlsClusterTest : public ::testing::Test, protected BrokerRig {
protected:
    RedisTlsClusterTest() : BrokerRig(std::chrono::seconds(20)) {}

    void SetUp() override {
        if (!RedisClusterProcesses::available())
            GTEST_SKIP() << "redis-server or redis-cli missing";
        ASSERT_TRUE(Pki::get().ok()) << "tests/tls/make_certs.sh failed";
        for (int& port : tls_ports_) port = RedisServer::freePort();
        cluster_.setExtraArgs([this](int node) {
            std::vector<std::string> args = Pki::get().serverArgs(tls_ports_[node], "no");
            args.insert(args.end(), {"--tls-cluster", "yes", "--tls-replication", "yes"});
            return args;
        });
        std::string error;
        ASSERT_TRUE(cluster_.start(error)) << error;
    }
    void TearDown() override {
        clear();
        cluster_.stop();
    }

    std::array<int, RedisClusterProcesses::kNodes> tls_ports_{};
    RedisClusterProcesses cluster_;
};

TEST_F(RedisTlsClusterTest, ShardedPubSubAndHistoryOnEveryMasterOverTls) {
    RedisBrokerOptions o;
    o.cluster.push_back(ClusterNode{"127.0.0.1", tls_ports_[1]});
    o.url.tls = true;
    RedisTlsOptions tls;
    tls.ca_file = Pki::get().path("ca.crt");
    o.tls = std::make_shared<const RedisTls>(tls);
    o.reconnect_min_ms = 10;
    o.reconnect_max_ms = 200;
    o.probe_interval_ms = 50;
    o.probe_timeout_ms = 2000;
    o.functions = true;
    RedisBrokerFactory factory(o);
    Endpoint& a = add(factory);
    Endpoint& b = add(factory);
    std::vector<std::string> channels;
    for (int i = 0; i < RedisClusterProcesses::kNodes; ++i) {
        channels.push_back(cluster_.channelOn(i, "tls"));
        a.subscribe(channels.back());
    }
    ASSERT_TRUE(allUp()) << a.broker->lastError() << " / " << b.broker->lastError();
    for (int i = 0; i < RedisClusterProcesses::kNodes; ++i) {
        EXPECT_EQ(cluster_.shardNumsub(i, channels[static_cast<size_t>(i)]), 1) << i;
        b.publish(channels[static_cast<size_t>(i)], "\"plain\"", static_cast<uint64_t>(i));
        b.publish(channels[static_cast<size_t>(i)], "\"kept\"", static_cast<uint64_t>(10 + i),
                  HistoryPolicy{5, 60000});
    }
    for (const std::string& channel : channels) {
        ASSERT_TRUE(syncedThrough(a, channel, "\"kept\"")) << channel;
        EXPECT_THAT(a.dataOf(channel), ElementsAre("\"plain\"", "\"kept\""));
        EXPECT_EQ(a.positionsOf(channel).back().offset, 1u);
    }
    pumpFor(std::chrono::milliseconds(300));
    EXPECT_EQ(a.downs(), 0);
}

}  // namespace
}  // namespace wsrelay
