#include "relay/admission/pending_connections.h"

#include <netinet/in.h>

#include "gtest/gtest.h"
#include "relay/admission/upgrade_gate.h"

namespace wsrelay {
namespace {

using Stage = PendingConnection::Stage;
using Admit = PendingConnections::Admit;

AddressKey v4(uint8_t last) {
    sockaddr_storage peer{};
    auto& in = reinterpret_cast<sockaddr_in&>(peer);
    in.sin_family = AF_INET;
    in.sin_addr.s_addr = htonl(0x7f000000u | last);
    return addressKey(peer);
}

TEST(PendingConnectionsTest, IPv4AndIPv6AddressesAreKeysOfOneKind) {
    sockaddr_storage peer{};
    auto& in6 = reinterpret_cast<sockaddr_in6&>(peer);
    in6.sin6_family = AF_INET6;
    in6.sin6_addr.s6_addr[10] = 0xff;
    in6.sin6_addr.s6_addr[11] = 0xff;
    in6.sin6_addr.s6_addr[12] = 127;
    in6.sin6_addr.s6_addr[15] = 1;
    EXPECT_EQ(v4(1), addressKey(peer));  // ::ffff:127.0.0.1 is 127.0.0.1
    EXPECT_NE(v4(1), v4(2));
}

TEST(PendingConnectionsTest, FullMeansTheOldestMayMakeRoom) {
    PendingConnections table(2, 0);
    EXPECT_EQ(Admit::Added, table.add(10, v4(1), 1.0));
    EXPECT_EQ(Admit::Added, table.add(11, v4(1), 2.0));
    EXPECT_EQ(Admit::Full, table.add(12, v4(2), 3.0));
    ASSERT_NE(nullptr, table.oldest());
    EXPECT_EQ(10, table.oldest()->fd);
    // Being closed, it no longer counts against the bound, but is still there.
    table.setStage(*table.oldest(), Stage::Closing, 3.0);
    EXPECT_EQ(11, table.oldest()->fd);
    EXPECT_EQ(Admit::Added, table.add(12, v4(2), 3.0));
    EXPECT_EQ(3u, table.size());
    EXPECT_EQ(1u, table.closing());
    table.remove(*table.find(10));
    EXPECT_EQ(0u, table.closing());
    EXPECT_EQ(2u, table.size());
}

TEST(PendingConnectionsTest, AnAddressAtItsBoundIsRefusedOthersAreNot) {
    PendingConnections table(100, 2);
    EXPECT_EQ(Admit::Added, table.add(1, v4(1), 0));
    EXPECT_EQ(Admit::Added, table.add(2, v4(1), 0));
    EXPECT_EQ(Admit::OverAddressLimit, table.add(3, v4(1), 0));
    EXPECT_EQ(Admit::Added, table.add(4, v4(2), 0));
    table.remove(*table.find(1));
    EXPECT_EQ(Admit::Added, table.add(3, v4(1), 0));
}

TEST(PendingConnectionsTest, ParkedConnectionsAreNeitherShedNorAged) {
    PendingConnections table(10, 0);
    table.add(1, v4(1), 1.0);
    table.add(2, v4(1), 2.0);
    table.setStage(*table.find(1), Stage::Parked, 3.0);
    EXPECT_EQ(2, table.oldest()->fd);
    table.setStage(*table.find(1), Stage::Lws, 6.0);  // the hook answered: aged from now
    EXPECT_EQ(2, table.oldest()->fd);
    table.remove(*table.find(2));
    EXPECT_EQ(1, table.oldest()->fd);
    EXPECT_EQ(6.0, table.oldest()->since);
}

TEST(PendingConnectionsTest, LookedUpBySocketAndByConnection) {
    PendingConnections table(10, 0);
    table.add(7, v4(1), 0);
    auto* wsi = reinterpret_cast<lws*>(0x1000);
    EXPECT_EQ(nullptr, table.find(wsi));
    table.attach(*table.find(7), wsi);
    EXPECT_EQ(table.find(7), table.find(wsi));
    table.find(wsi)->grant = std::make_unique<UpgradeGrant>();
    table.remove(*table.find(wsi));
    EXPECT_EQ(nullptr, table.find(wsi));
    EXPECT_EQ(nullptr, table.find(7));
    EXPECT_EQ(0u, table.size());
}

}  // namespace
}  // namespace wsrelay
