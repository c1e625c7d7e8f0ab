#pragma once

#include <string>
#include <unordered_map>
#include <vector>

#include "adapters/broker.h"

namespace wsrelay {

// The per-user connection sets of the memory broker: wsrelay_user_admit and wsrelay_user_leave of
// adapters/redis_functions.lua, answered the same way in C++ (docs/scaling.md "Per-user limit").
// A user's connections are kept in the order they were admitted; a user with none has no entry.
// Nothing expires: the process is the whole fleet, so no entry can outlive its relay. Not
// thread-safe: the memory broker's factory calls it under its lock.
class MemoryUserSets {
public:
    // Answers `call` when it is user_admit or user_leave: true with `reply` set; false for any
    // other function.
    bool call(const FleetCall& call, FleetReply& reply);
    // args: user, connection, limit, policy (refuse | evict_oldest), ttl_ms (ignored).
    FleetReply admit(const std::vector<std::string>& args);
    // args: user, connection... ; `integer` = how many were removed.
    FleetReply leave(const std::vector<std::string>& args);
    // Users holding at least one connection (tests).
    size_t users() const { return users_.size(); }

private:
    std::unordered_map<std::string, std::vector<std::string>> users_;
};

}  // namespace wsrelay
