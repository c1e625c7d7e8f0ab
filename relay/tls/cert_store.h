#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "relay/tls/credentials.h"

namespace wsrelay::metrics {
struct WorkerMetrics;
}

namespace wsrelay::tls {

// The process's TLS server context and its reload when tls.cert_file or tls.key_file change
// (Kubernetes rotates a Secret by swapping a symlink; tools that write the files in place exist
// too). One per process. poll() is called from every worker's loop; the first call after each
// interval looks at the files, so they are stat()ed once per interval, not once per worker.
//
// A change is loaded only whole: both files read and parsed, the key checked against the
// certificate, a new context built. Anything less (a file missing, cut short, a key of another
// certificate) keeps the current context, is counted and logged, and is tried again at every
// interval until it loads. The context is immutable once published: workers make connections
// from it on their own threads; a connection keeps the context it was made from, so connections
// open before a reload keep their certificate and new ones get the new one.
class CertStore {
public:
    struct Options {
        std::string cert_file;
        std::string key_file;
        ContextOptions context;
        std::chrono::milliseconds reload_interval{0};  // 0 = never look again
    };

    // Loads the files and builds the first context; throws std::runtime_error naming the key
    // (startup only). `metrics` (the registry's control() series) gets the reload counts and the
    // certificate's expiry; only this store writes those series, always under its lock.
    CertStore(Options options, metrics::WorkerMetrics& metrics);
    CertStore(const CertStore&) = delete;
    CertStore& operator=(const CertStore&) = delete;

    // Any thread. Looks at the files when the last look is at least an interval old, and loads
    // them when they changed since the context was built (or since a failed attempt).
    void poll();
    // Any thread, lock-free: changes with each context published.
    uint64_t generation() const { return generation_.load(std::memory_order_acquire); }
    // Any thread: the current context and its generation.
    std::shared_ptr<SSL_CTX> context(uint64_t& generation) const;
    std::chrono::milliseconds reloadInterval() const { return options_.reload_interval; }

private:
    // With mu_ held: loads both files; true when a new context was published.
    bool load(std::string& error);

    const Options options_;
    metrics::WorkerMetrics& metrics_;
    mutable std::mutex mu_;
    std::shared_ptr<SSL_CTX> context_;
    std::atomic<uint64_t> generation_{0};
    FileStamp cert_stamp_;  // what the current context was built from
    FileStamp key_stamp_;
    bool failing_ = false;  // the last attempt failed: try again at the next look
    std::string last_error_;
    std::chrono::steady_clock::time_point last_look_{};
};

}  // namespace wsrelay::tls
