#include "adapters/jwks_fetcher.h"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <memory>
#include <system_error>

#include "adapters/jwks_file_url.h"

namespace wsrelay::jwt {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// A JWK Set is a few KiB; the cap keeps a misbehaving endpoint from filling memory.
constexpr size_t kMaxBodyBytes = size_t{1} << 20;
constexpr long kMaxRedirects = 3;
constexpr milliseconds kFirstRetry{1000};

enum class Scheme { File, Http, Unsupported };

bool startsWithNoCase(std::string_view text, std::string_view prefix) {
    return text.size() >= prefix.size() &&
           std::equal(prefix.begin(), prefix.end(), text.begin(), [](char a, char b) {
               return a == std::tolower(static_cast<unsigned char>(b));
           });
}

Scheme schemeOf(std::string_view url) {
    if (startsWithNoCase(url, "file://")) return Scheme::File;
    if (startsWithNoCase(url, "http://") || startsWithNoCase(url, "https://")) return Scheme::Http;
    return Scheme::Unsupported;
}

// libcurl_global_init is not safe to race with other libcurl users starting up; once per process.
void initCurlOnce() {
    static std::once_flag once;
    std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct Transfer {
    std::string body;
    bool too_big = false;
    std::mutex* mu = nullptr;
    const bool* stop = nullptr;
};

size_t onBody(char* data, size_t size, size_t count, void* user) {
    auto* t = static_cast<Transfer*>(user);
    const size_t n = size * count;
    if (t->body.size() + n > kMaxBodyBytes) {
        t->too_big = true;
        return 0;  // aborts the transfer
    }
    t->body.append(data, n);
    return n;
}

// Called by libcurl about once a second even while stalled: lets the destructor cut a fetch short.
int onProgress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
    auto* t = static_cast<Transfer*>(user);
    std::lock_guard<std::mutex> lock(*t->mu);
    return *t->stop ? 1 : 0;
}

struct CurlCloser {
    void operator()(CURL* curl) const { curl_easy_cleanup(curl); }
};

// `ca_file`: the CAs an https:// server's certificate must chain to; empty = libcurl's default.
bool fetchHttp(const std::string& url, const std::string& ca_file, int timeout_ms, Transfer& t,
               std::string& error) {
    initCurlOnce();
    std::unique_ptr<CURL, CurlCloser> curl(curl_easy_init());
    if (!curl) {
        error = "curl_easy_init failed";
        return false;
    }
    char curl_error[CURL_ERROR_SIZE] = {0};
    CURL* c = curl.get();
    curl_easy_setopt(c, CURLOPT_URL, url.c_str());
    // Fails closed: without the restriction a redirect could go anywhere libcurl can.
    const char* protocols = jwksFetchProtocols(url);
    if (curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, protocols) != CURLE_OK ||
        curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, protocols) != CURLE_OK) {
        error = "libcurl cannot restrict the protocols of a fetch (7.85 or later is needed)";
        return false;
    }
    if (!ca_file.empty()) curl_easy_setopt(c, CURLOPT_CAINFO, ca_file.c_str());
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, kMaxRedirects);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(std::max(timeout_ms, 1)));
    // Signals would be delivered to whichever thread libcurl's alarm() hits.
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(kMaxBodyBytes));
    curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(c, CURLOPT_USERAGENT, "wsrelay-jwks");
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, onBody);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, onProgress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, &t);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, curl_error);
    const CURLcode rc = curl_easy_perform(c);
    if (t.too_big || rc == CURLE_FILESIZE_EXCEEDED) {
        error = "response body over 1 MiB";
        return false;
    }
    if (rc != CURLE_OK) {
        error = curl_error[0] != '\0' ? curl_error : curl_easy_strerror(rc);
        return false;
    }
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    if (status != 200) {
        error = "HTTP status " + std::to_string(status);
        return false;
    }
    return true;
}

}  // namespace

const char* jwksFetchProtocols(std::string_view url) {
    return startsWithNoCase(url, "https://") ? "https" : "http,https";
}

bool readFile(const std::string& path, std::string& out, std::string& error) {
    out.clear();
    std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(std::fopen(path.c_str(), "rb"),
                                                         std::fclose);
    if (!file) {
        error = "cannot open " + path + ": " + std::generic_category().message(errno);
        return false;
    }
    char buf[16384];
    for (;;) {
        const size_t n = std::fread(buf, 1, sizeof(buf), file.get());
        out.append(buf, n);
        if (out.size() > kMaxBodyBytes) {
            error = path + " is over 1 MiB";
            return false;
        }
        if (n < sizeof(buf)) break;
    }
    if (std::ferror(file.get())) {
        error = "cannot read " + path + ": " + std::generic_category().message(errno);
        return false;
    }
    return true;
}

JwksFetcher::JwksFetcher(JwksOptions options, KeySet static_keys, KeySource& source,
                         JwksEvents events)
    : options_(std::move(options)), static_keys_(std::move(static_keys)), source_(source),
      events_(std::move(events)) {}

JwksFetcher::~JwksFetcher() {
    {
        std::lock_guard<std::mutex> lock(mu_);
        stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
}

bool JwksFetcher::start(std::string& error) {
    if (thread_.joinable()) {
        error = "the JWKS fetcher is already started";
        return false;
    }
    // With nothing static and a JWKS still to come, the source stays empty so that verification
    // answers "signing keys not loaded" rather than failing every token.
    if (!static_keys_.empty() || options_.url.empty()) {
        source_.publish(std::make_shared<const KeySet>(static_keys_));
    }
    if (options_.url.empty()) return true;
    const Scheme scheme = schemeOf(options_.url);
    if (scheme == Scheme::Unsupported) {
        error = "the JWKS URL must start with http://, https:// or file://";
        return false;
    }
    const JwksFetch first = fetchOnce();
    if (!first.ok && scheme == Scheme::File) {
        error = first.error;
        return false;
    }
    if (events_.on_fetch) events_.on_fetch(first);
    thread_ = std::thread([this] { run(); });
    return true;
}

void JwksFetcher::requestRefresh() {
    if (options_.url.empty()) return;
    {
        std::lock_guard<std::mutex> lock(mu_);
        if (refresh_requested_ || stop_) return;
        refresh_requested_ = true;
    }
    cv_.notify_all();
}

JwksFetch JwksFetcher::fetchOnce() {
    JwksFetch result;
    Transfer transfer;
    transfer.mu = &mu_;
    transfer.stop = &stop_;
    if (schemeOf(options_.url) == Scheme::File) {
        std::string path;
        if (!pathOfFileUrl(options_.url, path, result.error) ||
            !readFile(path, transfer.body, result.error)) {
            return result;
        }
    } else if (!fetchHttp(options_.url, options_.ca_file, options_.timeout_ms, transfer,
                          result.error)) {
        return result;
    }
    KeySet jwks;
    if (!jwks.addJwks(transfer.body, result.error, &result.skipped)) {
        result.skipped.clear();
        return result;
    }
    auto keys = std::make_shared<KeySet>();
    keys->addAll(static_keys_);
    keys->addAll(jwks);
    result.keys = keys->keys().size();
    source_.publish(std::move(keys));
    loaded_.store(true);
    result.ok = true;
    return result;
}

void JwksFetcher::run() {
    const milliseconds interval{std::max(options_.refresh_interval_ms, 1000)};
    const milliseconds min_gap{std::max(options_.min_refresh_interval_ms, 0)};
    milliseconds retry = kFirstRetry;
    bool failing = !loaded_.load();
    Clock::time_point last = Clock::now();
    std::unique_lock<std::mutex> lock(mu_);
    while (!stop_) {
        Clock::time_point due = last + (failing ? retry : interval);
        if (refresh_requested_) due = std::min(due, last + min_gap);
        if (Clock::now() < due) {
            cv_.wait_until(lock, due);
            continue;
        }
        refresh_requested_ = false;
        lock.unlock();
        const JwksFetch fetch = fetchOnce();
        lock.lock();
        last = Clock::now();
        if (stop_) break;
        if (fetch.ok) {
            retry = kFirstRetry;
        } else if (failing) {
            retry = std::min(retry * 2, interval);
        }
        failing = !fetch.ok;
        lock.unlock();
        if (events_.on_fetch) events_.on_fetch(fetch);
        lock.lock();
    }
}

}  // namespace wsrelay::jwt
