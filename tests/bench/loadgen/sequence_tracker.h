#pragma once

// Which sequence numbers of each stream have arrived, for loss, duplicate and order checks. A
// stream is one (sender, receiver) pair: fanout has one per subscriber (its channel's publisher),
// chat one per client of the receiver's channel. Each stream keeps the next expected number; the
// rare gaps live in one shared map, so memory stays flat whatever the message count. Numbers are
// kept in 32 bits: chat with N clients on one channel has N² streams.

#include <cstdint>
#include <map>
#include <utility>
#include <vector>

namespace wsrelay::loadgen {

class SequenceTracker {
public:
    enum class Result { InOrder, Late, Duplicate, OutOfRange };

    // Adds `count` streams; returns the index of the first.
    size_t addStreams(size_t count) {
        size_t first = next_.size();
        next_.resize(first + count, 0);
        return first;
    }

    Result record(size_t stream, uint64_t seq) {
        if (seq >= UINT32_MAX) return Result::OutOfRange;
        uint32_t& next = next_[stream];
        if (seq == next) {
            ++next;
            return Result::InOrder;
        }
        if (seq > next) {
            gaps_.emplace(std::make_pair(stream, next), seq - 1);
            next = uint32_t(seq + 1);
            return Result::InOrder;
        }
        // Behind the highest seen: either a late one filling a gap, or a duplicate.
        auto it = gaps_.upper_bound(std::make_pair(stream, seq));
        if (it == gaps_.begin()) return Result::Duplicate;
        --it;
        if (it->first.first != stream || it->second < seq) return Result::Duplicate;
        const uint64_t first = it->first.second, last = it->second;
        gaps_.erase(it);
        if (first < seq) gaps_.emplace(std::make_pair(stream, first), seq - 1);
        if (seq < last) gaps_.emplace(std::make_pair(stream, seq + 1), last);
        return Result::Late;
    }

private:
    std::vector<uint32_t> next_;                            // one past the highest seen
    std::map<std::pair<size_t, uint64_t>, uint64_t> gaps_;  // (stream, first missing) -> last
};

}  // namespace wsrelay::loadgen
