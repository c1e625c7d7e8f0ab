#pragma once

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "adapters/broker.h"
#include "adapters/jwks_fetcher.h"
#include "conf/config.h"
#include "metrics/relay_metrics.h"
#include "relay/common/shared_state.h"
#include "relay/fanout/channel_rules.h"

namespace wsrelay {

class Worker;
namespace tls {
class CertStore;
}

// The process: N workers on N threads, the broker factory they share, the metrics registry, and
// the signal-driven drain. The main thread only starts workers and waits for signals.
class Server {
public:
    explicit Server(Config config);
    ~Server();
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    // Starts every worker, blocks until the process should exit, returns the exit code:
    // 0 after a completed drain, 1 when startup failed.
    int run();

    static int workerCount(const Config& config);
    // Sets the soft open-file limit to what the connection limit needs and returns that limit.
    // A TLS connection takes three descriptors (the client's socket and a socketpair).
    static int connectionLimit(const Config& config, int workers);

private:
    bool start(std::string& error);
    void waitForSignals();
    void stopAll();
    // auth.enabled: loads the static keys and the JWKS; throws on a configuration error.
    void setUpAuth();
    // tls.cert_file set: loads the certificate; throws on an error.
    void setUpTls();

    Config config_;
    ChannelRules channels_;  // config_.channels, for every worker
    int workers_count_;
    metrics::Registry registry_;
    std::unique_ptr<BrokerFactory> brokers_;
    std::unique_ptr<tls::CertStore> certs_;  // tls.cert_file set
    std::unique_ptr<SharedState> shared_;
    jwt::KeySource keys_;
    std::unique_ptr<jwt::JwksFetcher> jwks_;
    std::vector<std::unique_ptr<Worker>> workers_;
    std::vector<std::thread> threads_;
};

}  // namespace wsrelay
