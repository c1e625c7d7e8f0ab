#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

struct ev_loop;

namespace wsrelay {

struct ResolvedAddress {
    sockaddr_storage addr{};
    socklen_t len = 0;
};

// Resolves host names without blocking the loop it serves: in Kubernetes Redis is a DNS name, and a
// lookup on the worker's loop would stall every client of that worker for as long as DNS takes.
// Used on one loop's thread only.
class AsyncResolver {
public:
    // `error` is 0 or an EAI_* code; `addresses` is empty unless error is 0.
    using Done = std::function<void(int error, std::vector<ResolvedAddress> addresses)>;

    explicit AsyncResolver(struct ev_loop* loop);
    ~AsyncResolver();  // pending lookups are cancelled: their Done is never called
    AsyncResolver(const AsyncResolver&) = delete;
    AsyncResolver& operator=(const AsyncResolver&) = delete;

    // Starts a TCP lookup of host:port. `done` runs later on the loop's thread, never inside
    // resolve(). Numeric addresses are answered without a lookup, still on a later loop turn.
    uint64_t resolve(const std::string& host, uint16_t port, Done done);
    // `done` of that lookup is never called; unknown or finished ids are ignored.
    void cancel(uint64_t id);

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace wsrelay
