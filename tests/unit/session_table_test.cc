// SessionTable's index by user: kept in step with add and remove, so a fleet command for one user
// visits that user's sessions only.

#include "relay/session/session_table.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <string_view>
#include <vector>

namespace wsrelay {
namespace {

using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

// The table only keeps pointers: these stand in for sessions and are never dereferenced.
Session* fake(int n) { return reinterpret_cast<Session*>(static_cast<uintptr_t>(0x1000 * n)); }

std::vector<Session*> of(SessionTable& table, std::string_view user) {
    std::vector<Session*> out;
    table.forUser(user, [&out](Session& s) { out.push_back(&s); });
    return out;
}

TEST(SessionTableTest, IndexesSessionsByUser) {
    SessionTable table(1);
    table.add(1, fake(1), "alice");
    table.add(2, fake(2), "bob");
    table.add(3, fake(3), "alice");
    table.add(4, fake(4));  // no user
    EXPECT_EQ(table.size(), 4u);
    EXPECT_EQ(table.userCount(), 2u);
    EXPECT_THAT(of(table, "alice"), UnorderedElementsAre(fake(1), fake(3)));
    EXPECT_THAT(of(table, "bob"), UnorderedElementsAre(fake(2)));
    EXPECT_THAT(of(table, "carol"), IsEmpty());
    EXPECT_THAT(of(table, ""), IsEmpty());  // sessions without a user are nobody's

    table.remove(1);
    EXPECT_THAT(of(table, "alice"), UnorderedElementsAre(fake(3)));
    table.remove(3);
    EXPECT_THAT(of(table, "alice"), IsEmpty());
    EXPECT_EQ(table.userCount(), 1u);  // a user's entry goes with its last session
    table.remove(4);
    table.remove(99);  // unknown: nothing
    EXPECT_EQ(table.size(), 1u);
    EXPECT_EQ(table.find(2), fake(2));
    EXPECT_EQ(table.find(1), nullptr);
}

}  // namespace
}  // namespace wsrelay
