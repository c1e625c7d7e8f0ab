#pragma once

#include <string>
#include <string_view>

namespace wsrelay {

// Redis addresses as the configuration writes them. This file depends on nothing but the standard
// library, so conf/ checks the same syntax the brokers connect with (library
// wsrelay_redis_address).

// Where and how to reach a standalone Redis: redis://[user:password@]host[:port][/db], or
// rediss:// for TLS.
struct RedisUrl {
    std::string host;
    int port = 6379;
    std::string user;      // empty: AUTH with the password only (the default user)
    std::string password;  // empty and no user: no AUTH
    int db = 0;            // SELECT is sent only when it is not 0
    bool tls = false;      // rediss://: TLS with broker.redis.tls.* (adapters/redis_tls.h)
};

struct RedisUrlParse {
    RedisUrl url;
    std::string error;  // empty on success; otherwise says what is wrong, never echoes a password
};

// Parses redis[s]://[[user]:password@]host[:port][/db]; user and password are percent-decoded, an
// IPv6 host is written in brackets. The port is 6379 for both schemes when omitted.
RedisUrlParse parseRedisUrl(std::string_view text);

// host:port/db, for logs: never the credentials.
std::string describeRedisUrl(const RedisUrl& url);

// A Redis Cluster node or a Sentinel.
struct ClusterNode {
    std::string host;
    int port = 0;
    std::string name() const { return host + ":" + std::to_string(port); }
    bool operator==(const ClusterNode&) const = default;
};

// "host:port" or "[v6]:port"; port 1..65535 required.
bool parseHostPort(std::string_view text, ClusterNode& out, std::string& error);

}  // namespace wsrelay
