#include "relay/common/address_counts.h"

#include <string_view>

namespace wsrelay {

size_t AddressCounts::Hash::operator()(const AddressKey& a) const {
    return std::hash<std::string_view>{}(
        std::string_view(reinterpret_cast<const char*>(a.data()), a.size()));
}

AddressCounts::Shard& AddressCounts::shardOf(const AddressKey&, size_t hash) {
    // The map uses the low bits of the same hash for its buckets: the shard takes high ones.
    return shards_[(hash >> 56) % kShards];
}

const AddressCounts::Shard& AddressCounts::shardOf(const AddressKey&, size_t hash) const {
    return shards_[(hash >> 56) % kShards];
}

AddressCounts::Acquired AddressCounts::acquire(const AddressKey& key, uint32_t cap, bool enforce) {
    const size_t hash = Hash{}(key);
    Shard& shard = shardOf(key, hash);
    std::lock_guard lock(shard.mutex);
    auto [it, inserted] = shard.counts.try_emplace(key, 0);
    Acquired result;
    result.new_entry = inserted;
    result.over = cap != 0 && it->second >= cap;
    if (result.over && enforce) {
        if (inserted) shard.counts.erase(it);  // cannot happen with cap >= 1
        result.new_entry = false;
        return result;
    }
    ++it->second;
    result.counted = true;
    return result;
}

bool AddressCounts::release(const AddressKey& key) {
    const size_t hash = Hash{}(key);
    Shard& shard = shardOf(key, hash);
    std::lock_guard lock(shard.mutex);
    auto it = shard.counts.find(key);
    if (it == shard.counts.end()) return false;  // cannot happen: every release has its acquire
    if (--it->second > 0) return false;
    shard.counts.erase(it);
    return true;
}

uint32_t AddressCounts::count(const AddressKey& key) const {
    const size_t hash = Hash{}(key);
    const Shard& shard = shardOf(key, hash);
    std::lock_guard lock(shard.mutex);
    auto it = shard.counts.find(key);
    return it == shard.counts.end() ? 0 : it->second;
}

size_t AddressCounts::entries() const {
    size_t n = 0;
    for (const Shard& shard : shards_) {
        std::lock_guard lock(shard.mutex);
        n += shard.counts.size();
    }
    return n;
}

}  // namespace wsrelay
