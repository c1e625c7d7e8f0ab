#include "adapters/redis_cluster.h"

#include <hiredis/hiredis.h>

#include <algorithm>
#include <array>
#include <charconv>

namespace wsrelay {
namespace {

constexpr std::array<uint16_t, 256> makeCrc16Table() {
    std::array<uint16_t, 256> table{};
    for (uint32_t i = 0; i < 256; ++i) {
        uint32_t crc = i << 8;
        for (int bit = 0; bit < 8; ++bit) crc = (crc & 0x8000) ? (crc << 1) ^ 0x1021 : crc << 1;
        table[i] = static_cast<uint16_t>(crc);
    }
    return table;
}
constexpr std::array<uint16_t, 256> kCrc16 = makeCrc16Table();

uint16_t crc16(std::string_view data) {
    uint16_t crc = 0;
    for (unsigned char c : data) {
        crc = static_cast<uint16_t>((crc << 8) ^ kCrc16[((crc >> 8) ^ c) & 0xFF]);
    }
    return crc;
}

bool isString(const redisReply* r) {
    return r != nullptr && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS);
}

}  // namespace

uint16_t clusterKeySlot(std::string_view key) {
    const size_t open = key.find('{');
    if (open != std::string_view::npos) {
        const size_t close = key.find('}', open + 1);
        if (close != std::string_view::npos && close > open + 1) {
            key = key.substr(open + 1, close - open - 1);
        }
    }
    return crc16(key) & (kClusterSlots - 1);
}

bool parseClusterSlots(const redisReply* reply, const std::string& asked_host, ClusterTopology& out,
                       std::string& error) {
    out = ClusterTopology{};
    if (reply == nullptr || reply->type != REDIS_REPLY_ARRAY) {
        error = reply != nullptr && reply->type == REDIS_REPLY_ERROR
                    ? "CLUSTER SLOTS refused: " + std::string(reply->str, reply->len)
                    : "CLUSTER SLOTS: unexpected reply";
        return false;
    }
    for (size_t i = 0; i < reply->elements; ++i) {
        const redisReply* range = reply->element[i];
        if (range->type != REDIS_REPLY_ARRAY || range->elements < 3 ||
            range->element[0]->type != REDIS_REPLY_INTEGER ||
            range->element[1]->type != REDIS_REPLY_INTEGER ||
            range->element[2]->type != REDIS_REPLY_ARRAY || range->element[2]->elements < 2 ||
            !isString(range->element[2]->element[0]) ||
            range->element[2]->element[1]->type != REDIS_REPLY_INTEGER) {
            error = "CLUSTER SLOTS: malformed slot range";
            return false;
        }
        const long long first = range->element[0]->integer;
        const long long last = range->element[1]->integer;
        const redisReply* master = range->element[2];
        ClusterNode node;
        node.host.assign(master->element[0]->str, master->element[0]->len);
        if (node.host.empty() || node.host == "?") node.host = asked_host;
        const long long port = master->element[1]->integer;
        if (first < 0 || last >= kClusterSlots || first > last || port < 1 || port > 65535) {
            error = "CLUSTER SLOTS: slot range or port out of bounds";
            return false;
        }
        node.port = static_cast<int>(port);
        auto it = std::find(out.masters.begin(), out.masters.end(), node);
        if (it == out.masters.end()) it = out.masters.insert(out.masters.end(), node);
        const auto index = static_cast<uint16_t>(it - out.masters.begin());
        std::fill(out.owner.begin() + first, out.owner.begin() + last + 1, index);
    }
    const auto unowned = std::count(out.owner.begin(), out.owner.end(), ClusterTopology::kNoOwner);
    if (unowned > 0) {
        error = "CLUSTER SLOTS: " + std::to_string(unowned) + " slots have no master";
        return false;
    }
    return true;
}

}  // namespace wsrelay
