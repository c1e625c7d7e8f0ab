#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "adapters/jwt_key_set.h"
#include "adapters/jwt_verifier.h"

// Keeps a KeySource filled: the static keys (auth.jwt.secret, auth.jwt.public_key_file) plus the
// last good JWK Set from auth.jwt.jwks_url (http://, https:// or file://). Fetches run on a thread
// of their own (blocking libcurl with timeouts): never on a worker loop.
namespace wsrelay::jwt {

struct JwksOptions {
    std::string url;                   // empty = static keys only, no thread
    std::string ca_file;               // CAs for an https:// url; empty = libcurl's default
    int refresh_interval_ms = 300000;  // periodic refresh
    int min_refresh_interval_ms =
        5000;               // least time between two refreshes asked for by an unknown kid
    int timeout_ms = 5000;  // one HTTP fetch, connect included
};

// What one fetch came to.
struct JwksFetch {
    bool ok = false;
    size_t keys = 0;                   // ok: keys now published (static keys + the JWK Set)
    std::string error;                 // not ok: why, one line
    std::vector<std::string> skipped;  // ok: one line per JWK left out (KeySet::addJwks)
};

// Outcome of each fetch, for metrics, logs and readiness: called from start() for the first fetch,
// then on the fetcher thread, never two at once.
struct JwksEvents {
    std::function<void(const JwksFetch&)> on_fetch;
};

class JwksFetcher {
public:
    JwksFetcher(JwksOptions options, KeySet static_keys, KeySource& source, JwksEvents events);
    ~JwksFetcher();  // stops the thread
    JwksFetcher(const JwksFetcher&) = delete;
    JwksFetcher& operator=(const JwksFetcher&) = delete;

    // Publishes the static keys, then fetches the JWKS once, synchronously. A file:// JWKS that
    // cannot be read or parsed is a startup error (false, `error` set); an http(s) one that fails
    // is retried in the background (true; source stays without JWKS keys meanwhile, and
    // jwksLoaded() is false). Starts the refresh thread when a URL is set.
    bool start(std::string& error);
    // Any thread.
    bool jwksLoaded() const { return loaded_.load(); }
    void requestRefresh();

private:
    void run();
    JwksFetch fetchOnce();  // fetch + parse + publish

    JwksOptions options_;
    KeySet static_keys_;
    KeySource& source_;
    JwksEvents events_;
    std::atomic<bool> loaded_{false};
    std::mutex mu_;
    std::condition_variable cv_;
    bool refresh_requested_ = false;
    bool stop_ = false;
    std::thread thread_;
};

// The protocols a fetch of the http(s) `url` may use, redirects included, in the form of
// CURLOPT_PROTOCOLS_STR and CURLOPT_REDIR_PROTOCOLS_STR: "https" for an https:// URL, since a
// redirect to http:// would let anyone on the path serve their own keys; "http,https" for an
// http:// URL, which trusts the path already.
const char* jwksFetchProtocols(std::string_view url);

// Reads a whole file; false with `error` set when it cannot.
bool readFile(const std::string& path, std::string& out, std::string& error);

}  // namespace wsrelay::jwt
