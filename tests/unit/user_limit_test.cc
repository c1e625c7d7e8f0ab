// limits.max_connections_per_user, a worker's end (relay/admission/user_limit.h): what it asks the
// fleet, and what it makes of each reply. The fleet is a FakeBroker behind a real FleetCalls; the
// test answers the calls.
#include "relay/admission/user_limit.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <list>
#include <optional>
#include <string>
#include <vector>

#include "relay/fleet/fleet_calls.h"
#include "tests/unit/worker_parts.h"

namespace wsrelay {
namespace {

using ::testing::ElementsAre;

struct Told {
    std::string target;
    std::string cmd;
    std::string fields;
};

class UserLimitTest : public ::testing::Test {
protected:
    explicit UserLimitTest(PerUserPolicy policy = PerUserPolicy::Refuse) {
        limits_.max_connections_per_user = 2;
        limits_.per_user_policy = policy;
        limit_.emplace(
            limits_, calls_,
            [this](std::string_view target, std::string_view cmd, std::string_view fields) {
                told_.push_back({std::string(target), std::string(cmd), std::string(fields)});
            },
            metrics_);
    }

    // Admits `connection` of `user`; the admission, once the test answered.
    std::optional<UserLimit::Admission>& admit(const std::string& user,
                                               const std::string& connection) {
        auto& slot = results_.emplace_back();
        limit_->admit(user, connection,
                      [&slot](UserLimit::Admission&& a) { slot.emplace(std::move(a)); });
        return slot;
    }
    void answer(FleetReply reply) {
        ASSERT_FALSE(broker_.fleet_calls.empty());
        const uint64_t token = broker_.fleet_calls.back().token;
        calls_.onReply(token, std::move(reply));
    }
    static FleetReply items(std::vector<std::string> items) {
        FleetReply r;
        r.items = std::move(items);
        return r;
    }

    Config::Limits limits_;
    testing::FakeBroker broker_;
    FleetCalls calls_{&broker_};
    metrics::WorkerMetrics metrics_;
    std::vector<Told> told_;
    std::optional<UserLimit> limit_;
    std::list<std::optional<UserLimit::Admission>> results_;
};

TEST_F(UserLimitTest, AppliesOnlyToConnectionsWithAUser) {
    EXPECT_TRUE(limit_->applies("ann"));
    EXPECT_FALSE(limit_->applies(""));
    Config::Limits off;
    UserLimit none(off, calls_, nullptr, metrics_);
    EXPECT_FALSE(none.applies("ann"));
}

TEST_F(UserLimitTest, AsksTheFleetAndLeavesWhenTheSlotGoes) {
    auto& result = admit("ann", "k3x9a0b2.281474976710657");
    ASSERT_EQ(broker_.fleet_calls.size(), 1u);
    const FleetCall& call = broker_.fleet_calls[0];
    EXPECT_EQ(call.function, "user_admit");
    EXPECT_EQ(call.key, kFleetKey);
    EXPECT_THAT(call.args,
                ElementsAre("ann", "k3x9a0b2.281474976710657", "2", "refuse", "86400000"));
    EXPECT_FALSE(result.has_value());  // never from inside admit()
    answer(items({"admit"}));
    ASSERT_TRUE(result.has_value());
    EXPECT_TRUE(result->admitted);
    EXPECT_TRUE(result->checked);
    EXPECT_TRUE(result->slot.held());
    EXPECT_TRUE(told_.empty());

    UserSlot moved = std::move(result->slot);
    EXPECT_EQ(broker_.fleet_calls.size(), 1u);
    moved.reset();
    ASSERT_EQ(broker_.fleet_calls.size(), 2u);
    EXPECT_EQ(broker_.fleet_calls[1].function, "user_leave");
    EXPECT_THAT(broker_.fleet_calls[1].args, ElementsAre("ann", "k3x9a0b2.281474976710657"));
    moved.reset();  // exactly once
    EXPECT_EQ(broker_.fleet_calls.size(), 2u);
}

TEST_F(UserLimitTest, RefusedWithWhatTheUserHolds) {
    auto& result = admit("ann", "k3x9a0b2.3");
    answer(items({"refuse", "2"}));
    ASSERT_TRUE(result.has_value());
    EXPECT_FALSE(result->admitted);
    EXPECT_EQ(result->held, 2u);
    EXPECT_FALSE(result->slot.held());
    result.reset();
    EXPECT_EQ(broker_.fleet_calls.size(), 1u);  // nothing to leave
}

TEST_F(UserLimitTest, EvictsEachNamedConnectionInItsWorkersInbox) {
    auto& result = admit("ann", "k3x9a0b2.3");
    answer(items({"evict", "aaaaaaaa.281474976710657", "bad id"}));
    ASSERT_TRUE(result.has_value() && result->admitted && result->slot.held());
    ASSERT_EQ(told_.size(), 1u);  // the malformed id is skipped
    EXPECT_EQ(told_[0].target, "aaaaaaaa.1");
    EXPECT_EQ(told_[0].cmd, "disconnect");
    EXPECT_EQ(told_[0].fields, R"("connection":"aaaaaaaa.281474976710657","code":4501,)"
                               R"("reason":"replaced by a newer connection")");
    EXPECT_EQ(metrics_.user_limit_evictions.value(), 1);
}

TEST_F(UserLimitTest, AdmittedUncountedWhenTheFleetCannotAnswer) {
    auto& down = admit("ann", "k3x9a0b2.3");
    FleetReply unavailable;
    unavailable.status = FleetStatus::Unavailable;
    answer(std::move(unavailable));
    auto& failed = admit("ann", "k3x9a0b2.4");
    FleetReply error;
    error.status = FleetStatus::Error;
    error.error = "ERR Function not found";
    answer(std::move(error));
    for (auto* r : {&down, &failed}) {
        ASSERT_TRUE(r->has_value());
        EXPECT_TRUE((*r)->admitted);
        EXPECT_FALSE((*r)->checked);
        EXPECT_FALSE((*r)->slot.held());  // nothing to leave
    }
    EXPECT_EQ(metrics_.user_limit_unchecked.value(), 2);
}

TEST_F(UserLimitTest, AnAbandonedAdmissionLeavesAgain) {
    auto& result = admit("ann", "k3x9a0b2.3");
    limit_->abandon();
    answer(items({"admit"}));
    EXPECT_FALSE(result.has_value());
    ASSERT_EQ(broker_.fleet_calls.size(), 2u);
    EXPECT_EQ(broker_.fleet_calls[1].function, "user_leave");
    EXPECT_EQ(limit_->pending(), 0u);
}

TEST_F(UserLimitTest, AReplyAfterItIsGoneReachesNobody) {
    admit("ann", "k3x9a0b2.3");
    const uint64_t token = broker_.fleet_calls.back().token;
    limit_.reset();
    calls_.onReply(token, items({"admit"}));
    EXPECT_EQ(broker_.fleet_calls.size(), 1u);
}

class UserLimitEvictTest : public UserLimitTest {
protected:
    UserLimitEvictTest() : UserLimitTest(PerUserPolicy::EvictOldest) {}
};

TEST_F(UserLimitEvictTest, SendsItsPolicy) {
    admit("ann", "k3x9a0b2.3");
    EXPECT_EQ(broker_.fleet_calls.back().args[3], "evict_oldest");
}

}  // namespace
}  // namespace wsrelay
