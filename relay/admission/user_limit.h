#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "adapters/broker.h"
#include "conf/config.h"
#include "metrics/relay_metrics.h"

namespace wsrelay {

class FleetCalls;
class UserLimit;

// One admitted connection's entry in its user's set, left exactly once: when it is destroyed or
// reset. It moves with the connection from the gate to its session, as AddressSlot does.
class UserSlot {
public:
    UserSlot() = default;
    UserSlot(UserLimit& owner, std::string user, std::string connection)
        : owner_(&owner), user_(std::move(user)), connection_(std::move(connection)) {}
    UserSlot(UserSlot&& other) noexcept { *this = std::move(other); }
    UserSlot& operator=(UserSlot&& other) noexcept;
    UserSlot(const UserSlot&) = delete;
    UserSlot& operator=(const UserSlot&) = delete;
    ~UserSlot() { reset(); }

    void reset();
    bool held() const { return owner_ != nullptr; }

private:
    UserLimit* owner_ = nullptr;
    std::string user_;
    std::string connection_;
};

// limits.max_connections_per_user, a worker's end (docs/scaling.md "Per-user limit"). A
// connection with a user asks the fleet before its upgrade (the fleet call user_admit on the
// fleet's key: one sorted set per user in Redis, or the memory broker's MemoryUserSets), and
// leaves with user_leave when its slot goes. Over the limit, limits.per_user_policy refuses the
// new one, or evicts the user's oldest: each is sent the fleet command `disconnect` with 4501,
// to the inbox of the worker that holds it. When the fleet cannot answer (the broker is down, or
// the call failed) the connection is admitted unchecked and counted: the limit bounds a user's
// share, it does not guard anything, and the relay keeps admitting connections while Redis is
// away as it does without the limit. One per worker, on its thread.
class UserLimit {
public:
    // FleetControl::tell: a one-way command to the worker at `target` (`<instance>.<worker>`).
    using Tell =
        std::function<void(std::string_view target, std::string_view cmd, std::string_view fields)>;
    UserLimit(const Config::Limits& limits, FleetCalls& calls, Tell tell,
              metrics::WorkerMetrics& metrics);
    ~UserLimit();
    UserLimit(const UserLimit&) = delete;
    UserLimit& operator=(const UserLimit&) = delete;

    // Whether a connection of `user` is counted: the limit is on and it has a user.
    bool applies(std::string_view user) const { return limit_ > 0 && !user.empty(); }

    struct Admission {
        bool admitted = true;
        bool checked = true;  // false: admitted because the fleet could not be asked
        uint64_t held = 0;    // refused: the connections the user holds
        UserSlot slot;        // admitted and counted: the connection's entry
    };
    using Done = std::function<void(Admission&&)>;
    // Connection `connection` (its fleet id) of `user` asks to open; `done` runs once, on a later
    // loop turn, unless abandon() came first.
    void admit(std::string user, std::string connection, Done done);
    // Forgets the callers of every admission under way (the gate goes): their `done` never runs,
    // and one the fleet admits leaves again at once.
    void abandon();
    size_t pending() const { return pending_.size(); }

private:
    friend class UserSlot;
    struct Pending {
        std::string user;
        std::string connection;
        Done done;
    };
    void leave(const std::string& user, const std::string& connection);
    void onReply(uint64_t id, FleetReply&& reply);
    void evict(std::string_view connection);

    const int limit_;
    const PerUserPolicy policy_;
    FleetCalls& calls_;
    Tell tell_;
    metrics::WorkerMetrics& metrics_;
    std::unordered_map<uint64_t, Pending> pending_;
    uint64_t next_id_ = 1;
    bool warned_ = false;  // an unchecked admission was logged since the last checked one
    // What the fleet calls' callbacks reach this through: cleared when it goes, so a reply that
    // comes later finds nobody.
    std::shared_ptr<UserLimit*> self_;
};

}  // namespace wsrelay
