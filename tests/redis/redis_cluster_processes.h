#pragma once

// A real Redis Cluster of three masters (no replicas) on loopback, made with
// `redis-cli --cluster create`, torn down by PID; and what tests ask of it (slot owners, a channel
// on a given master, PUBSUB SHARDNUMSUB).
#include <gtest/gtest.h>
#include <hiredis/hiredis.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "adapters/redis_cluster.h"
#include "tests/redis/broker_endpoint.h"
#include "tests/redis/redis_server.h"

namespace wsrelay::testing {

class RedisClusterProcesses {
public:
    static constexpr int kNodes = 3;
    static constexpr const char* kRedisCli = "/usr/bin/redis-cli";
    using Clock = std::chrono::steady_clock;

    static bool available() { return RedisServer::available() && access(kRedisCli, X_OK) == 0; }

    RedisClusterProcesses() = default;
    ~RedisClusterProcesses() { stop(); }
    RedisClusterProcesses(const RedisClusterProcesses&) = delete;
    RedisClusterProcesses& operator=(const RedisClusterProcesses&) = delete;

    // Extra redis-server arguments for every node (TLS: --tls-port, --tls-cluster yes, ...), for
    // the next start().
    void setExtraArgs(std::function<std::vector<std::string>(int node)> args) {
        extra_args_ = std::move(args);
    }

    // Starts the masters, assigns the slots and waits for cluster_state:ok.
    bool start(std::string& error) {
        char dir[] = "/tmp/wsrelay-cluster-XXXXXX";
        if (mkdtemp(dir) == nullptr) {
            error = "mkdtemp failed";
            return false;
        }
        dir_ = dir;
        std::vector<std::string> create = {kRedisCli, "--cluster", "create"};
        for (int i = 0; i < kNodes; ++i) {
            std::vector<std::string> args = {
                "--cluster-enabled",      "yes",
                "--cluster-config-file",  nodesFile(i),
                "--cluster-port",         std::to_string(RedisServer::freePort()),
                "--cluster-node-timeout", "1000"};
            if (extra_args_) {
                const std::vector<std::string> extra = extra_args_(i);
                args.insert(args.end(), extra.begin(), extra.end());
            }
            servers_[i].setArgs(std::move(args));
            if (!servers_[i].start(error)) return false;
            create.push_back("127.0.0.1:" + std::to_string(servers_[i].port()));
        }
        create.insert(create.end(), {"--cluster-replicas", "0", "--cluster-yes"});
        if (runTool(create, std::chrono::seconds(30)) != 0) {
            error = "redis-cli --cluster create failed";
            return false;
        }
        if (!waitOk(std::chrono::seconds(20))) {
            error = "the cluster did not reach cluster_state:ok";
            return false;
        }
        return true;
    }

    void stop() {
        for (RedisServer& s : servers_) s.kill();
        if (dir_.empty()) return;
        for (int i = 0; i < kNodes; ++i) unlink(nodesFile(i).c_str());
        rmdir(dir_.c_str());
        dir_.clear();
    }

    RedisServer& server(int index) { return servers_[index]; }

    // Until every master reports cluster_state:ok, or `limit` passed.
    bool waitOk(Clock::duration limit) {
        const auto deadline = Clock::now() + limit;
        while (Clock::now() < deadline) {
            int ok = 0;
            for (RedisServer& s : servers_) {
                RedisClient c = s.client();
                ReplyPtr r = c.ok() ? c.command({"CLUSTER", "INFO"}) : nullptr;
                if (r && r->type == REDIS_REPLY_STRING &&
                    std::string(r->str, r->len).find("cluster_state:ok") != std::string::npos) {
                    ++ok;
                }
            }
            if (ok == kNodes) return true;
            const timespec pause{0, 20 * 1000 * 1000};  // between polls of CLUSTER INFO
            nanosleep(&pause, nullptr);
        }
        return false;
    }

    // The server index owning each slot, from CLUSTER SLOTS.
    std::vector<int> slotOwners() {
        RedisClient c = servers_[0].client();
        ReplyPtr r = c.command({"CLUSTER", "SLOTS"});
        ClusterTopology topology;
        std::string error;
        EXPECT_TRUE(parseClusterSlots(r.get(), "127.0.0.1", topology, error)) << error;
        std::vector<int> owners(kClusterSlots, -1);
        for (int slot = 0; slot < kClusterSlots; ++slot) {
            const uint16_t owner = topology.ownerOf(static_cast<uint16_t>(slot));
            const ClusterNode& node = topology.masters[owner];
            for (int i = 0; i < kNodes; ++i) {
                if (servers_[i].port() == node.port) owners[slot] = i;
            }
        }
        return owners;
    }
    // A channel "<base><n>" whose (prefixed) slot belongs to server `index`.
    std::string channelOn(int index, const std::string& base, const std::string& prefix = "") {
        const std::vector<int> owners = slotOwners();
        for (int n = 0;; ++n) {
            const std::string name = base + std::to_string(n);
            if (owners[clusterKeySlot(prefix + name)] == index) return name;
        }
    }
    long long shardNumsub(int index, const std::string& channel) {
        RedisClient c = servers_[index].client();
        ReplyPtr r = c.command({"PUBSUB", "SHARDNUMSUB", channel});
        if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2) return -1;
        return r->element[1]->integer;
    }
    // Subscribers of `channel` on every master together.
    long long shardNumsubEverywhere(const std::string& channel) {
        long long total = 0;
        for (int i = 0; i < kNodes; ++i) total += shardNumsub(i, channel);
        return total;
    }
    std::string nodeId(int index) {
        RedisClient c = servers_[index].client();
        ReplyPtr r = c.command({"CLUSTER", "MYID"});
        return r && r->type == REDIS_REPLY_STRING ? std::string(r->str, r->len) : "";
    }

private:
    std::string nodesFile(int i) const { return dir_ + "/nodes-" + std::to_string(i) + ".conf"; }

    std::array<RedisServer, kNodes> servers_;
    std::string dir_;
    std::function<std::vector<std::string>(int)> extra_args_;
};

}  // namespace wsrelay::testing
