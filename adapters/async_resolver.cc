#include "adapters/async_resolver.h"

#include <ev.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>

#include <cstring>
#include <mutex>
#include <unordered_map>
#include <utility>

// How a lookup runs: a name goes to a detached thread of its own that calls getaddrinfo() and
// hands the answer back through a mailbox and an ev_async. Why not the alternatives:
// - getaddrinfo_a() notifies through a signal or a thread glibc creates per notification, and an
//   in-progress request cannot be cancelled (EAI_NOTCANCELED), so its gaicb must outlive us anyway:
//   the same shared-ownership problem, plus libanl and a notification thread we do not control.
// - One long-lived lookup thread per resolver would queue every name behind one stuck in a 30 s
//   DNS timeout, and would have to be joined (stalling shutdown) or detached anyway.
// - c-ares would add a dependency and its own resolver, which bypasses NSS: a name that glibc
//   resolves for every other program in the container (an nsswitch module, say) could fail here.
// A thread per lookup costs tens of microseconds, paid per Redis (re)connect, never per message.
namespace wsrelay {
namespace {

// Lookups running at once per resolver (threads blocked in getaddrinfo), cancelled ones included
// until their thread returns, since their thread is still there. A worker's Redis endpoints are a
// handful of names. Beyond the bound resolve() answers EAI_AGAIN on a later loop turn, as
// getaddrinfo_a() does for a request it has no resources to queue: the caller's reconnect backoff
// retries it, and the bound is never exceeded silently.
constexpr size_t kMaxRunning = 16;

struct Answer {
    uint64_t id = 0;
    int error = 0;
    std::vector<ResolvedAddress> addresses;
};

// What a lookup thread shares with its resolver. A thread may outlive the resolver (it cannot be
// interrupted inside getaddrinfo, and joining it would stall shutdown for the DNS timeout), so it
// owns this by shared_ptr and touches nothing else: once `loop` is null the resolver is gone and
// the answer is dropped.
struct Mailbox {
    std::mutex mutex;
    struct ev_loop* loop = nullptr;
    ev_async* wake = nullptr;
    std::vector<Answer> answers;  // at most kMaxRunning: one per running thread
};

struct Lookup {
    std::shared_ptr<Mailbox> mailbox;
    uint64_t id;
    std::string host;
    uint16_t port;
};

Answer lookUp(uint64_t id, const std::string& host, uint16_t port, int flags) {
    addrinfo hints{};
    // Both families, in the order getaddrinfo sorts them (RFC 6724, /etc/gai.conf); the caller
    // tries them in turn. No AI_ADDRCONFIG: glibc does not count loopback as configured, and Redis
    // beside the relay may be exactly a loopback name.
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_protocol = IPPROTO_TCP;
    hints.ai_flags = AI_NUMERICSERV | flags;
    const std::string service = std::to_string(port);
    addrinfo* list = nullptr;
    Answer answer{id, getaddrinfo(host.c_str(), service.c_str(), &hints, &list), {}};
    if (answer.error != 0) return answer;
    for (const addrinfo* ai = list; ai != nullptr; ai = ai->ai_next) {
        if (ai->ai_addr == nullptr || ai->ai_addrlen > sizeof(sockaddr_storage)) continue;
        ResolvedAddress& out = answer.addresses.emplace_back();
        std::memcpy(&out.addr, ai->ai_addr, ai->ai_addrlen);
        out.len = ai->ai_addrlen;
    }
    freeaddrinfo(list);
    // Keeps the contract "error 0 means at least one address" even if a library broke it.
    if (answer.addresses.empty()) answer.error = EAI_NONAME;
    return answer;
}

void* runLookup(void* arg) {
    // Declared before the lock: released after it, so the last owner frees the mailbox unlocked.
    std::unique_ptr<Lookup> lookup(static_cast<Lookup*>(arg));
    Answer answer = lookUp(lookup->id, lookup->host, lookup->port, 0);
    Mailbox& box = *lookup->mailbox;
    std::lock_guard lock(box.mutex);
    if (box.loop == nullptr) return nullptr;  // the resolver is gone; nobody is waiting
    box.answers.push_back(std::move(answer));
    // Under the lock: the resolver's destructor takes it before the watcher is stopped and freed.
    ev_async_send(box.loop, box.wake);
    return nullptr;
}

}  // namespace

struct AsyncResolver::Impl {
    struct ev_loop* loop;
    ev_async wake{};
    std::shared_ptr<Mailbox> mailbox = std::make_shared<Mailbox>();
    // Lookups whose `done` is still owed. The functions stay on the loop's thread: a lookup thread
    // never holds one, so the caller's captures are created, called and destroyed on one thread.
    std::unordered_map<uint64_t, Done> pending;
    // Answers made on the loop's thread (numeric hosts, refusals), delivered on the next turn. It
    // holds at most what the owner asked for during one turn, and is emptied on the next.
    std::vector<Answer> ready;
    size_t running = 0;  // lookup threads whose answer has not been collected yet
    uint64_t next_id = 1;
    // Points at a flag on onWake's stack while answers are delivered: a `done` may destroy the
    // resolver, and delivery must then stop without touching it.
    bool* destroyed = nullptr;

    explicit Impl(struct ev_loop* l) : loop(l) {
        ev_async_init(&wake, onWake);
        wake.data = this;
        mailbox->loop = loop;
        mailbox->wake = &wake;
        mailbox->answers.reserve(kMaxRunning);
    }

    // The watcher is active only while something is owed, so an idle resolver does not keep
    // ev_run() from returning, and a lookup in flight does (as a pending timer would).
    void arm() {
        if (!ev_is_active(&wake)) ev_async_start(loop, &wake);
    }

    void answerLater(Answer answer) {
        ready.push_back(std::move(answer));
        arm();
        ev_async_send(loop, &wake);  // from the loop's own thread: runs on its next turn
    }

    bool startThread(uint64_t id, const std::string& host, uint16_t port) {
        // Armed before the thread exists: ev_async_start() clears a pending send, so arming after
        // a fast thread had already sent would lose its answer.
        arm();
        auto lookup = std::make_unique<Lookup>(Lookup{mailbox, id, host, port});
        pthread_attr_t attr;
        if (pthread_attr_init(&attr) != 0) return false;
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        // The thread starts with every signal blocked: the process takes SIGTERM/SIGINT with
        // sigwait() on the main thread, and a lookup thread must never be the one to receive them.
        sigset_t all;
        sigset_t previous;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &previous);
        pthread_t thread;
        const int rc = pthread_create(&thread, &attr, runLookup, lookup.get());
        pthread_sigmask(SIG_SETMASK, &previous, nullptr);
        pthread_attr_destroy(&attr);
        if (rc != 0) return false;
        lookup.release();  // the thread owns it now
        ++running;
        return true;
    }

    static void onWake(struct ev_loop* loop, ev_async* w, int revents);
};

void AsyncResolver::Impl::onWake(struct ev_loop*, ev_async* w, int) {
    auto* self = static_cast<Impl*>(w->data);
    std::vector<Answer> batch;
    batch.swap(self->ready);
    {
        std::lock_guard lock(self->mailbox->mutex);
        self->running -= self->mailbox->answers.size();
        for (Answer& a : self->mailbox->answers) batch.push_back(std::move(a));
        self->mailbox->answers.clear();
    }
    bool destroyed = false;
    self->destroyed = &destroyed;
    for (Answer& answer : batch) {
        // Looked up at delivery, not before: an earlier `done` in this batch may cancel this one.
        auto it = self->pending.find(answer.id);
        if (it == self->pending.end()) continue;  // cancelled
        Done done = std::move(it->second);
        self->pending.erase(it);
        done(answer.error, std::move(answer.addresses));
        if (destroyed) return;
    }
    self->destroyed = nullptr;
    // Nothing can send while nothing is running or ready, so stopping here loses no answer.
    if (self->running == 0 && self->ready.empty()) ev_async_stop(self->loop, w);
}

AsyncResolver::AsyncResolver(struct ev_loop* loop) : impl_(std::make_unique<Impl>(loop)) {}

AsyncResolver::~AsyncResolver() {
    if (impl_->destroyed != nullptr) *impl_->destroyed = true;
    {
        // After this, a lookup thread still in getaddrinfo finds the mailbox closed and drops its
        // answer: it never reaches the loop or this object again.
        std::lock_guard lock(impl_->mailbox->mutex);
        impl_->mailbox->loop = nullptr;
        impl_->mailbox->wake = nullptr;
        impl_->mailbox->answers.clear();
    }
    ev_async_stop(impl_->loop, &impl_->wake);
}

uint64_t AsyncResolver::resolve(const std::string& host, uint16_t port, Done done) {
    Impl& im = *impl_;
    const uint64_t id = im.next_id++;  // never 0, so a caller may use 0 for "no lookup"
    im.pending.emplace(id, std::move(done));
    // getaddrinfo would take an empty name as "this host"; no caller means that.
    if (host.empty()) {
        im.answerLater(Answer{id, EAI_NONAME, {}});
        return id;
    }
    // A literal is parsed here, without NSS or DNS (AI_NUMERICHOST never blocks), and takes no
    // thread: it is not held back by the bound or by slow lookups. EAI_NONAME means "not a
    // literal"; any other answer is final.
    Answer literal = lookUp(id, host, port, AI_NUMERICHOST);
    if (literal.error != EAI_NONAME) {
        im.answerLater(std::move(literal));
        return id;
    }
    if (im.running >= kMaxRunning || !im.startThread(id, host, port)) {
        im.answerLater(Answer{id, EAI_AGAIN, {}});
    }
    return id;
}

void AsyncResolver::cancel(uint64_t id) {
    // Only the `done` goes (and its captures with it, now): a thread cannot be stopped inside
    // getaddrinfo, so it keeps its slot until its answer comes back and is dropped.
    auto it = impl_->pending.find(id);
    if (it == impl_->pending.end()) return;
    // Destroyed after the erase: captures whose destructor calls back in find the map whole.
    Done dropped = std::move(it->second);
    impl_->pending.erase(it);
}

}  // namespace wsrelay
