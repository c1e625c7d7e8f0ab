#include "relay/edge/server.h"

#include <signal.h>
#include <sys/resource.h>
#include <time.h>

#include <algorithm>
#include <future>
#include <stdexcept>

#include "adapters/memory_broker.h"
#include "adapters/redis_broker.h"
#include "adapters/redis_tls.h"
#include "adapters/redis_url.h"
#include "conf/redis_functions_needed.h"
#include "relay/common/log.h"
#include "relay/edge/cpu_budget.h"
#include "relay/edge/memory_limit.h"
#include "relay/edge/worker.h"
#include "relay/fleet/fleet_id.h"
#include "relay/tls/cert_store.h"

namespace wsrelay {
namespace {

// Descriptors kept back from connections for listeners, logs and the spare fd, and per worker
// for its loop, its broker connections and its hook connections (hook.max_connections more).
constexpr rlim_t kReservedFds = 64;
constexpr rlim_t kReservedFdsPerWorker = 8;
// limits.max_connections: 0 means what the open-file limit allows, up to this.
constexpr rlim_t kDefaultMaxConnections = 65536;

// TLS to Redis: one context for every worker. A certificate that does not verify (the wrong CA, a
// name mismatch, a refused client certificate) is a configuration error, so it stops startup, with
// the reason and the key to fix; a Redis that cannot be reached yet does not (the broker retries).
void setUpRedisTls(const Config::Broker::Redis& redis, RedisBrokerOptions& options) {
    const bool sentinel_tls = redis.sentinel.tls && !options.sentinel_master.empty();
    if (!options.url.tls && !sentinel_tls) return;
    auto tls = std::make_shared<const RedisTls>(RedisTlsOptions{
        redis.tls.ca_file, redis.tls.cert_file, redis.tls.key_file, redis.tls.server_name});
    if (options.url.tls) options.tls = tls;
    if (sentinel_tls) options.sentinel_tls = tls;
    ClusterNode first;  // the first node the brokers will connect to, when it speaks TLS
    if (!options.cluster.empty()) {
        first = options.tls ? options.cluster.front() : ClusterNode{};
    } else if (!options.sentinel_master.empty()) {
        first = sentinel_tls ? options.sentinels.front() : ClusterNode{};
    } else {
        first = ClusterNode{options.url.host, options.url.port};
    }
    if (first.host.empty()) return;
    const std::string error = tls->check(first.host, first.port, options.probe_timeout_ms / 1000.0);
    if (!error.empty()) throw std::runtime_error("TLS to Redis at " + first.name() + ": " + error);
}

// The loader has checked every rule that decides whether these keys make sense together
// (conf/config_schema.cc, configRules()), with the same parsers: what is left here is building.
std::unique_ptr<BrokerFactory> makeBrokers(const Config& config, int workers) {
    switch (config.broker.type) {
        case BrokerType::Memory: return std::make_unique<MemoryBrokerFactory>(workers);
        case BrokerType::Redis: {
            const Config::Broker::Redis& redis = config.broker.redis;
            // Fails only for a Config that did not come through the loader.
            auto unchecked = [](const std::string& key, const std::string& error) {
                return std::runtime_error(key + ": " + error +
                                          " (the configuration was not loaded "
                                          "through conf/)");
            };
            RedisUrlParse parsed = parseRedisUrl(redis.url);
            if (!parsed.error.empty()) throw unchecked("broker.redis.url", parsed.error);
            RedisBrokerOptions options;
            options.url = std::move(parsed.url);
            auto addresses = [&unchecked](const std::vector<std::string>& texts, const char* key) {
                std::vector<ClusterNode> out;
                for (const std::string& text : texts) {
                    ClusterNode node;
                    std::string error;
                    if (!parseHostPort(text, node, error)) throw unchecked(key, error);
                    out.push_back(std::move(node));
                }
                return out;
            };
            options.cluster = addresses(redis.cluster, "broker.redis.cluster");
            options.sentinel_master = redis.sentinel.master;
            options.sentinels = addresses(redis.sentinel.addrs, "broker.redis.sentinel.addrs");
            options.sentinel_user = redis.sentinel.user;
            options.sentinel_password = redis.sentinel.password;
            options.prefix = redis.prefix;
            options.functions = needsRedisFunctions(config);
            options.reconnect_min_ms = redis.reconnect_min_ms;
            options.reconnect_max_ms = redis.reconnect_max_ms;
            options.probe_interval_ms = redis.probe_interval_ms;
            options.probe_timeout_ms = redis.probe_timeout_ms;
            options.timestamps = redis.timestamps;
            options.cluster_refresh_ms = redis.cluster_refresh_ms;
            setUpRedisTls(redis, options);
            if (!options.cluster.empty()) {
                WSR_LOG(Info, "broker: redis cluster, %zu seed(s), first %s",
                        options.cluster.size(), options.cluster.front().name().c_str());
            } else if (!options.sentinel_master.empty()) {
                WSR_LOG(Info, "broker: redis master '%s' from %zu sentinel(s)",
                        options.sentinel_master.c_str(), options.sentinels.size());
            } else {
                WSR_LOG(Info, "broker: redis at %s%s", describeRedisUrl(options.url).c_str(),
                        options.url.tls ? " over TLS" : "");
            }
            return std::make_unique<RedisBrokerFactory>(std::move(options));
        }
    }
    throw std::runtime_error("broker.type: unknown broker");
}

}  // namespace

int Server::workerCount(const Config& config) {
    if (config.workers > 0) return config.workers;
    return std::min(cpuBudget(), 64);
}

// libwebsockets 4.1 sizes a table per worker to the soft RLIMIT_NOFILE, and Debian builds it
// with its debug checks, which scan that whole table on every new connection: ~11 µs at 20,000
// entries, milliseconds at the 1,048,576 container runtimes commonly set. So the soft limit is
// raised (or lowered) only as far as the connection limit needs, not to the hard limit.
int Server::connectionLimit(const Config& config, int workers) {
    rlimit rl{};
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return 512;
    const rlim_t reserve = kReservedFds + static_cast<rlim_t>(workers) *
                                              (kReservedFdsPerWorker +
                                               static_cast<rlim_t>(config.hook.max_connections));
    // A TLS connection holds the client's socket and both ends of its socketpair.
    const rlim_t per_connection = config.tls.cert_file.empty() ? 1 : 3;
    auto usable = [reserve, per_connection](rlim_t fds) {
        return (fds > reserve * 2 ? fds - reserve : fds / 2) / per_connection;
    };
    const rlim_t hard = rl.rlim_max;
    const rlim_t wanted = config.limits.max_connections > 0
                              ? static_cast<rlim_t>(config.limits.max_connections)
                              : kDefaultMaxConnections;
    rlim_t limit = std::min(wanted, usable(hard));
    // A quarter more than the limit: connections over it are accepted before they are refused
    // with 1013, and an instance at its cap stays below the 90 % descriptor alert.
    const rlim_t soft = std::min(hard, (limit + limit / 4) * per_connection + reserve);
    if (soft != rl.rlim_cur) {
        rlimit want = rl;
        want.rlim_cur = soft;
        if (setrlimit(RLIMIT_NOFILE, &want) != 0) {
            WSR_LOG(Warn, "could not set the open-file limit to %llu (it stays %llu)",
                    static_cast<unsigned long long>(soft),
                    static_cast<unsigned long long>(rl.rlim_cur));
            limit = std::min(limit, usable(rl.rlim_cur));
        }
    }
    return static_cast<int>(limit);
}

Server::Server(Config config)
    : config_(std::move(config)), channels_(config_.channels), workers_count_(workerCount(config_)),
      registry_(workers_count_), brokers_(makeBrokers(config_, workers_count_)) {
    int limit = connectionLimit(config_, workers_count_);
    if (config_.limits.max_connections > limit) {
        WSR_LOG(Warn, "limits.max_connections %d exceeds what the open-file limit allows; using %d",
                config_.limits.max_connections, limit);
    }
    const MemoryBudgetChoice budget = chooseMemoryBudget(config_.limits, cgroupMemoryLimit());
    WSR_LOG(Info, "memory budget: %s", budget.why.c_str());
    registry_.setMemoryBudget(budget.bytes);
    shared_ = std::make_unique<SharedState>(config_, channels_, registry_, *brokers_,
                                            workers_count_, limit, budget.bytes);
    shared_->instance_id = fleet::makeInstanceId();
    WSR_LOG(Info, "instance %s (connection ids start with it)", shared_->instance_id.c_str());
    if (!config_.tls.cert_file.empty()) setUpTls();
    SharedState* shared = shared_.get();
    registry_.setReadyProbe([shared] {
        return metrics::ReadyState{shared->notReadyReason().empty(), shared->draining.load(),
                                   shared->brokers_down.load() == 0};
    });
    if (config_.auth.enabled) {
        setUpAuth();
    } else {
        WSR_LOG(Warn, "AUTHENTICATION IS OFF (auth.enabled: false): any client may connect, "
                      "subscribe to and publish on any channel. See docs/auth.md.");
    }
}

// The files were checked by conf/ (a rule); they are read again here, and may have changed since.
void Server::setUpTls() {
    const Config::Tls& t = config_.tls;
    tls::CertStore::Options options;
    options.cert_file = t.cert_file;
    options.key_file = t.key_file;
    options.context.min_version =
        t.min_version == TlsVersion::V1_3 ? tls::MinVersion::Tls1_3 : tls::MinVersion::Tls1_2;
    options.context.ciphers = t.ciphers;
    options.reload_interval = std::chrono::milliseconds(t.reload_interval_ms);
    certs_ = std::make_unique<tls::CertStore>(std::move(options), registry_.control());
    shared_->certs = certs_.get();
    WSR_LOG(Info, "tls: listen.port speaks TLS %s+ (wss://, https://)%s",
            t.min_version == TlsVersion::V1_3 ? "1.3" : "1.2",
            t.reload_interval_ms > 0 ? "; certificate files checked for changes" : "");
}

// That auth.enabled has a key is a rule of conf/; what remains here is what only reading the key
// file, or fetching the JWKS, can tell.
void Server::setUpAuth() {
    const auto& j = config_.auth.jwt;
    jwt::KeySet static_keys;
    std::string error;
    if (!j.secret.empty()) {
        if (!static_keys.addSecret(j.secret, error))
            throw std::runtime_error("auth.jwt.secret: " + error);
        if (j.secret.size() < 32) {
            WSR_LOG(Warn, "auth.jwt.secret is %zu bytes: use at least 32 random bytes for HS256",
                    j.secret.size());
        }
    }
    if (!j.public_key_file.empty()) {
        std::string pem;
        if (!jwt::readFile(j.public_key_file, pem, error) || !static_keys.addPem(pem, error)) {
            throw std::runtime_error("auth.jwt.public_key_file: " + j.public_key_file + ": " +
                                     error);
        }
    }
    const size_t static_count = static_keys.keys().size();
    jwt::JwksOptions options;
    options.url = j.jwks_url;
    options.ca_file = j.jwks_ca_file;
    options.refresh_interval_ms = j.jwks_refresh_ms;
    options.min_refresh_interval_ms = j.jwks_min_refresh_ms;
    const bool remote = !j.jwks_url.empty() && !j.jwks_url.starts_with("file://");
    shared_->auth_keys_missing.store(remote);
    SharedState* shared = shared_.get();
    metrics::WorkerMetrics* control = &registry_.control();
    jwt::JwksEvents events;
    events.on_fetch = [shared, control, url = j.jwks_url, keys = int64_t{0},
                       skipped = std::vector<std::string>{}](const jwt::JwksFetch& fetch) mutable {
        control->jwks_fetches[fetch.ok ? metrics::FetchResult::Ok : metrics::FetchResult::Error]
            .add();
        if (!fetch.ok) {
            WSR_LOG(Warn, "JWKS %s: %s (keeping the last good keys)", url.c_str(),
                    fetch.error.c_str());
            return;
        }
        control->jwks_keys.add(static_cast<int64_t>(fetch.keys) - keys);
        keys = static_cast<int64_t>(fetch.keys);
        control->jwks_skipped_keys.add(static_cast<int64_t>(fetch.skipped.size()) -
                                       static_cast<int64_t>(skipped.size()));
        // Once per change, not on every refresh: the same set is fetched every few minutes.
        if (fetch.skipped != skipped) {
            for (const std::string& why : fetch.skipped) {
                WSR_LOG(Warn, "JWKS %s: key skipped: %s", url.c_str(), why.c_str());
            }
            skipped = fetch.skipped;
        }
        if (shared->auth_keys_missing.exchange(false)) WSR_LOG(Info, "JWKS %s loaded", url.c_str());
    };
    jwks_ = std::make_unique<jwt::JwksFetcher>(options, std::move(static_keys), keys_,
                                               std::move(events));
    jwt::JwksFetcher* fetcher = jwks_.get();
    keys_.setRefreshHook([fetcher] { fetcher->requestRefresh(); });
    if (!jwks_->start(error)) throw std::runtime_error("auth.jwt.jwks_url: " + error);
    if (j.jwks_url.empty()) control->jwks_keys.add(static_cast<int64_t>(static_count));
    shared_->keys = &keys_;
    WSR_LOG(Info, "auth: JWT required at the handshake (%zu static key(s)%s%s)", static_count,
            j.jwks_url.empty() ? "" : ", JWKS ", j.jwks_url.c_str());
}

Server::~Server() { stopAll(); }

bool Server::start(std::string& error) {
    for (int i = 0; i < workers_count_; ++i)
        workers_.push_back(std::make_unique<Worker>(i, *shared_));
    std::vector<std::future<std::string>> started;
    for (int i = 0; i < workers_count_; ++i) {
        auto promise = std::make_shared<std::promise<std::string>>();
        started.push_back(promise->get_future());
        Worker* worker = workers_[static_cast<size_t>(i)].get();
        threads_.emplace_back([worker, promise] {
            std::string err;
            bool ok = worker->setUp(err);
            promise->set_value(ok ? std::string() : (err.empty() ? "unknown error" : err));
            if (ok) worker->run();
        });
    }
    for (int i = 0; i < workers_count_; ++i) {
        std::string err = started[static_cast<size_t>(i)].get();
        if (!err.empty() && error.empty()) error = "worker " + std::to_string(i) + ": " + err;
    }
    return error.empty();
}

void Server::stopAll() {
    for (auto& w : workers_) w->requestStop();
    for (auto& t : threads_) {
        if (t.joinable()) t.join();
    }
    threads_.clear();
    workers_.clear();
}

int Server::run() {
    // Workers inherit this mask: only the main thread takes the shutdown signals, via sigwait.
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);
    signal(SIGPIPE, SIG_IGN);

    std::string error;
    if (!start(error)) {
        WSR_LOG(Error, "startup failed: %s", error.c_str());
        stopAll();
        return 1;
    }
    // Tests and operators wait for this exact line.
    const std::string internal =
        config_.listen.internal_port != 0
            ? " internal_port=" + std::to_string(config_.listen.internal_port)
            : std::string();
    WSR_LOG(Info, "wsrelay ready: listening on %s:%d workers=%d max_connections=%d%s%s",
            config_.listen.host.c_str(), config_.listen.port, workers_count_,
            shared_->max_connections, certs_ ? " tls=on" : "", internal.c_str());

    waitForSignals();
    for (auto& t : threads_) t.join();
    threads_.clear();
    WSR_LOG(Info, "drained; exiting");
    return 0;
}

void Server::waitForSignals() {
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    int sig = 0;
    sigwait(&signals, &sig);
    WSR_LOG(Info, "signal %d: draining (readiness is now false; a second signal stops at once)",
            sig);
    shared_->draining.store(true);
    for (auto& w : workers_) w->requestDrain();

    // Until the workers finish, a second signal cuts the drain short.
    timespec tick{0, 100'000'000};
    while (shared_->workers_running.load() > 0) {
        if (sigtimedwait(&signals, nullptr, &tick) > 0) {
            WSR_LOG(Warn, "second signal: stopping without waiting for the drain");
            for (auto& w : workers_) w->requestStop();
            return;
        }
    }
}

}  // namespace wsrelay
