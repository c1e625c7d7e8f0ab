#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <unordered_map>

#include "adapters/client_address.h"

namespace wsrelay {

// Open connections per client address (limits.connections_per_ip), exact across the workers:
// touched at accept and at close only, never per message. Sharded by address, one mutex per
// shard, so two workers contend only when they admit or close addresses of the same shard at the
// same moment. An address is in the table while it holds at least one connection.
class AddressCounts {
public:
    struct Acquired {
        bool counted = false;    // the connection holds a count now: release() it exactly once
        bool over = false;       // it is over the cap (refused, or counted anyway in a dry run)
        bool new_entry = false;  // the address was not in the table before
    };
    // Counts one more connection of `key`, unless it holds `cap` already: then it is refused, or
    // with `enforce` false (a dry run) counted anyway and reported over.
    Acquired acquire(const AddressKey& key, uint32_t cap, bool enforce);
    // One connection of `key` closed; true when that was its last (the entry is gone).
    bool release(const AddressKey& key);
    uint32_t count(const AddressKey& key) const;
    size_t entries() const;

private:
    struct Hash {
        size_t operator()(const AddressKey& a) const;
    };
    static constexpr size_t kShards = 16;
    struct alignas(64) Shard {
        mutable std::mutex mutex;
        std::unordered_map<AddressKey, uint32_t, Hash> counts;
    };
    Shard& shardOf(const AddressKey& key, size_t hash);
    const Shard& shardOf(const AddressKey& key, size_t hash) const;
    std::array<Shard, kShards> shards_;
};

}  // namespace wsrelay
