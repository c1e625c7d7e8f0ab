#include "relay/admission/user_limit.h"

#include <algorithm>
#include <cstdlib>
#include <vector>

#include "relay/common/log.h"
#include "relay/fleet/fleet_calls.h"
#include "relay/fleet/fleet_id.h"
#include "relay/protocol/close_codes.h"

namespace wsrelay {
namespace {

// A user's set expires this long after the user's last admission: it bounds what entries of a
// relay that died without a user_leave (and that no lease reaper cleaned) cost the user. A set
// whose user keeps every connection open longer is dropped then, and its connections are no
// longer counted: the limit errs towards admitting.
constexpr int64_t kUserSetTtlMs = int64_t{24} * 3600 * 1000;

}  // namespace

UserSlot& UserSlot::operator=(UserSlot&& other) noexcept {
    if (this != &other) {
        reset();
        owner_ = other.owner_;
        user_ = std::move(other.user_);
        connection_ = std::move(other.connection_);
        other.owner_ = nullptr;
    }
    return *this;
}

void UserSlot::reset() {
    if (owner_ == nullptr) return;
    UserLimit* owner = owner_;
    owner_ = nullptr;
    owner->leave(user_, connection_);
}

UserLimit::UserLimit(const Config::Limits& limits, FleetCalls& calls, Tell tell,
                     metrics::WorkerMetrics& metrics)
    : limit_(limits.max_connections_per_user), policy_(limits.per_user_policy), calls_(calls),
      tell_(std::move(tell)), metrics_(metrics), self_(std::make_shared<UserLimit*>(this)) {}

UserLimit::~UserLimit() { *self_ = nullptr; }

void UserLimit::admit(std::string user, std::string connection, Done done) {
    const uint64_t id = next_id_++;
    std::vector<std::string> args = {user, connection, std::to_string(limit_),
                                     policy_ == PerUserPolicy::Refuse ? "refuse" : "evict_oldest",
                                     std::to_string(kUserSetTtlMs)};
    pending_.emplace(id, Pending{std::move(user), std::move(connection), std::move(done)});
    std::weak_ptr<UserLimit*> self = self_;
    calls_.call("user_admit", std::string(kFleetKey), std::move(args),
                [self, id](FleetReply&& reply) {
                    if (auto owner = self.lock(); owner && *owner != nullptr) {
                        (*owner)->onReply(id, std::move(reply));
                    }
                });
}

void UserLimit::abandon() {
    for (auto& [id, pending] : pending_) pending.done = nullptr;
}

void UserLimit::onReply(uint64_t id, FleetReply&& reply) {
    auto it = pending_.find(id);
    if (it == pending_.end()) return;
    Pending pending = std::move(it->second);
    pending_.erase(it);
    Admission admission;
    const std::string verdict = reply.items.empty() ? std::string() : reply.items.front();
    if (reply.status == FleetStatus::Ok && verdict == "refuse") {
        admission.admitted = false;
        if (reply.items.size() > 1)
            admission.held = std::strtoull(reply.items[1].c_str(), nullptr, 10);
    } else if (reply.status == FleetStatus::Ok && (verdict == "admit" || verdict == "evict")) {
        for (size_t i = 1; i < reply.items.size(); ++i) evict(reply.items[i]);
        admission.slot = UserSlot(*this, std::move(pending.user), std::move(pending.connection));
        warned_ = false;
    } else {
        admission.checked = false;
        metrics_.user_limit_unchecked.add();
        if (!warned_) {
            warned_ = true;
            const std::string why = reply.status == FleetStatus::Unavailable ? "broker unavailable"
                                    : reply.status == FleetStatus::Error
                                        ? reply.error
                                        : "unexpected reply " + verdict;
            WSR_LOG(Warn,
                    "limits.max_connections_per_user not checked (%s): connections are admitted "
                    "uncounted meanwhile",
                    why.c_str());
        }
    }
    // Abandoned: an admitted connection's slot leaves again as it goes.
    if (pending.done) pending.done(std::move(admission));
}

void UserLimit::evict(std::string_view connection) {
    const auto ref = fleet::parseConnectionId(connection);
    if (!ref) {
        WSR_LOG(Warn, "user_admit named a malformed connection to evict: %.*s",
                static_cast<int>(std::min<size_t>(connection.size(), 80)), connection.data());
        return;
    }
    metrics_.user_limit_evictions.add();
    const CloseInfo info = closeInfo(CloseCode::ConnectionReplaced);
    std::string fields = "\"connection\":\"";
    fields.append(connection);
    fields += "\",\"code\":" + std::to_string(static_cast<int>(info.code)) + ",\"reason\":\"";
    fields.append(info.reason);
    fields += '"';
    tell_(fleet::workerAddress(ref->instance, ref->worker), "disconnect", fields);
}

void UserLimit::leave(const std::string& user, const std::string& connection) {
    calls_.call("user_leave", std::string(kFleetKey), {user, connection});
}

}  // namespace wsrelay
