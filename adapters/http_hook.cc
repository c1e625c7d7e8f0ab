#include "adapters/http_hook.h"

#include <openssl/evp.h>

#include <cstdio>
#include <ctime>
#include <mutex>
#include <vector>

namespace wsrelay {
namespace {

// The app's answer is commands for one connection: anything near this is a bug on its side.
constexpr size_t kMaxAnswerBytes = 1 << 20;

void initCurlOnce() {
    static std::once_flag once;
    std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

bool idempotent(HookEvent event) { return event != HookEvent::Message; }

}  // namespace

std::string hookSignature(const std::string& secret, long long t, const std::string& body) {
    const std::string stamp = std::to_string(t);
    std::string signed_text;
    signed_text.reserve(stamp.size() + 1 + body.size());
    signed_text.append(stamp).append(".").append(body);
    unsigned char mac[EVP_MAX_MD_SIZE];
    size_t mac_len = 0;
    if (EVP_Q_mac(nullptr, "HMAC", nullptr, "SHA256", nullptr, secret.data(), secret.size(),
                  reinterpret_cast<const unsigned char*>(signed_text.data()), signed_text.size(),
                  mac, sizeof mac, &mac_len) == nullptr) {
        return {};
    }
    std::string out = "t=" + stamp + ",v1=";
    static constexpr char kHex[] = "0123456789abcdef";
    for (size_t i = 0; i < mac_len; ++i) {
        out += kHex[mac[i] >> 4];
        out += kHex[mac[i] & 0x0f];
    }
    return out;
}

struct HttpHook::Request {
    HttpHook* owner = nullptr;
    CURL* easy = nullptr;
    curl_slist* headers = nullptr;
    HookEvent event = HookEvent::Message;
    std::string body;
    HookDone done;
    int attempts_left = 0;
    ev_tstamp started = 0;
    std::string answer;
    bool too_large = false;
    char error[CURL_ERROR_SIZE] = {};

    ~Request() {
        if (easy != nullptr) curl_easy_cleanup(easy);
        curl_slist_free_all(headers);
    }
};

// One per socket curl asks us to watch (curl_multi_assign keeps it with the socket).
struct HttpHook::Watch {
    ev_io io{};
    HttpHook* owner = nullptr;
};

HttpHook::HttpHook(struct ev_loop* loop, HttpHookOptions options)
    : loop_(loop), options_(std::move(options)) {
    initCurlOnce();
    multi_ = curl_multi_init();
    curl_multi_setopt(multi_, CURLMOPT_SOCKETFUNCTION, onSocket);
    curl_multi_setopt(multi_, CURLMOPT_SOCKETDATA, this);
    curl_multi_setopt(multi_, CURLMOPT_TIMERFUNCTION, onTimerChange);
    curl_multi_setopt(multi_, CURLMOPT_TIMERDATA, this);
    curl_multi_setopt(multi_, CURLMOPT_MAX_HOST_CONNECTIONS, long{options_.max_connections});
    curl_multi_setopt(multi_, CURLMOPT_MAXCONNECTS, long{options_.max_connections});
    ev_timer_init(&timer_, onTimer, 0., 0.);
    timer_.data = this;
}

HttpHook::~HttpHook() {
    ev_timer_stop(loop_, &timer_);
    for (Request* r : requests_) {
        curl_multi_remove_handle(multi_, r->easy);
        delete r;
    }
    requests_.clear();
    // Closes the kept-alive connections; curl calls onSocket(REMOVE) for each watched socket.
    curl_multi_cleanup(multi_);
}

bool HttpHook::send(HookEvent event, std::string body, HookDone done) {
    if (requests_.size() >= options_.max_in_flight) return false;
    auto r = std::make_unique<Request>();
    r->owner = this;
    r->event = event;
    r->body = std::move(body);
    r->done = std::move(done);
    r->attempts_left = 1 + (idempotent(event) ? options_.retries : 0);
    r->started = ev_now(loop_);
    if (!start(*r) && r->easy != nullptr) {
        // Not even a transfer: report it like a transport failure, from the loop as promised.
        curl_easy_cleanup(r->easy);
        r->easy = nullptr;
    }
    Request* raw = r.release();
    requests_.insert(raw);
    if (raw->easy == nullptr) {
        HookResult result;
        result.outcome = HookOutcome::Unavailable;
        // Deferred: the caller must not see `done` inside send().
        ev_timer_stop(loop_, &timer_);
        ev_timer_set(&timer_, 0., 0.);
        ev_timer_start(loop_, &timer_);
    }
    return true;
}

bool HttpHook::start(Request& r) {
    if (r.easy == nullptr) {
        r.easy = curl_easy_init();
        if (r.easy == nullptr) return false;
    } else {
        curl_easy_reset(r.easy);
    }
    curl_slist_free_all(r.headers);
    r.headers = nullptr;
    r.answer.clear();
    r.too_large = false;
    r.error[0] = '\0';
    r.headers = curl_slist_append(r.headers, "Content-Type: application/json");
    r.headers = curl_slist_append(r.headers, "Expect:");
    r.headers = curl_slist_append(
        r.headers, (std::string("X-Wsrelay-Event: ") + hookEventName(r.event)).c_str());
    if (!options_.secret.empty()) {
        const std::string signature =
            hookSignature(options_.secret, static_cast<long long>(std::time(nullptr)), r.body);
        r.headers = curl_slist_append(r.headers, ("X-Wsrelay-Signature: " + signature).c_str());
    }
    CURL* e = r.easy;
    curl_easy_setopt(e, CURLOPT_URL, options_.url.c_str());
    if (!options_.ca_file.empty()) curl_easy_setopt(e, CURLOPT_CAINFO, options_.ca_file.c_str());
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, r.headers);
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, r.body.data());
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(r.body.size()));
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, long{options_.timeout_ms});
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, onBody);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &r);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r.error);
    curl_easy_setopt(e, CURLOPT_PRIVATE, &r);
    return curl_multi_add_handle(multi_, e) == CURLM_OK;
}

size_t HttpHook::onBody(char* data, size_t size, size_t count, void* request) {
    auto* r = static_cast<Request*>(request);
    const size_t n = size * count;
    if (r->answer.size() + n > kMaxAnswerBytes) {
        r->too_large = true;
        return 0;  // aborts the transfer
    }
    r->answer.append(data, n);
    return n;
}

int HttpHook::onSocket(CURL*, curl_socket_t fd, int what, void* self, void* watch) {
    auto* hook = static_cast<HttpHook*>(self);
    auto* w = static_cast<Watch*>(watch);
    if (what == CURL_POLL_REMOVE) {
        if (w != nullptr) {
            ev_io_stop(hook->loop_, &w->io);
            delete w;
        }
        return 0;
    }
    if (w == nullptr) {
        w = new Watch;
        w->owner = hook;
        ev_init(&w->io, onIo);
        w->io.data = w;
        curl_multi_assign(hook->multi_, fd, w);
    }
    const int events =
        ((what & CURL_POLL_IN) ? EV_READ : 0) | ((what & CURL_POLL_OUT) ? EV_WRITE : 0);
    ev_io_stop(hook->loop_, &w->io);
    ev_io_set(&w->io, fd, events);
    ev_io_start(hook->loop_, &w->io);
    return 0;
}

int HttpHook::onTimerChange(CURLM*, long timeout_ms, void* self) {
    auto* hook = static_cast<HttpHook*>(self);
    ev_timer_stop(hook->loop_, &hook->timer_);
    if (timeout_ms >= 0) {
        ev_timer_set(&hook->timer_, static_cast<double>(timeout_ms) / 1000.0, 0.);
        ev_timer_start(hook->loop_, &hook->timer_);
    }
    return 0;
}

void HttpHook::onIo(struct ev_loop*, ev_io* w, int revents) {
    auto* watch = static_cast<Watch*>(w->data);
    const int events =
        ((revents & EV_READ) ? CURL_CSELECT_IN : 0) | ((revents & EV_WRITE) ? CURL_CSELECT_OUT : 0);
    watch->owner->drive(w->fd, events);
}

void HttpHook::onTimer(struct ev_loop*, ev_timer* w, int) {
    static_cast<HttpHook*>(w->data)->drive(CURL_SOCKET_TIMEOUT, 0);
}

void HttpHook::drive(curl_socket_t fd, int events) {
    int running = 0;
    curl_multi_socket_action(multi_, fd, events, &running);
    collect();
}

void HttpHook::collect() {
    // Requests that never got a transfer fail here, on the loop. Collected first: a `done` may
    // send() again, which changes requests_.
    std::vector<Request*> stillborn;
    for (Request* r : requests_) {
        if (r->easy == nullptr) stillborn.push_back(r);
    }
    for (Request* r : stillborn) finish(r, HookResult{HookOutcome::Unavailable, 0, {}, 0});
    int left = 0;
    while (CURLMsg* msg = curl_multi_info_read(multi_, &left)) {
        if (msg->msg != CURLMSG_DONE) continue;
        Request* r = nullptr;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &r);
        const CURLcode code = msg->data.result;
        curl_multi_remove_handle(multi_, r->easy);
        HookResult result;
        if (code == CURLE_OK) {
            curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &result.status);
            result.outcome =
                result.status >= 200 && result.status < 300 ? HookOutcome::Ok : HookOutcome::Error;
            result.body = std::move(r->answer);
        } else if (code == CURLE_OPERATION_TIMEDOUT) {
            result.outcome = HookOutcome::Timeout;
        } else if (r->too_large) {
            result.outcome = HookOutcome::Error;
        } else {
            result.outcome = HookOutcome::Unavailable;
        }
        const bool transient = result.outcome == HookOutcome::Timeout ||
                               result.outcome == HookOutcome::Unavailable ||
                               (result.outcome == HookOutcome::Error && result.status >= 500);
        if (transient && --r->attempts_left > 0 && start(*r)) continue;
        finish(r, std::move(result));
    }
}

void HttpHook::finish(Request* r, HookResult result) {
    requests_.erase(r);
    result.seconds = ev_now(loop_) - r->started;
    HookDone done = std::move(r->done);
    delete r;
    done(std::move(result));
}

}  // namespace wsrelay
