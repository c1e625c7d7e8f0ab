#pragma once

#include <curl/curl.h>
#include <ev.h>

#include <memory>
#include <string>
#include <unordered_set>

#include "adapters/hook.h"

namespace wsrelay {

struct HttpHookOptions {
    std::string url;
    std::string ca_file;          // CAs for an https:// url; empty = libcurl's default
    int timeout_ms = 5000;        // each attempt, connect included
    size_t max_in_flight = 1024;  // this worker's share of hook.max_in_flight
    int max_connections = 16;     // kept-alive connections to the app
    int retries = 1;              // extra attempts, for idempotent events only
    std::string secret;           // signs each request (X-Wsrelay-Signature); empty = unsigned
};

// Hook over HTTP: libcurl's multi interface driven by the worker's libev loop (curl tells us which
// sockets and timeout to watch; no thread, no blocking). Connections are kept alive and reused.
class HttpHook final : public Hook {
public:
    HttpHook(struct ev_loop* loop, HttpHookOptions options);
    ~HttpHook() override;  // abandons requests under way without calling their `done`
    HttpHook(const HttpHook&) = delete;
    HttpHook& operator=(const HttpHook&) = delete;

    bool send(HookEvent event, std::string body, HookDone done) override;
    size_t inFlight() const override { return requests_.size(); }

private:
    struct Request;
    struct Watch;
    static int onSocket(CURL* easy, curl_socket_t fd, int what, void* self, void* watch);
    static int onTimerChange(CURLM* multi, long timeout_ms, void* self);
    static void onIo(struct ev_loop* loop, ev_io* w, int revents);
    static void onTimer(struct ev_loop* loop, ev_timer* w, int revents);
    static size_t onBody(char* data, size_t size, size_t count, void* request);
    void drive(curl_socket_t fd, int events);
    void collect();
    bool start(Request& r);
    void finish(Request* r, HookResult result);

    struct ev_loop* loop_;
    HttpHookOptions options_;
    CURLM* multi_ = nullptr;
    ev_timer timer_{};
    std::unordered_set<Request*> requests_;
};

// X-Wsrelay-Signature for `body` at Unix time `t`: "t=<t>,v1=<hex HMAC-SHA256(secret, t.body)>".
std::string hookSignature(const std::string& secret, long long t, const std::string& body);

}  // namespace wsrelay
