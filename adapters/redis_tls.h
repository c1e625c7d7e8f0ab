#pragma once

#include <memory>
#include <string>

#include "adapters/redis_connection.h"

typedef struct ssl_ctx_st SSL_CTX;

namespace wsrelay {

// broker.redis.tls.*: how the relay speaks TLS to Redis (a rediss:// URL; Sentinels with
// broker.redis.sentinel.tls).
struct RedisTlsOptions {
    std::string ca_file;    // CAs the server's certificate must chain to; empty = the system's
    std::string cert_file;  // with key_file: the client certificate (tls-auth-clients)
    std::string key_file;
    std::string server_name;  // the name sent (SNI) and verified; empty = the host connected to
};

// The relay's TLS client setup for Redis: one OpenSSL SSL_CTX, built at startup from the options
// and never changed afterwards, shared by every worker. After setup an SSL_CTX is only read, by
// SSL_new (openssl-threads(7): a "factory" object may be used from many threads as long as
// nobody modifies it); its session cache is off, so no connection writes to it. Each connection
// gets its own SSL object, used on its worker's thread only.
class RedisTls {
public:
    // Loads the files; a file that does not load throws std::runtime_error naming its key. Sets
    // SIGPIPE to be ignored, process-wide (OpenSSL's writes would raise it).
    explicit RedisTls(RedisTlsOptions options);
    ~RedisTls();
    RedisTls(const RedisTls&) = delete;
    RedisTls& operator=(const RedisTls&) = delete;

    // The transport of one connection to `host` (a name or an IP literal): TLS over the connected,
    // non-blocking socket `fd`, which it owns from then on. The server's certificate must chain to
    // the CAs and name server_name, else `host` (an IP literal is matched against IP addresses in
    // the certificate, and sent as no SNI). Null, with `error`, when OpenSSL cannot set it up
    // (then `fd` stays the caller's).
    std::unique_ptr<RedisTransport> wrap(int fd, const std::string& host, std::string& error) const;

    // A blocking check at startup, so a certificate that does not verify stops the relay with a
    // message naming the key to fix instead of a broker that never comes up: connects to
    // host:port, completes the handshake and reads the answer to a PING (a server that refuses the
    // client certificate says so only then, in TLS 1.3). Returns "" when TLS works or the server
    // cannot be reached at all (Redis may start after the relay); else why TLS failed.
    std::string check(const std::string& host, int port, double timeout_s) const;

    const RedisTlsOptions& options() const { return options_; }

    // Why TLS failed, in words an operator can act on: the OpenSSL reason and which key to look
    // at. `verify_result` is SSL_get_verify_result(), `ssl_error` the first queued OpenSSL error,
    // `name` what the certificate was checked against.
    std::string explain(long verify_result, unsigned long ssl_error, const std::string& name) const;

    // What an end of stream right after the handshake (nothing received yet) may mean; `how` is
    // "closed" or the errno's text.
    std::string closedAfterHandshake(const std::string& how) const;

private:
    const RedisTlsOptions options_;
    SSL_CTX* ctx_ = nullptr;
};

}  // namespace wsrelay
