// Which port serves which endpoint (relay/http/ports.h): the rule behind listen.internal_port.
// The integration test test_internal_port.py checks it on real sockets.

#include "relay/http/ports.h"

#include <gtest/gtest.h>

namespace wsrelay::http {
namespace {

TEST(PortsTest, PathsAreClassifiedOnce) {
    EXPECT_EQ(endpointOf("/ws", "/ws"), Endpoint::WebSocket);
    EXPECT_EQ(endpointOf("/live", "/live"), Endpoint::WebSocket);
    EXPECT_EQ(endpointOf("/healthz", "/ws"), Endpoint::Probe);
    EXPECT_EQ(endpointOf("/readyz", "/ws"), Endpoint::Probe);
    EXPECT_EQ(endpointOf("/metrics", "/ws"), Endpoint::Operator);
    EXPECT_EQ(endpointOf("/api/publish", "/ws"), Endpoint::Operator);
    EXPECT_EQ(endpointOf("/api/anything", "/ws"), Endpoint::Operator);
    EXPECT_EQ(endpointOf("/api", "/ws"), Endpoint::Other);
    EXPECT_EQ(endpointOf("/metricsx", "/ws"), Endpoint::Other);
    EXPECT_EQ(endpointOf("/", "/ws"), Endpoint::Other);
}

TEST(PortsTest, WithoutAnInternalPortThePublicPortServesEverything) {
    for (Endpoint e : {Endpoint::WebSocket, Endpoint::Probe, Endpoint::Operator, Endpoint::Other}) {
        EXPECT_TRUE(serves(Port::Public, e, /*split=*/false));
    }
}

TEST(PortsTest, WithAnInternalPortEachPortServesItsOwnEndpoints) {
    EXPECT_TRUE(serves(Port::Public, Endpoint::WebSocket, true));
    EXPECT_TRUE(serves(Port::Public, Endpoint::Probe, true));
    EXPECT_FALSE(serves(Port::Public, Endpoint::Operator, true));

    EXPECT_FALSE(serves(Port::Internal, Endpoint::WebSocket, true));
    EXPECT_TRUE(serves(Port::Internal, Endpoint::Probe, true));
    EXPECT_TRUE(serves(Port::Internal, Endpoint::Operator, true));
}

}  // namespace
}  // namespace wsrelay::http
