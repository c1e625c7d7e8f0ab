#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "adapters/broker.h"

struct redisReply;

namespace wsrelay {

// The `wsrelay` Redis Function library (adapters/redis_functions.lua, built in) and what its two
// functions answer. docs/scaling.md "History" describes the keys and the calls.
enum class RedisMode { Standalone, Cluster };

// The library's source for FUNCTION LOAD REPLACE: its publish command is PUBLISH, or SPUBLISH in
// a Redis Cluster.
std::string redisFunctionLibrary(RedisMode mode);

// An error reply saying the library is not loaded (a Redis restarted without persistence, or a
// FUNCTION FLUSH): "ERR Function not found", or NOSCRIPT.
bool isMissingFunction(std::string_view error);

// FCALL wsrelay_publish's reply, {offset, epoch, trimmed}; false when it is not that shape.
// `epoch` views into `reply`. {offset, epoch} (a library an older relay loaded, during a rolling
// update) is read as trimmed 0; elements after the third (a newer library's) are ignored.
bool parsePublishReply(const redisReply& reply, uint64_t& offset, std::string_view& epoch,
                       uint64_t& trimmed);

// One entry of FCALL wsrelay_history's reply; `data` views into the reply, as stored (it may
// start with the entry stamp).
struct HistoryReplyEntry {
    uint64_t offset = 0;
    std::string_view data;
};

// FCALL wsrelay_history's reply, {offset, epoch, o1, d1, ...}, checked against what was asked:
// false, with `error`, unless the position is well formed and the entries are at most `limit`,
// with ascending offsets above `after` and at most the top offset.
bool parseHistoryReply(const redisReply& reply, uint64_t after, uint32_t limit, StreamPosition& top,
                       std::vector<HistoryReplyEntry>& entries, std::string& error);

}  // namespace wsrelay
