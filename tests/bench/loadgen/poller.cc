#include "poller.h"

#include <sys/epoll.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>

namespace wsrelay::loadgen {

Poller::Poller() : epfd_(epoll_create1(EPOLL_CLOEXEC)), rx_(256 * 1024) {
    if (epfd_ < 0) {
        std::perror("epoll_create1");
        std::exit(2);
    }
}

Poller::~Poller() { close(epfd_); }

bool Poller::add(int fd, PollTarget* target) {
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    ev.data.ptr = target;
    return epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) == 0;
}

int Poller::poll(int timeout_ms) {
    epoll_event events[256];
    int n = epoll_wait(epfd_, events, 256, timeout_ms);
    if (n < 0) {
        if (errno == EINTR) return 0;
        std::perror("epoll_wait");
        std::exit(2);
    }
    for (int i = 0; i < n; ++i) {
        static_cast<PollTarget*>(events[i].data.ptr)->onEvents(events[i].events);
    }
    return n;
}

}  // namespace wsrelay::loadgen
