#include "socket_util.h"

#include <arpa/inet.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>

namespace wsrelay::loadgen {

bool parseHostPort(std::string_view text, sockaddr_in& out, std::string& error) {
    size_t colon = text.rfind(':');
    std::string host(text.substr(0, colon));
    int port = 80;
    if (colon != std::string_view::npos) {
        std::string_view p = text.substr(colon + 1);
        auto [ptr, ec] = std::from_chars(p.data(), p.data() + p.size(), port);
        if (ec != std::errc() || ptr != p.data() + p.size() || port <= 0 || port > 65535) {
            error = "bad port in " + std::string(text);
            return false;
        }
    }
    out = {};
    out.sin_family = AF_INET;
    out.sin_port = htons(uint16_t(port));
    if (inet_pton(AF_INET, host.c_str(), &out.sin_addr) != 1) {
        error = "the host must be an IPv4 literal: " + std::string(text);
        return false;
    }
    return true;
}

bool parseUrl(std::string_view url, std::string_view scheme, sockaddr_in& addr,
              std::string& authority, std::string& path, std::string& error) {
    const std::string prefix = std::string(scheme) + "://";
    if (url.substr(0, prefix.size()) != prefix) {
        error = "only " + prefix + " URLs are supported: " + std::string(url);
        return false;
    }
    std::string_view rest = url.substr(prefix.size());
    size_t slash = rest.find('/');
    authority = std::string(rest.substr(0, slash));
    path = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
    if (!parseHostPort(authority, addr, error)) {
        error += " (" + std::string(url) + ")";
        return false;
    }
    return true;
}

int openClientSocket(const sockaddr_in& to, in_addr source, std::string& error) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        error = std::string("socket: ") + std::strerror(errno);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    sockaddr_in src{};
    src.sin_family = AF_INET;
    src.sin_addr = source;
    if (bind(fd, reinterpret_cast<sockaddr*>(&src), sizeof src) != 0) {
        error = std::string("bind: ") + std::strerror(errno);
        ::close(fd);
        return -1;
    }
    if (connect(fd, reinterpret_cast<const sockaddr*>(&to), sizeof to) != 0 &&
        errno != EINPROGRESS) {
        error = std::string("connect: ") + std::strerror(errno);
        ::close(fd);
        return -1;
    }
    return fd;
}

}  // namespace wsrelay::loadgen
