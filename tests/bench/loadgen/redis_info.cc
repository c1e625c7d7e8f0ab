#include "redis_info.h"

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <string_view>

#include "process_info.h"
#include "socket_util.h"

namespace wsrelay::loadgen {
namespace {

// Waits for `events` on fd until deadline_ns; false on timeout or error.
bool waitFor(int fd, short events, uint64_t deadline_ns) {
    for (;;) {
        const uint64_t now = nowNs();
        if (now >= deadline_ns) return false;
        pollfd p{fd, events, 0};
        const int n = ::poll(&p, 1, int((deadline_ns - now) / 1'000'000 + 1));
        if (n > 0) return true;
        if (n < 0 && errno != EINTR) return false;
    }
}

// Parses the lines "cmdstat_NAME:calls=N,usec=..." of the INFO text.
void parseCommandStats(std::string_view text, CommandCalls& out) {
    constexpr std::string_view kPrefix = "cmdstat_";
    constexpr std::string_view kCalls = ":calls=";
    size_t pos = 0;
    while ((pos = text.find(kPrefix, pos)) != std::string_view::npos) {
        const size_t name = pos + kPrefix.size();
        const size_t colon = text.find(kCalls, name);
        if (colon == std::string_view::npos) return;
        uint64_t calls = 0;
        const char* first = text.data() + colon + kCalls.size();
        auto [ptr, ec] = std::from_chars(first, text.data() + text.size(), calls);
        if (ec == std::errc()) out[std::string(text.substr(name, colon - name))] = calls;
        pos = size_t(ptr - text.data());
    }
}

}  // namespace

bool readCommandCalls(const std::string& host_port, CommandCalls& out, std::string& error,
                      int timeout_ms) {
    sockaddr_in addr{};
    if (!parseHostPort(host_port, addr, error)) return false;
    const uint64_t deadline = nowNs() + uint64_t(timeout_ms) * 1'000'000;
    const int fd = openClientSocket(addr, sourceAddress(0, 1), error);
    if (fd < 0) return false;
    auto fail = [&](const std::string& what) {
        error = "redis INFO: " + what;
        ::close(fd);
        return false;
    };
    if (!waitFor(fd, POLLOUT, deadline)) return fail("connect timed out");
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) return fail(std::string("connect: ") + std::strerror(err));
    constexpr std::string_view kCommand = "*2\r\n$4\r\nINFO\r\n$12\r\ncommandstats\r\n";
    if (::send(fd, kCommand.data(), kCommand.size(), MSG_NOSIGNAL) != ssize_t(kCommand.size())) {
        return fail(std::string("send: ") + std::strerror(errno));
    }
    // The answer is one bulk string: $LEN\r\n then LEN bytes and \r\n.
    std::string in;
    size_t body = 0, body_len = 0;
    char buf[16384];
    for (;;) {
        if (body == 0) {
            const size_t eol = in.find("\r\n");
            if (eol != std::string::npos) {
                if (in[0] != '$') return fail("unexpected reply " + in.substr(0, eol));
                auto [ptr, ec] = std::from_chars(in.data() + 1, in.data() + eol, body_len);
                if (ec != std::errc()) return fail("bad bulk length");
                body = eol + 2;
            }
        }
        if (body != 0 && in.size() >= body + body_len) break;
        if (!waitFor(fd, POLLIN, deadline)) return fail("no answer in time");
        const ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n == 0) return fail("connection closed");
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR) continue;
            return fail(std::string("recv: ") + std::strerror(errno));
        }
        in.append(buf, size_t(n));
    }
    ::close(fd);
    out.clear();
    parseCommandStats(std::string_view(in).substr(body, body_len), out);
    return true;
}

CommandCalls callsBetween(const CommandCalls& a, const CommandCalls& b) {
    CommandCalls d;
    for (const auto& [name, calls] : b) {
        auto it = a.find(name);
        const uint64_t before = it == a.end() ? 0 : it->second;
        d[name] = calls >= before ? calls - before : 0;
    }
    return d;
}

}  // namespace wsrelay::loadgen
