#pragma once

#include <sys/socket.h>

#include <string>

namespace wsrelay {

// Opens a non-blocking TCP listening socket with SO_REUSEADDR|SO_REUSEPORT, so every worker binds
// its own socket on the same port and the kernel spreads accepts between them (Debian's lws 4.1.6
// never sets SO_REUSEPORT itself: LWS_MAX_SMP=1), and TCP_NODELAY, which accepted sockets inherit
// (lws sets NODELAY only on sockets it accepted itself; without it Nagle and delayed ACKs add
// ~15 ms per round trip). Returns the fd, or -1 with `error` set.
int openReusePortListener(const std::string& host, int port, int backlog, std::string& error);

// Accepts one pending connection: non-blocking, close-on-exec, TCP_NODELAY from the listener;
// its address goes to `peer`. `send_buffer_bytes` > 0 sets SO_SNDBUF
// (limits.socket_send_buffer_bytes). Returns -1 when nothing is pending or the accept failed.
int acceptOne(int listen_fd, int send_buffer_bytes, sockaddr_storage& peer);

}  // namespace wsrelay
