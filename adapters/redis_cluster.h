#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "adapters/redis_url.h"

struct redisReply;

namespace wsrelay {

// Redis Cluster's key space: 16384 hash slots, each owned by one master.
constexpr int kClusterSlots = 16384;

// The slot of a key (or sharded channel): CRC16/XMODEM of the key, or of the text inside its first
// non-empty {hash tag}, modulo 16384, exactly as Redis computes it.
uint16_t clusterKeySlot(std::string_view key);

// Which master owns each slot.
struct ClusterTopology {
    static constexpr uint16_t kNoOwner = 0xFFFF;
    std::vector<ClusterNode> masters;
    std::vector<uint16_t> owner = std::vector<uint16_t>(kClusterSlots, kNoOwner);

    // Index into masters, or kNoOwner.
    uint16_t ownerOf(uint16_t slot) const { return owner[slot]; }
};

// Reads a CLUSTER SLOTS reply. `asked_host` stands in for a master announced with an empty host
// (Redis does that when it does not know its own address). Fails unless every slot has a master,
// so a broker never runs on a cluster that refuses part of its channels.
bool parseClusterSlots(const redisReply* reply, const std::string& asked_host, ClusterTopology& out,
                       std::string& error);

}  // namespace wsrelay
