#include "relay/tls/cert_store.h"

#include <ctime>
#include <stdexcept>

#include "metrics/relay_metrics.h"
#include "relay/common/log.h"

namespace wsrelay::tls {
namespace {

std::string utcTime(int64_t unix_seconds) {
    const auto t = static_cast<time_t>(unix_seconds);
    tm parts{};
    gmtime_r(&t, &parts);
    char text[32];
    strftime(text, sizeof text, "%Y-%m-%d %H:%M:%S UTC", &parts);
    return text;
}

}  // namespace

CertStore::CertStore(Options options, metrics::WorkerMetrics& metrics)
    : options_(std::move(options)), metrics_(metrics) {
    std::lock_guard lock(mu_);
    std::string error;
    if (!load(error)) throw std::runtime_error(error);
    last_look_ = std::chrono::steady_clock::now();
}

std::shared_ptr<SSL_CTX> CertStore::context(uint64_t& generation) const {
    std::lock_guard lock(mu_);
    generation = generation_.load(std::memory_order_relaxed);
    return context_;
}

void CertStore::poll() {
    if (options_.reload_interval.count() <= 0) return;
    // A worker that finds another one looking has nothing to add.
    std::unique_lock lock(mu_, std::try_to_lock);
    if (!lock.owns_lock()) return;
    const auto now = std::chrono::steady_clock::now();
    // Every worker calls at about the interval: the first of them looks, the rest find it done.
    if (now - last_look_ < options_.reload_interval * 9 / 10) return;
    last_look_ = now;
    const FileStamp cert = stampOf(options_.cert_file);
    const FileStamp key = stampOf(options_.key_file);
    if (!failing_ && cert == cert_stamp_ && key == key_stamp_) return;
    std::string error;
    if (load(error)) {
        metrics_.tls_cert_reloads[metrics::FetchResult::Ok].add();
        return;
    }
    metrics_.tls_cert_reloads[metrics::FetchResult::Error].add();
    // Once per distinct failure: a Secret left broken is retried every interval.
    if (!failing_ || error != last_error_) {
        WSR_LOG(Warn,
                "tls: the certificate files changed but were not loaded (%s); still serving the "
                "previous certificate, trying again every %lld ms",
                error.c_str(), static_cast<long long>(options_.reload_interval.count()));
    }
    failing_ = true;
    last_error_ = std::move(error);
}

bool CertStore::load(std::string& error) {
    // Stamped before reading: a write that lands while we read changes the stamp again, so it is
    // looked at next time rather than taken for the version we loaded.
    const FileStamp cert_stamp = stampOf(options_.cert_file);
    const FileStamp key_stamp = stampOf(options_.key_file);
    std::unique_ptr<Credentials> credentials =
        loadCredentials(options_.cert_file, options_.key_file, error);
    if (!credentials) return false;
    SslCtxPtr ctx = makeServerContext(*credentials, options_.context, error);
    if (!ctx) return false;
    context_ = std::shared_ptr<SSL_CTX>(ctx.release(), SslCtxFree{});
    generation_.fetch_add(1, std::memory_order_release);
    cert_stamp_ = cert_stamp;
    key_stamp_ = key_stamp;
    failing_ = false;
    last_error_.clear();
    metrics_.tls_cert_expiry.set(credentials->not_after);
    const int64_t left = credentials->not_after - static_cast<int64_t>(time(nullptr));
    WSR_LOG(Info, "tls: serving %s (serial %s), valid until %s", credentials->subject.c_str(),
            credentials->serial.c_str(), utcTime(credentials->not_after).c_str());
    if (left <= 0) {
        WSR_LOG(Warn, "tls: the certificate in %s has EXPIRED: clients will refuse it",
                options_.cert_file.c_str());
    }
    return true;
}

}  // namespace wsrelay::tls
