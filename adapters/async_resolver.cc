#include "adapters/async_resolver.h"

#include <ev.h>
#include <netdb.h>

#include <cstring>
#include <deque>
#include <utility>

namespace wsrelay {

// This implementation still calls getaddrinfo() on the loop's thread (it blocks for as long as DNS
// takes), but answers on a later loop turn, as the contract says, so callers are already written for
// a lookup that completes asynchronously.
struct AsyncResolver::Impl {
    struct Answer {
        uint64_t id = 0;
        int error = 0;
        std::vector<ResolvedAddress> addresses;
        Done done;
    };

    explicit Impl(struct ev_loop* l) : loop(l) {
        ev_timer_init(&soon, onSoon, 0., 0.);
        soon.data = this;
    }
    ~Impl() { ev_timer_stop(loop, &soon); }

    static void onSoon(struct ev_loop*, ev_timer* w, int) {
        auto* self = static_cast<Impl*>(w->data);
                // Answers queued by the callbacks below wait for the next turn.
        std::deque<Answer> ready;
        ready.swap(self->answers);
        bool alive = true;
        self->alive = &alive;
        while (!ready.empty()) {
            Answer answer = std::move(ready.front());
            ready.pop_front();
            if (!answer.done) continue;  // cancelled
            answer.done(answer.error, std::move(answer.addresses));
            if (!alive) return;  // the resolver was destroyed by the callback
            // cancel() from a callback may name an answer taken into `ready`.
            for (uint64_t id : self->cancelled) {
                for (Answer& a : ready) {
                    if (a.id == id) a.done = nullptr;
                }
            }
            self->cancelled.clear();
        }
        self->alive = nullptr;
    }

    struct ev_loop* loop;
    ev_timer soon{};  // a zero timer: fires on the next loop turn
    std::deque<Answer> answers;
    std::vector<uint64_t> cancelled;  // while onSoon runs
    uint64_t next_id = 0;
    bool* alive = nullptr;
};

AsyncResolver::AsyncResolver(struct ev_loop* loop) : impl_(std::make_unique<Impl>(loop)) {}

AsyncResolver::~AsyncResolver() {
    if (impl_->alive != nullptr) *impl_->alive = false;
}

uint64_t AsyncResolver::resolve(const std::string& host, uint16_t port, Done done) {
    Impl::Answer answer;
    answer.id = ++impl_->next_id;
    answer.done = std::move(done);
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_protocol = IPPROTO_TCP;
    hints.ai_flags = AI_ADDRCONFIG;
    addrinfo* found = nullptr;
    const std::string service = std::to_string(port);
    answer.error = getaddrinfo(host.c_str(), service.c_str(), &hints, &found);
    if (answer.error == 0) {
        for (const addrinfo* ai = found; ai != nullptr; ai = ai->ai_next) {
            if (ai->ai_addrlen > sizeof(sockaddr_storage)) continue;
            ResolvedAddress a;
            std::memcpy(&a.addr, ai->ai_addr, ai->ai_addrlen);
            a.len = ai->ai_addrlen;
            answer.addresses.push_back(a);
        }
        freeaddrinfo(found);
        if (answer.addresses.empty()) answer.error = EAI_NONAME;
    }
    const uint64_t id = answer.id;
    impl_->answers.push_back(std::move(answer));
    if (!ev_is_active(&impl_->soon)) ev_timer_start(impl_->loop, &impl_->soon);
    return id;
}

void AsyncResolver::cancel(uint64_t id) {
    for (Impl::Answer& a : impl_->answers) {
        if (a.id == id) a.done = nullptr;
    }
    if (impl_->alive != nullptr) impl_->cancelled.push_back(id);
}

}  // namespace wsrelay
