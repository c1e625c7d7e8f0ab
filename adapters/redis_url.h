#pragma once

#include <string>
#include <string_view>

namespace wsrelay {

// Where and how to reach a standalone Redis: redis://[user:password@]host[:port][/db].
struct RedisUrl {
    std::string host;
    int port = 6379;
    std::string user;      // empty: AUTH with the password only (the default user)
    std::string password;  // empty and no user: no AUTH
    int db = 0;            // SELECT is sent only when it is not 0
};

struct RedisUrlParse {
    RedisUrl url;
    std::string error;  // empty on success; otherwise says what is wrong, never echoes a password
};

// Parses redis://[[user]:password@]host[:port][/db]; user and password are percent-decoded, an
// IPv6 host is written in brackets. rediss:// is refused: this build has no TLS to Redis.
RedisUrlParse parseRedisUrl(std::string_view text);

// host:port/db, for logs: never the credentials.
std::string describeRedisUrl(const RedisUrl& url);

}  // namespace wsrelay
