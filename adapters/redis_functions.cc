#include "adapters/redis_functions.h"

#include <hiredis/hiredis.h>

#include "adapters/redis_payload.h"

namespace wsrelay {

// adapters/redis_functions.lua, embedded at build time.
extern const std::string_view kRedisFunctionsLua;

namespace {

constexpr uint64_t kMaxOffset = (uint64_t{1} << 53) - 1;

std::string_view textOf(const redisReply& r) { return std::string_view(r.str, r.len); }

// An integer reply in 0..2^53-1 (what a Lua number gives), or a bulk string of its digits.
bool offsetOf(const redisReply& r, uint64_t& offset) {
    if (r.type != REDIS_REPLY_INTEGER || r.integer < 0 ||
        static_cast<uint64_t>(r.integer) > kMaxOffset) {
        return false;
    }
    offset = static_cast<uint64_t>(r.integer);
    return true;
}

}  // namespace

std::string redisFunctionLibrary(RedisMode mode) {
    std::string source(kRedisFunctionsLua);
    if (mode == RedisMode::Cluster) {
        // The one line that differs (adapters/redis_functions.lua): shard subscribers hear only
        // SPUBLISH.
        const std::string_view line = "local PUBLISH = 'PUBLISH'";
        const size_t at = source.find(line);
        if (at != std::string::npos) source.replace(at, line.size(), "local PUBLISH = 'SPUBLISH'");
    }
    return source;
}

bool isMissingFunction(std::string_view error) {
    return error.starts_with("NOSCRIPT") || error.find("Function not found") != std::string::npos;
}

bool parsePublishReply(const redisReply& reply, uint64_t& offset, std::string_view& epoch,
                       uint64_t& trimmed) {
    if (reply.type != REDIS_REPLY_ARRAY || reply.elements < 2) return false;
    const redisReply& e = *reply.element[1];
    if (!offsetOf(*reply.element[0], offset) || offset == 0 || e.type != REDIS_REPLY_STRING ||
        !isEpoch(textOf(e))) {
        return false;
    }
    trimmed = 0;
    if (reply.elements >= 3 && !offsetOf(*reply.element[2], trimmed)) return false;
    epoch = textOf(e);
    return true;
}

bool parseHistoryReply(const redisReply& reply, uint64_t after, uint32_t limit, StreamPosition& top,
                       std::vector<HistoryReplyEntry>& entries, std::string& error) {
    entries.clear();
    if (reply.type != REDIS_REPLY_ARRAY || reply.elements < 2 || reply.elements % 2 != 0) {
        error = "not an array of an even length of at least 2";
        return false;
    }
    const redisReply& epoch = *reply.element[1];
    if (!offsetOf(*reply.element[0], top.offset) || epoch.type != REDIS_REPLY_STRING ||
        !isEpoch(textOf(epoch))) {
        error = "no position";
        return false;
    }
    top.epoch.assign(textOf(epoch));
    const size_t count = reply.elements / 2 - 1;
    if (count > limit) {
        error = std::to_string(count) + " entries, " + std::to_string(limit) + " asked for";
        return false;
    }
    entries.reserve(count);
    uint64_t previous = after;
    for (size_t i = 2; i < reply.elements; i += 2) {
        HistoryReplyEntry entry;
        const redisReply& data = *reply.element[i + 1];
        if (!offsetOf(*reply.element[i], entry.offset) || entry.offset <= previous ||
            entry.offset > top.offset || data.type != REDIS_REPLY_STRING) {
            error = "entry " + std::to_string(i / 2) + " out of order or malformed";
            return false;
        }
        entry.data = textOf(data);
        previous = entry.offset;
        entries.push_back(entry);
    }
    return true;
}

}  // namespace wsrelay
